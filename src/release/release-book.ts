/**
 * The releases a peer knows: every admitted signed release (signatures merged, invalid
 * ones dropped), its state and the reason for a refusal, kept durably in
 * `releases/<id>.cbor` and `releases/<id>.json`. Admission — from gossip, sync or
 * publish — goes through {@link ReleaseBook.consider}, so every path applies the same checks.
 *
 * Memory is bounded by a window (release-window.ts): every release is known by its
 * summary, but only the unsettled, newest, pinned and recently used ones are held as
 * signed releases; the others are read from disk on demand ({@link ReleaseBook.read}).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import { PolicyRefusalError, UpgossipError, faultOf } from '../errors.js'
import { writeFileAtomic } from '../store/index.js'
import { MAX_SIGNATURES, decodeSignedRelease, releaseId } from './record.js'
import type { SignedRelease } from './record.js'
import { summarize } from './release-files.js'
import type { ReleaseState, ReleaseSummary } from './release-files.js'
import { ReleaseIndex } from './release-index.js'
import type { ReleaseEntry } from './release-index.js'
import { DEFAULT_WINDOW, unsettled, windowIds } from './release-window.js'
import type { ReleaseWindowLimits } from './release-window.js'
import { decodeRevocation, encodeRevocation } from './revocation.js'
import type { SignedRevocation } from './revocation.js'
import { checkSignature, mergeSignatures } from './signing.js'
import type { TrustPolicy } from './trust.js'
import { classifySignatures, verifySignedRelease } from './verify.js'

/** The release was revoked by a threshold of its publishers. */
export class ReleaseRevokedError extends PolicyRefusalError {
  static override name = 'ReleaseRevokedError'
}

export { RELEASE_STATES, ReleaseStoreDamagedError } from './release-files.js'
export type { ReleaseState, ReleaseSummary } from './release-files.js'
export type { ReleaseWindowLimits } from './release-window.js'

/** A revocation names a known release of another app than the one whose publishers signed it. */
export class RevocationAppMismatchError extends PolicyRefusalError {
  static override name = 'RevocationAppMismatchError'
}

/** A second, different release signed for an app version this peer already knows (a split view). */
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
  /** Releases that stay in memory and on disk whatever their state: what this peer runs and would roll back to. */
  pinned?: () => Array<string | undefined>
  /** How many releases stay in memory and on disk ({@link DEFAULT_WINDOW}). */
  window?: Partial<ReleaseWindowLimits>
}

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

/** The admitted releases of this peer, durable; the signed releases of a bounded window in memory. */
export class ReleaseBook extends ReleaseIndex {
  private readonly revoked = new Map<string, SignedRevocation>()
  private readonly init: ReleaseBookInit
  private queue: Promise<unknown> = Promise.resolve()

  constructor (init: ReleaseBookInit) {
    super(init.dir, { ...DEFAULT_WINDOW, ...init.window }, init.floor, init.pinned)
    this.init = init
  }

  /**
   * Learn every release kept in the directory from its state file, and read the signed
   * releases of the window; unreadable files are skipped and reported. (A state file
   * written before the book kept a window has no summary: its record is read once and
   * the summary written.)
   */
  async load (): Promise<string[]> {
    await this.loadRevocations()
    const problems: string[] = []
    for (const id of await this.files.ids()) {
      try {
        const meta = await this.files.readMeta(id)
        let summary = meta.summary
        if (summary == null) {
          summary = summarize(id, await this.files.readRecord(id), meta)
          await this.files.writeMeta(summary)
        }
        // a revoked release written without its reason (by an earlier daemon) says it again
        if (summary.state === 'revoked' && summary.reason == null) summary.reason = this.revokedReason(id, summary.app)
        this.index.set(id, summary)
      } catch (err) {
        problems.push(`${id}.cbor: ${(err as Error).message}`)
      }
    }
    for (const id of windowIds(this.index.values(), this.limits, this.pinned(), [])) {
      const summary = this.index.get(id)
      if (summary == null) continue
      try {
        this.entries.set(id, this.entryOf(summary, await this.files.readRecord(id)))
      } catch (err) {
        this.index.delete(id)
        problems.push(`${id}.cbor: ${(err as Error).message}`)
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
  private revocationOf (id: string, app = this.index.get(id)?.app): SignedRevocation | undefined {
    const revocation = this.revoked.get(id)
    return revocation != null && (app == null || revocation.record.app === app) ? revocation : undefined
  }

  /** Why the release was revoked, as its entry says it (`revoked: <the publishers' reason>`), if it was. */
  private revokedReason (id: string, app?: string): string | undefined {
    const revocation = this.revocationOf(id, app)
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
    const known = this.index.get(id)
    if (known != null && known.app !== revocation.record.app) {
      throw new RevocationAppMismatchError(`a revocation signed for app ${revocation.record.app} names ${id}, a release of ${known.app}; it is refused`)
    }
    // one per release: another app's (before the release was known here) gives way to this one
    if (this.revoked.get(id)?.record.app === revocation.record.app) return false
    await writeFileAtomic(path.join(this.init.dir, 'revocations', `${id}.cbor`), encodeRevocation(revocation))
    this.revoked.set(id, revocation)
    if (known != null) await this.setState(id, 'revoked')
    return true
  }

  /**
   * Change a release's state (durably) and tell listeners; `revoked` always takes the
   * revocation's reason. A release that settles may leave the window, and older settled
   * ones past the bound leave the disk.
   */
  async setState (id: string, state: ReleaseState, reason?: string): Promise<void> {
    const summary = this.index.get(id)
    if (summary == null) return
    const entry = await this.read(id)
    // a revoked release always says why, also where it ran and was rolled back first
    const why = (state === 'revoked' ? this.revokedReason(id) : undefined) ?? reason
    summary.state = state
    if (why == null) delete summary.reason
    else summary.reason = why
    if (entry != null) {
      entry.state = state
      entry.reason = why
    }
    await this.files.writeMeta(summary)
    if (entry != null) this.emit('change', entry)
    if (!unsettled(summary)) {
      this.trim()
      await this.prune()
    }
  }

  /** A release of the same app and version as `record` this peer knows, not revoked (its twin, if the ids differ). */
  twinOf (record: { app: string, version: string }): ReleaseSummary | undefined {
    return [...this.index.values()].find(s => !this.isRevoked(s.id) && s.app === record.app && s.version === record.version)
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
      // unsettled releases are all in the window
      for (const entry of this.entries.values()) {
        if (entry.signed.record.app !== app || !['fetching', 'staged', 'waiting'].includes(entry.state)) continue
        const { valid } = await classifySignatures(await releaseId(entry.signed.record), entry.signed, this.init.trust())
        if (policy != null && valid.length >= policy.threshold) continue
        await this.files.remove(entry.id)
        this.entries.delete(entry.id)
        this.index.delete(entry.id)
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
    const known = this.index.has(id) ? await this.read(id) : undefined
    if (known != null) {
      const merged = await trustedSignaturesOnly(await mergeSignatures(known.signed, offered), cid, this.init.trust())
      if (merged.signatures.length <= known.signed.signatures.length) return { verdict: { kind: 'known', id }, stored: done }
      const before = known.signed
      known.signed = merged
      const stored = this.writeSigned(known).then(() => { this.emit('change', known) }, (err: unknown) => {
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
    const summary = summarize(id, entry.signed, entry)
    this.index.set(id, summary)
    this.entries.set(id, entry)
    // meta first: load() starts from the .cbor files, so a crash between the two writes leaves nothing half-admitted
    const stored = (async () => {
      await this.files.writeMeta(summary)
      await this.files.writeRecord(id, entry.signed)
    })().then(() => { this.emit('change', entry) }, (err: unknown) => {
      if (this.entries.get(id) === entry) {
        this.entries.delete(id)
        this.index.delete(id)
      }
      throw err
    })
    return { verdict: { kind: 'new', id, entry }, stored }
  }

  /** Write a release's merged signatures, and the count its summary keeps. */
  private async writeSigned (entry: ReleaseEntry): Promise<void> {
    await this.files.writeRecord(entry.id, entry.signed)
    const summary = this.index.get(entry.id)
    if (summary == null) return
    summary.signers = entry.signed.signatures.length
    await this.files.writeMeta(summary)
  }
}
