/**
 * The releases a peer knows: every admitted signed release (signatures merged, invalid
 * ones dropped), its state and the reason for a refusal, kept durably in
 * `releases/<id>.cbor` and `releases/<id>.json`. Admission — from gossip, sync or
 * publish — goes through {@link ReleaseBook.consider}, so every path applies the same checks.
 */
import { EventEmitter } from 'node:events'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import semver from 'semver'
import { z } from 'zod'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import { PolicyRefusalError, UpgossipError, faultOf } from '../errors.js'
import { describeSchemaIssues, safeParse } from '../schema.js'
import { writeFileAtomic, writeJsonAtomic } from '../store/index.js'
import { MAX_SIGNATURES, decodeSignedRelease, encodeSignedRelease, releaseId } from './record.js'
import type { SignedRelease } from './record.js'
import { decodeRevocation, encodeRevocation } from './revocation.js'
import type { SignedRevocation } from './revocation.js'
import { checkSignature, mergeSignatures } from './signing.js'
import type { TrustPolicy } from './trust.js'
import { classifySignatures, verifySignedRelease } from './verify.js'

/** The release was revoked by a threshold of its publishers. */
export class ReleaseRevokedError extends PolicyRefusalError {
  static override name = 'ReleaseRevokedError'
}

/** A file of the release store is damaged (it is skipped and reported on load). */
export class ReleaseStoreDamagedError extends UpgossipError {
  static override name = 'ReleaseStoreDamagedError'
}

const RELEASE_STATES = ['fetching', 'staged', 'waiting', 'upgrading', 'active', 'superseded', 'failed', 'rolled-back', 'revoked', 'refused'] as const

/** Where a release stands on this peer (docs/operator.md, "Peer and release states"). */
export type ReleaseState = typeof RELEASE_STATES[number]

/** What the book holds about one release. */
export interface ReleaseEntry {
  id: string
  signed: SignedRelease
  state: ReleaseState
  /** Why it was refused or failed. */
  reason?: string
  /** When this peer admitted it (ISO). */
  admitted: string
}

/** A second, different release signed for an app version this peer already knows (a split view). */
/** A revocation names a known release of another app than the one whose publishers signed it. */
export class RevocationAppMismatchError extends PolicyRefusalError {
  static override name = 'RevocationAppMismatchError'
}

export class EquivocationError extends PolicyRefusalError {
  static override name = 'EquivocationError'
}

/**
 * The verdict on a signed release offered to the book. Gossip validators map
 * `rejected` to REJECT (the sender is scored down), `ignored` and `known` to IGNORE,
 * `new` and `merged` to ACCEPT (so co-signatures spread).
 */
export type Verdict =
  | { kind: 'new', id: string, entry: ReleaseEntry }
  | { kind: 'merged', id: string, entry: ReleaseEntry }
  | { kind: 'known', id: string }
  | { kind: 'ignored', id?: string, reason: string, error: UpgossipError }
  | { kind: 'rejected', id?: string, reason: string, error: UpgossipError }

/** What a {@link ReleaseBook} needs. */
export interface ReleaseBookInit {
  dir: string
  trust: () => TrustPolicy
  /** The version of `app` this peer runs (or has installed), if any: admitted releases must be newer. */
  floor: (app: string) => string | undefined
  maxSize?: number
  clock?: Clock
}

interface EntryMeta {
  state: ReleaseState
  reason?: string
  admitted: string
}

const EntryMetaSchema = z.object({ state: z.enum(RELEASE_STATES), reason: z.string().optional(), admitted: z.string() })

/**
 * The signatures worth keeping and forwarding: valid ones by keys this peer trusts for
 * the app, one per key, at most {@link MAX_SIGNATURES}. Anything else could be piled on
 * by anyone, growing the release past what peers accept.
 */
async function trustedSignaturesOnly (signed: SignedRelease, id: CID, trust: TrustPolicy): Promise<SignedRelease> {
  const kept = []
  const seen = new Set<string>()
  for (const s of signed.signatures) {
    if (seen.has(s.key) || !trust.isPublisher(signed.record.app, s.key)) continue
    if (await checkSignature(id, s)) {
      kept.push(s)
      seen.add(s.key)
    }
    if (kept.length >= MAX_SIGNATURES) break
  }
  return { record: signed.record, signatures: kept }
}

/** The admitted releases of this peer, durable. */
export class ReleaseBook extends EventEmitter<{ change: [ReleaseEntry] }> {
  private readonly entries = new Map<string, ReleaseEntry>()
  private readonly revoked = new Map<string, SignedRevocation>()
  private readonly init: ReleaseBookInit
  private queue: Promise<unknown> = Promise.resolve()

  constructor (init: ReleaseBookInit) {
    super()
    this.init = init
  }

  /** Load every release kept in the directory; unreadable files are skipped and reported. */
  async load (): Promise<string[]> {
    await fs.mkdir(this.init.dir, { recursive: true })
    await this.loadRevocations()
    const problems: string[] = []
    for (const name of await fs.readdir(this.init.dir)) {
      if (!name.endsWith('.cbor')) continue
      const id = name.slice(0, -'.cbor'.length)
      try {
        const signed = decodeSignedRelease(await fs.readFile(path.join(this.init.dir, name)))
        if ((await releaseId(signed.record)).toString() !== id) throw new UpgossipError('file name does not match its release id')
        const metaFile = path.join(this.init.dir, `${id}.json`)
        let json: unknown
        try {
          json = JSON.parse(await fs.readFile(metaFile, 'utf8'))
        } catch (err) {
          throw new ReleaseStoreDamagedError(`${metaFile} is missing or not valid JSON: ${(err as Error).message}`)
        }
        const parsed = safeParse(EntryMetaSchema, json)
        if (!parsed.success) throw new ReleaseStoreDamagedError(describeSchemaIssues(metaFile, parsed.error))
        const meta: EntryMeta = parsed.data
        // a revoked release written without its reason (by an earlier daemon) says it again
        const reason = meta.state === 'revoked' && meta.reason == null ? this.revokedReason(id) : meta.reason
        this.entries.set(id, { id, signed, state: meta.state, reason, admitted: meta.admitted })
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`)
      }
    }
    return problems
  }

  /** Load the revocations kept in `<dir>/revocations/`. */
  private async loadRevocations (): Promise<void> {
    const dir = path.join(this.init.dir, 'revocations')
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      if (!name.endsWith('.cbor')) continue
      try {
        const revocation = decodeRevocation(await fs.readFile(path.join(dir, name)))
        this.revoked.set(revocation.record.release.toString(), revocation)
      } catch {}
    }
  }

  /**
   * The revocation of release `id` of `app`, if there is one: only one signed for the
   * release's own app counts (its publishers were checked for that app, not for another).
   */
  private revocationOf (id: string, app = this.entries.get(id)?.signed.record.app): SignedRevocation | undefined {
    const revocation = this.revoked.get(id)
    return revocation != null && (app == null || revocation.record.app === app) ? revocation : undefined
  }

  /** Why the release was revoked, as its entry says it (`revoked: <the publishers' reason>`), if it was. */
  private revokedReason (id: string): string | undefined {
    const revocation = this.revocationOf(id)
    if (revocation == null) return undefined
    return `revoked: ${revocation.record.reason === '' ? 'no reason given' : revocation.record.reason}`
  }

  /** True when the release has been revoked. */
  isRevoked (id: string): boolean {
    return this.revocationOf(id) != null
  }

  /** Revocations of `app` (for anti-entropy). */
  revocations (app: string): SignedRevocation[] {
    return [...this.revoked.values()].filter(r => r.record.app === app)
  }

  /**
   * Record a verified revocation durably and mark the release `revoked`.
   * Returns false when it was already known.
   */
  async revoke (revocation: SignedRevocation): Promise<boolean> {
    const id = revocation.record.release.toString()
    const known = this.entries.get(id)
    if (known != null && known.signed.record.app !== revocation.record.app) {
      throw new RevocationAppMismatchError(`a revocation signed for app ${revocation.record.app} names ${id}, a release of ${known.signed.record.app}; it is refused`)
    }
    // one per release: another app's (before the release was known here) gives way to this one
    if (this.revoked.get(id)?.record.app === revocation.record.app) return false
    await writeFileAtomic(path.join(this.init.dir, 'revocations', `${id}.cbor`), encodeRevocation(revocation))
    this.revoked.set(id, revocation)
    if (this.entries.has(id)) await this.setState(id, 'revoked')
    return true
  }

  /** One release, if known. */
  get (id: string): ReleaseEntry | undefined {
    return this.entries.get(id)
  }

  /** Every known release, oldest version first. */
  list (): ReleaseEntry[] {
    return [...this.entries.values()].sort((a, b) => {
      const byVersion = semver.compare(a.signed.record.version, b.signed.record.version)
      return byVersion !== 0 ? byVersion : a.id.localeCompare(b.id)
    })
  }

  /** Admitted (not refused or revoked) releases of `app` newer than `version` (all when undefined). */
  newerThan (app: string, version: string | undefined): ReleaseEntry[] {
    return this.admitted(app, version, semver.gt)
  }

  /** Admitted releases of `app` at `version` or newer: what a peer running `version` is sent by sync (so a twin of its own version reaches it). */
  atOrAbove (app: string, version: string | undefined): ReleaseEntry[] {
    return this.admitted(app, version, semver.gte)
  }

  private admitted (app: string, version: string | undefined, above: (v: string, floor: string) => boolean): ReleaseEntry[] {
    return this.list().filter(e => e.signed.record.app === app && e.state !== 'refused' && e.state !== 'revoked' &&
      (version == null || above(e.signed.record.version, version)))
  }

  /** The newest admitted release per app. */
  heads (): Record<string, string> {
    const heads: Record<string, string> = {}
    for (const e of this.list()) {
      if (e.state === 'refused' || e.state === 'revoked') continue
      heads[e.signed.record.app] = e.id
    }
    return heads
  }

  /** Change a release's state (durably) and tell listeners; `revoked` always takes the revocation's reason. */
  async setState (id: string, state: ReleaseState, reason?: string): Promise<void> {
    const entry = this.entries.get(id)
    if (entry == null) return
    entry.state = state
    // a revoked release always says why, also where it ran and was rolled back first
    entry.reason = (state === 'revoked' ? this.revokedReason(id) : undefined) ?? reason
    await this.writeMeta(entry)
    this.emit('change', entry)
  }

  /** A release of the same app and version as `record` this peer knows, not revoked (its twin, if the ids differ). */
  twinOf (record: { app: string, version: string }): ReleaseEntry | undefined {
    return [...this.entries.values()].find(e => !this.isRevoked(e.id) && e.signed.record.app === record.app && e.signed.record.version === record.version)
  }

  /**
   * After `app`'s trust policy changed (a rotation was adopted): forget its releases that
   * have not started here (`fetching`, `staged`, `waiting`) and no longer carry a
   * threshold of valid signatures by trusted keys, so a release signed only by removed
   * keys never runs. Co-signed by current keys, it is admitted again like a new one.
   * Returns what was dropped.
   */
  async dropUntrusted (app: string): Promise<ReleaseEntry[]> {
    const run = this.queue.then(async () => {
      const policy = this.init.trust().forApp(app)
      const dropped: ReleaseEntry[] = []
      for (const entry of this.entries.values()) {
        if (entry.signed.record.app !== app || !['fetching', 'staged', 'waiting'].includes(entry.state)) continue
        const { valid } = await classifySignatures(await releaseId(entry.signed.record), entry.signed, this.init.trust())
        if (policy != null && valid.length >= policy.threshold) continue
        // the .cbor first: load() starts from it, so a crash in between leaves no half entry
        await fs.rm(path.join(this.init.dir, `${entry.id}.cbor`), { force: true })
        await fs.rm(path.join(this.init.dir, `${entry.id}.json`), { force: true })
        this.entries.delete(entry.id)
        dropped.push(entry)
      }
      return dropped
    })
    this.queue = run.catch(() => {})
    return await run
  }

  /** Decode bytes and {@link consider} them; undecodable bytes are rejected. */
  async considerBytes (bytes: Uint8Array): Promise<Verdict> {
    let signed: SignedRelease
    try {
      signed = decodeSignedRelease(bytes)
    } catch (err) {
      const error = err instanceof UpgossipError ? err : new UpgossipError(String(err))
      return { kind: 'rejected', reason: error.message, error }
    }
    return await this.consider(signed)
  }

  /** Check a signed release and admit it, merge its signatures, or say why not; resolves once it is kept durably. Serialised. */
  async consider (signed: SignedRelease): Promise<Verdict> {
    const { verdict, stored } = await this.screen(signed)
    await stored
    return verdict
  }

  /**
   * {@link consider}, resolving as soon as the verdict is known: a release admitted (or
   * co-signed) is written durably after that, `stored` says when, and listeners hear of
   * it only then. For gossip validators: forwarding a release waits for its checks, not
   * for the disk (two atomic writes, four fsyncs, at every hop). If the writes fail, the
   * release is forgotten again, so it can be admitted later.
   */
  async screen (signed: SignedRelease): Promise<{ verdict: Verdict, stored: Promise<void> }> {
    const run = this.queue.then(async () => await this.considerNow(signed))
    // the next release is considered once this one's files are written
    this.queue = run.then(async r => { await r.stored }).catch(() => {})
    return await run
  }

  private async considerNow (offered: SignedRelease): Promise<{ verdict: Verdict, stored: Promise<void> }> {
    const done = Promise.resolve()
    const cid = await releaseId(offered.record)
    const id = cid.toString()
    if (this.revocationOf(id, offered.record.app) != null) {
      const error = new ReleaseRevokedError(`${offered.record.app}@${offered.record.version} (${id}) has been revoked by its publishers`)
      return { verdict: { kind: 'ignored', id, reason: error.message, error }, stored: done }
    }
    const known = this.entries.get(id)
    if (known != null) {
      const merged = await trustedSignaturesOnly(await mergeSignatures(known.signed, offered), cid, this.init.trust())
      if (merged.signatures.length <= known.signed.signatures.length) return { verdict: { kind: 'known', id }, stored: done }
      const before = known.signed
      known.signed = merged
      const stored = this.writeRelease(known).then(() => { this.emit('change', known) }, (err: unknown) => {
        known.signed = before
        throw err
      })
      return { verdict: { kind: 'merged', id, entry: known }, stored }
    }
    // two different releases, both validly signed, for one version: the first one seen
    // stays; the other is refused and named, since only the publishers' keys can make it
    // (a revoked twin does not count: revoking the wrong one is how an operator settles it)
    const twin = this.twinOf(offered.record)
    try {
      await verifySignedRelease(offered, {
        trust: this.init.trust(),
        clock: this.init.clock ?? systemClock,
        // a twin of what runs here is not newer, but it must be named, not quietly dropped
        floor: twin == null ? this.init.floor(offered.record.app) : undefined,
        maxSize: this.init.maxSize
      })
    } catch (err) {
      const error = err instanceof UpgossipError ? err : new UpgossipError(String(err))
      return { verdict: { kind: faultOf(error) === 'sender' ? 'rejected' : 'ignored', id, reason: error.message, error }, stored: done }
    }
    if (twin != null) {
      const error = new EquivocationError(`${offered.record.app}@${offered.record.version} is already known as ${twin.id}; ${id} is a different release signed for the same version. Only the publishers' keys can sign one: check them, and revoke the release that is not theirs`)
      return { verdict: { kind: 'ignored', id, reason: error.message, error }, stored: done }
    }
    const entry: ReleaseEntry = {
      id,
      signed: await trustedSignaturesOnly(offered, cid, this.init.trust()),
      state: 'fetching',
      admitted: new Date((this.init.clock ?? systemClock).now()).toISOString()
    }
    this.entries.set(id, entry)
    // meta first: load() starts from the .cbor files, so a crash between the two writes leaves nothing half-admitted
    const stored = (async () => {
      await this.writeMeta(entry)
      await this.writeRelease(entry)
    })().then(() => { this.emit('change', entry) }, (err: unknown) => {
      if (this.entries.get(id) === entry) this.entries.delete(id)
      throw err
    })
    return { verdict: { kind: 'new', id, entry }, stored }
  }

  private async writeRelease (entry: ReleaseEntry): Promise<void> {
    await writeFileAtomic(path.join(this.init.dir, `${entry.id}.cbor`), encodeSignedRelease(entry.signed))
  }

  private async writeMeta (entry: ReleaseEntry): Promise<void> {
    const meta: EntryMeta = { state: entry.state, reason: entry.reason, admitted: entry.admitted }
    await writeJsonAtomic(path.join(this.init.dir, `${entry.id}.json`), meta)
  }
}
