/**
 * Anti-entropy over `/upgossip/sync/1.0.0`: the asker sends `{ apps: { <app>: <version
 * it runs, or null> } }`; the answer is one frame per releases-topic message: the apps'
 * revocations, rollout pauses and trust rotations, then every signed release newer than
 * that version.
 * What arrives goes through the same admission as gossip.
 *
 * {@link SyncProtocol} is a libp2p service: `createPeerNode` registers it as `sync`,
 * libp2p starts and stops it.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { ComponentLogger, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { decodeDagCbor } from '../dag-cbor.js'
import { UpgossipError } from '../errors.js'
import { MAX_RELEASES_TOPIC_MESSAGE } from '../release/index.js'
import type { NetMetrics } from './metrics.js'
import { SYNC_PROTOCOL } from './protocol-ids.js'
import { dialWithDeadline, readFrame, readFrames, streamDeadline, writeFrames } from './stream-codec.js'

/** A sync message that breaks the protocol. */
export class SyncProtocolError extends UpgossipError {
  static override name = 'SyncProtocolError'
}

/** Most apps in one sync request. */
export const MAX_SYNC_APPS = 32
/** Most frames (releases, revocations, pauses, rotations) in one sync answer. */
export const MAX_SYNC_RELEASES = 256

/** Most revocations, most pause records, and most rotations, per app in one sync answer; releases fill the rest. */
export const SYNC_TRUST_FRAMES_PER_APP = 32
/** Most revocations, pause records and rotations of every app together in one sync answer. */
export const SYNC_TRUST_FRAMES = 128

/** What one app contributes to a sync answer; each list oldest (or lowest sequence) first. */
export interface SyncAnswerPart<T> {
  revocations: T[]
  /** Rollout pause records (pauses and resumes), oldest issued first. */
  pauses?: T[]
  rotations: T[]
  releases: T[]
}

/** The bounds of a sync answer. */
export interface SyncAnswerLimits {
  /** Revocations per app, pause records per app, and rotations per app. */
  trustPerApp: number
  /** Revocations, pause records and rotations of every app together. */
  trust: number
  /** Frames in all. */
  frames: number
}

/**
 * A sync answer, in the order a late peer can take it in: per app the revocations and the
 * pause records, then the rotations, then every app's releases. A revocation or pause made
 * under the policy before a rotation is still checked under that policy; a release (or a
 * pause) signed by new keys comes after the rotation that trusts them (the asker sets
 * such frames aside and tries them again). Revocations, pauses and rotations are bounded,
 * newest kept, so that releases always fit; releases are cut oldest first.
 */
export function syncAnswer<T> (parts: Array<SyncAnswerPart<T>>, limits: SyncAnswerLimits = { trustPerApp: SYNC_TRUST_FRAMES_PER_APP, trust: SYNC_TRUST_FRAMES, frames: MAX_SYNC_RELEASES }): T[] {
  const trust: T[] = []
  const releases: T[] = []
  for (const part of parts) {
    trust.push(...part.revocations.slice(-limits.trustPerApp), ...(part.pauses ?? []).slice(-limits.trustPerApp), ...part.rotations.slice(-limits.trustPerApp))
    releases.push(...part.releases)
  }
  const kept = trust.slice(-limits.trust)
  const room = Math.max(0, limits.frames - kept.length)
  return [...kept, ...releases.slice(Math.max(0, releases.length - room))]
}

/** The versions an asker runs, per app (null: none yet). */
export type SyncRequest = Record<string, string | null>

function decodeSyncRequest (bytes: Uint8Array): { apps: SyncRequest, network: string } {
  let value: unknown
  try {
    value = decodeDagCbor(bytes)
  } catch {
    throw new SyncProtocolError('sync request is not dag-cbor')
  }
  const { apps, network, ...rest } = (value ?? {}) as { apps?: unknown, network?: unknown }
  if (apps == null || typeof apps !== 'object' || Array.isArray(apps) || typeof network !== 'string' || Object.keys(rest).length > 0) throw new SyncProtocolError('sync request must be { apps: { … }, network }')
  const entries = Object.entries(apps)
  if (entries.length > MAX_SYNC_APPS) throw new SyncProtocolError(`sync request names more than ${MAX_SYNC_APPS} apps`)
  for (const [app, version] of entries) {
    if (app.length > 64 || (version !== null && (typeof version !== 'string' || version.length > 64))) throw new SyncProtocolError('sync request has a bad app or version')
  }
  return { apps: apps as SyncRequest, network }
}

/** What the sync protocol takes from libp2p. */
export interface SyncComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
}

/** What the sync protocol takes from its owner. */
export interface SyncInit {
  /** The network name: peers of other networks get nothing (only gossip topics carry the name otherwise). */
  network: string
  metrics: NetMetrics
  /** Operator-facing notes (the event log): requests refused. */
  log: (message: string) => void
  /** Encoded releases-topic messages for these apps: revocations, pauses and rotations first, then signed releases newer than the given versions. */
  releasesFor: (request: SyncRequest) => Uint8Array[] | Promise<Uint8Array[]>
}

/** Serves and runs anti-entropy syncs. */
export class SyncProtocol implements Startable {
  readonly [Symbol.toStringTag] = '@upgossip/sync'
  private readonly components: SyncComponents
  private readonly c: SyncInit
  private readonly log: Logger

  constructor (components: SyncComponents, init: SyncInit) {
    this.components = components
    this.c = init
    this.log = components.logger.forComponent('upgossip:sync')
  }

  /** Register the handler. */
  async start (): Promise<void> {
    await this.components.registrar.handle(SYNC_PROTOCOL, ({ stream, connection }) => {
      const from = connection.remotePeer
      this.serve(stream, from).catch(err => {
        this.log.error('request from %p refused - %e', from, err)
        this.c.log(`sync request refused: ${(err as Error).message}`)
        stream.abort(err as Error)
      })
    }, { maxInboundStreams: 32, maxOutboundStreams: 32 })
  }

  /** Unregister the handler. */
  async stop (): Promise<void> {
    await this.components.registrar.unhandle(SYNC_PROTOCOL)
  }

  private async serve (stream: Stream, from: PeerId): Promise<void> {
    const release = streamDeadline(stream, 30_000, () => new SyncProtocolError('sync took too long'))
    try {
      const frame = await readFrame(stream, 8 * 1024)
      this.c.metrics.bytes(SYNC_PROTOCOL, 'in', frame.byteLength)
      const request = decodeSyncRequest(frame)
      if (request.network !== this.c.network) {
        this.log('%p asks for network "%s", not ours: answered with nothing', from, request.network)
        // a peer of another network connected: worth an operator's note (a mistyped --network)
        this.c.log(`sync request from ${from.toString()} for network ${JSON.stringify(request.network.slice(0, 64))} answered with nothing: this peer is on network "${this.c.network}"`)
        await writeFrames(stream, [])
        return
      }
      // the newest matter most: a joining peer must learn the head even past the limit
      const releases = (await this.c.releasesFor(request.apps)).slice(-MAX_SYNC_RELEASES)
      this.log('%p asks for releases of %d apps: %d frames', from, Object.keys(request.apps).length, releases.length)
      for (const r of releases) this.c.metrics.bytes(SYNC_PROTOCOL, 'out', r.byteLength)
      await writeFrames(stream, releases)
    } finally {
      release()
    }
  }

  /** Ask `peer` for releases newer than ours; returns the encoded signed releases. */
  async sync (peer: PeerId, request: SyncRequest, timeoutMs = 15_000): Promise<Uint8Array[]> {
    const { stream, release } = await dialWithDeadline(this.components.connectionManager, peer, SYNC_PROTOCOL, timeoutMs, () => new SyncProtocolError('sync timed out'))
    try {
      const out = dagCbor.encode({ apps: request, network: this.c.network })
      this.c.metrics.bytes(SYNC_PROTOCOL, 'out', out.byteLength)
      await writeFrames(stream, [out])
      const releases: Uint8Array[] = []
      for await (const frame of readFrames(stream, MAX_RELEASES_TOPIC_MESSAGE)) {
        this.c.metrics.bytes(SYNC_PROTOCOL, 'in', frame.byteLength)
        releases.push(frame)
        if (releases.length > MAX_SYNC_RELEASES) throw new SyncProtocolError(`peer sent more than ${MAX_SYNC_RELEASES} releases`)
      }
      this.log('%p answered a sync of %d apps with %d frames', peer, Object.keys(request).length, releases.length)
      return releases
    } finally {
      release()
    }
  }
}

/**
 * The sync protocol as a libp2p service.
 *
 * @example
 * ```ts
 * const node = await createLibp2p({ services: { sync: syncProtocol({ network: 'default', metrics, log, releasesFor }) } })
 * const frames = await node.services.sync.sync(peer, { kv: '1.0.0' })
 * ```
 */
export function syncProtocol (init: SyncInit): (components: SyncComponents) => SyncProtocol {
  return (components) => new SyncProtocol(components, init)
}

/** How the asker judged one frame of a sync answer. */
export interface SyncFrameOutcome {
  /** Forged or malformed: the rest of the answer is dropped. */
  rejected: boolean
  /** A trust rotation was adopted: frames kept aside so far may pass now. */
  rotated: boolean
  /** Refused only under the trust policy in force (keys not trusted yet): tried again after a rotation. */
  trustDependent: boolean
}

/**
 * Take in a sync answer frame by frame. Frames refused only because their keys are not
 * trusted yet are kept aside and tried again each time a frame adopts a trust rotation,
 * until a pass adopts none — so an answer whose rotations come after what they let in
 * (an older peer's order, rotations out of order) is still taken in whole. A rejected
 * frame ends the intake.
 */
export async function takeInSyncAnswer<T> (frames: T[], judge: (frame: T) => Promise<SyncFrameOutcome>): Promise<void> {
  let aside: T[] = []
  for (const frame of frames) {
    const outcome = await judge(frame)
    // a peer that sends forgeries gets no more of our time in this sync
    if (outcome.rejected) return
    if (outcome.trustDependent) aside.push(frame)
    let progress = outcome.rotated
    while (progress && aside.length > 0) {
      const again = aside
      aside = []
      progress = false
      for (const earlier of again) {
        const retried = await judge(earlier)
        if (retried.rejected) return
        if (retried.trustDependent) aside.push(earlier)
        if (retried.rotated) progress = true
      }
    }
  }
}
