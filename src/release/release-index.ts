/**
 * What the release book holds, and where: a summary of every release it keeps on disk
 * (a few hundred bytes each), the signed releases of a bounded window in memory
 * (release-window.ts), and reads of the others from disk on demand. {@link ReleaseBook}
 * builds admission and state changes on it.
 */
import { EventEmitter } from 'node:events'
import semver from 'semver'
import type { SignedRelease } from './record.js'
import { ReleaseFiles } from './release-files.js'
import type { ReleaseState, ReleaseSummary } from './release-files.js'
import { byVersion, prunable, windowIds } from './release-window.js'
import type { ReleaseWindowLimits } from './release-window.js'

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

/** The releases of one directory: summaries of all, signed releases of the window. */
export class ReleaseIndex extends EventEmitter<{ change: [ReleaseEntry] }> {
  /** Every release on disk, by id. */
  protected readonly index = new Map<string, ReleaseSummary>()
  /** The window: the signed releases held in memory. */
  protected readonly entries = new Map<string, ReleaseEntry>()
  /** Ids read or changed lately, oldest first. */
  protected readonly recent: string[] = []
  protected readonly files: ReleaseFiles

  constructor (dir: string, protected readonly limits: ReleaseWindowLimits, private readonly floor: (app: string) => string | undefined, private readonly pinnedOf?: () => Array<string | undefined>) {
    super()
    this.files = new ReleaseFiles(dir)
  }

  protected pinned (): string[] {
    return (this.pinnedOf?.() ?? []).filter((x): x is string => x != null)
  }

  protected entryOf (summary: ReleaseSummary, signed: SignedRelease): ReleaseEntry {
    return { id: summary.id, signed, state: summary.state, ...(summary.reason == null ? {} : { reason: summary.reason }), admitted: summary.admitted }
  }

  /** Remember `id` as used lately. */
  protected touch (id: string): void {
    const at = this.recent.indexOf(id)
    if (at >= 0) this.recent.splice(at, 1)
    this.recent.push(id)
    if (this.recent.length > this.limits.recent) this.recent.shift()
  }

  /** Let go of the signed releases that left the window. */
  protected trim (): void {
    const keep = windowIds(this.index.values(), this.limits, this.pinned(), this.recent)
    for (const id of this.entries.keys()) if (!keep.has(id)) this.entries.delete(id)
  }

  /** Remove the records of settled releases past the bound ({@link prunable}); their revocations stay. */
  protected async prune (): Promise<void> {
    for (const s of prunable(this.index.values(), this.limits, this.pinned(), this.floor)) {
      this.index.delete(s.id)
      this.entries.delete(s.id)
      await this.files.remove(s.id)
    }
  }

  /** How many signed releases are held in memory now (the window). */
  get inMemory (): number {
    return this.entries.size
  }

  /** One release, if it is in the window (every unsettled one is); {@link read} also reads from disk. */
  get (id: string): ReleaseEntry | undefined {
    return this.entries.get(id)
  }

  /** True when the release is known here, in the window or not. */
  has (id: string): boolean {
    return this.index.has(id)
  }

  /** What the book knows of one release, in the window or not. */
  summary (id: string): ReleaseSummary | undefined {
    return this.index.get(id)
  }

  /** Every known release, oldest version first, as summaries. */
  summaries (): ReleaseSummary[] {
    return [...this.index.values()].sort(byVersion)
  }

  /** One release, from the window or read from disk (then kept a while as used lately); undefined when unknown or unreadable. */
  async read (id: string): Promise<ReleaseEntry | undefined> {
    const entry = await this.peek(id)
    if (entry == null) return undefined
    this.touch(id)
    this.entries.set(id, entry)
    this.trim()
    return entry
  }

  /** One release, from the window or from disk, without bringing it into the window (for a pass over many). */
  async peek (id: string): Promise<ReleaseEntry | undefined> {
    const held = this.entries.get(id)
    if (held != null) return held
    let signed: SignedRelease
    try {
      signed = await this.files.readRecord(id)
    } catch {
      return undefined
    }
    // what happened meanwhile wins
    const now = this.entries.get(id)
    if (now != null) return now
    const summary = this.index.get(id)
    return summary == null ? undefined : this.entryOf(summary, signed)
  }

  /** The releases in the window, oldest version first: every unsettled one, the newest of each app, and those used lately. */
  list (): ReleaseEntry[] {
    return [...this.entries.values()].sort((a, b) => byVersion({ version: a.signed.record.version, id: a.id }, { version: b.signed.record.version, id: b.id }))
  }

  /**
   * Admitted releases of `app` at `version` or newer (all when undefined), the newest
   * `limit`, read from disk where needed: what a peer running `version` is sent by sync
   * (so a twin of its own version reaches it).
   */
  async atOrAbove (app: string, version: string | undefined, limit = Infinity): Promise<ReleaseEntry[]> {
    const wanted = this.admitted(app, version, semver.gte)
    const out: ReleaseEntry[] = []
    for (const s of wanted.slice(Math.max(0, wanted.length - limit))) {
      const entry = await this.peek(s.id)
      if (entry != null) out.push(entry)
    }
    return out
  }

  /** Admitted (not refused or revoked) releases of `app` newer than `version` (all when undefined), as summaries. */
  newerThan (app: string, version: string | undefined): ReleaseSummary[] {
    return this.admitted(app, version, semver.gt)
  }

  private admitted (app: string, version: string | undefined, above: (v: string, floor: string) => boolean): ReleaseSummary[] {
    return this.summaries().filter(s => s.app === app && s.state !== 'refused' && s.state !== 'revoked' &&
      (version == null || above(s.version, version)))
  }

  /** The newest admitted release per app. */
  heads (): Record<string, string> {
    const heads: Record<string, string> = {}
    for (const s of this.summaries()) {
      if (s.state === 'refused' || s.state === 'revoked') continue
      heads[s.app] = s.id
    }
    return heads
  }
}
