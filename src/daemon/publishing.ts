/**
 * Publishing: what an operator hands this peer — a release bundle (`publish`,
 * `--install`), a revocation, a trust rotation, a rollout pause record — is checked and taken in here, and
 * gossiped when it is new. A bundle's release is checked on its record before any of its
 * blocks is stored.
 */
import fs from 'node:fs/promises'
import type { Clock } from '../clock.js'
import { decodePause, decodeRevocation, decodeRotation, encodeReleasesTopicMessage, readBundle, verifyReleasePackage, verifySignedRelease } from '../release/index.js'
import type { ReleaseBook, ReleaseBundle, ReleasesTopicMessage, TrustStore, Verdict } from '../release/index.js'
import type { BlockStore, DataDir } from '../store/index.js'
import { noteVerdict } from './admission.js'
import type { PauseResult, PublishResult, RevokeResult, RotateResult } from './api.js'
import type { Downloads } from './downloads.js'
import { PublishRefusedError } from './errors.js'
import type { EventLog } from './event-log.js'
import type { DaemonMetrics } from './metrics.js'
import type { NodeStateStore } from './node-state.js'
import type { RolloutPauses } from './rollout-pauses.js'
import { ensureUnpacked, importBlocks } from './staging.js'
import type { TrustUpdates } from './trust-updates.js'

/** What admitting a bundle needs (publish and `--install`). */
export interface BundleComponents {
  book: Pick<ReleaseBook, 'get' | 'has' | 'twinOf' | 'consider' | 'setState'>
  blocks: BlockStore
  trustStore: Pick<TrustStore, 'policy'>
  nodeState: Pick<NodeStateStore, 'state' | 'floor' | 'set'>
  metrics: Pick<DaemonMetrics, 'refused'>
  dataDir: Pick<DataDir, 'packageDir'>
  downloads: Pick<Downloads, 'setHave'>
  events: Pick<EventLog, 'info' | 'warn' | 'error'>
  clock: Clock
  /** Largest package admitted, in bytes. */
  maxPackageSize: number
}

/** What publishing needs besides. */
export interface PublishingComponents extends BundleComponents {
  trustUpdates: Pick<TrustUpdates, 'applyRevocation' | 'applyRotation'>
  pauses: Pick<RolloutPauses, 'apply'>
  gossip: { publishRelease: (data: Uint8Array) => Promise<void> }
  /** Fetch (and stage) a release admitted without all its blocks. */
  fetch: (id: string) => void
}

/**
 * Admit a release bundle: the checks the book makes, before any block is stored; then
 * the package against the record, its blocks, and the book.
 */
export async function admitBundle (c: BundleComponents, bundle: ReleaseBundle, via: string): Promise<Exclude<Verdict, { kind: 'rejected' | 'ignored' }>> {
  const { record } = bundle.signed
  if (!c.book.has(bundle.id.toString())) {
    // a twin of a known version gets its own error from the book, not "not newer"
    const floor = c.book.twinOf(record) == null ? c.nodeState.floor(record.app) : undefined
    await verifySignedRelease(bundle.signed, { trust: c.trustStore.policy, clock: c.clock, floor, maxSize: c.maxPackageSize })
  }
  const { blocks } = await verifyReleasePackage(record, bundle.blocks)
  // in the book before a collection of the block store may see its blocks
  const verdict = await c.blocks.holding(async () => {
    await importBlocks(c.blocks, bundle.blocks, blocks)
    return await c.book.consider(bundle.signed)
  })
  noteVerdict(c, verdict, via)
  if (verdict.kind === 'rejected' || verdict.kind === 'ignored') throw new PublishRefusedError(verdict.reason, { cause: verdict.error })
  return verdict
}

/** `--install BUNDLE`: admit and stage a first version, and make it this peer's current release. */
export async function installBundle (c: BundleComponents, file: string): Promise<void> {
  let bytes: Uint8Array
  try {
    bytes = await fs.readFile(file)
  } catch (err) {
    throw new PublishRefusedError(`cannot read --install bundle ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const bundle = await readBundle(bytes)
  const id = bundle.id.toString()
  const { record } = bundle.signed
  const state = c.nodeState.state
  if (state.current != null) {
    if (state.current.id !== id) c.events.info('install-skipped', `--install ${file} ignored: this peer already runs ${state.app ?? ''}@${state.current.version}`)
    return
  }
  if (state.app != null && state.app !== record.app) {
    throw new PublishRefusedError(`--install ${file} is ${record.app}, but this peer serves ${state.app}`)
  }
  await admitBundle(c, bundle, `--install ${file}`)
  if (!c.book.has(id)) throw new PublishRefusedError(`--install ${file} was not admitted`)
  await c.nodeState.set({ app: record.app, current: { id, version: record.version }, previous: null, since: c.clock.now() })
  await ensureUnpacked(c, id, record)
  c.downloads.setHave(id, record.size)
  await c.book.setState(id, 'active')
  c.events.info('installed', `installed ${record.app}@${record.version} (${id}) from ${file}`, { id })
}

/** Takes in what the operator publishes here, and gossips it. */
export class Publishing {
  private readonly c: PublishingComponents

  constructor (components: PublishingComponents) {
    this.c = components
  }

  /** Import a release bundle's blocks and admit its release; gossip it when new or co-signed. */
  async publish (bytes: Uint8Array): Promise<PublishResult> {
    const bundle = await readBundle(bytes)
    const { record } = bundle.signed
    const verdict = await admitBundle(this.c, bundle, 'publish')
    const entry = this.c.book.get(verdict.id)
    if (entry?.state === 'fetching') this.c.fetch(entry.id)
    if ((verdict.kind === 'new' || verdict.kind === 'merged') && entry != null) {
      await this.spread({ type: 'release', signed: entry.signed }, verdict.id)
    }
    const status = verdict.kind === 'new' ? 'published' : verdict.kind
    return { status, id: verdict.id, app: record.app, version: record.version }
  }

  /** `POST /revoke`: apply a signed revocation and gossip it. */
  async revoke (bytes: Uint8Array): Promise<RevokeResult> {
    const revocation = decodeRevocation(bytes)
    const outcome = await this.c.trustUpdates.applyRevocation(revocation, 'revoke')
    if (outcome === 'new') await this.spread({ type: 'revocation', revocation }, 'the revocation')
    return { status: outcome === 'new' ? 'revoked' : 'known', release: revocation.record.release.toString() }
  }

  /** `POST /rotate`: adopt a signed trust rotation and gossip it. */
  async rotate (bytes: Uint8Array): Promise<RotateResult> {
    const rotation = decodeRotation(bytes)
    const outcome = await this.c.trustUpdates.applyRotation(rotation, 'rotate')
    if (outcome.kind === 'new') await this.spread({ type: 'rotation', rotation }, 'the trust rotation')
    const { record } = rotation
    return { status: outcome.kind === 'new' ? 'rotated' : 'known', id: outcome.id, app: record.app, sequence: record.sequence, publishers: record.publishers, threshold: record.threshold }
  }

  /** `POST /pause`: apply a signed rollout pause or resume record and gossip it. */
  async pause (bytes: Uint8Array): Promise<PauseResult> {
    const pause = decodePause(bytes)
    const outcome = await this.c.pauses.apply(pause, pause.record.action)
    if (outcome.kind === 'new') await this.spread({ type: 'pause', pause }, `the rollout ${pause.record.action}`)
    const { record } = pause
    const done = record.action === 'pause' ? 'paused' : 'resumed'
    return { status: outcome.kind === 'new' ? done : 'known', id: outcome.id, app: record.app, release: record.release.toString(), action: record.action, sequence: record.sequence, signers: outcome.signers }
  }

  /** Gossip a message; peers that miss it get it by sync. */
  private async spread (message: ReleasesTopicMessage, what: string): Promise<void> {
    await this.c.gossip.publishRelease(encodeReleasesTopicMessage(message)).catch(err => {
      this.c.events.warn('gossip-failed', `could not gossip ${what}: ${(err as Error).message}; peers will get it by sync`)
    })
  }
}
