/**
 * Freeze detection: a peer that has heard no status beat and no release from any other
 * peer for longer than `freezeAfter` says so (status, dashboard, event, metric). A peer
 * cut off from the network — by a partition, or by an attacker who eclipses it to keep it
 * on an old version — would otherwise look exactly like a peer in a quiet network.
 */
import type { Clock } from '../clock.js'
import { formatDuration } from '../duration.js'

/** `GET /status` `freshness`. */
export interface FreshnessStatus {
  /** When a valid status beat from another peer last arrived (null: never since start). */
  lastStatus: string | null
  /** When a valid release message (new or known) from another peer last arrived. */
  lastRelease: string | null
  /** True when nothing was heard for longer than `freezeAfterMs`. */
  frozen: boolean
  freezeAfterMs: number
  /** Why it counts as frozen, for people. */
  reason?: string
}

/** Tracks when this peer last heard from the network. */
export class Freshness {
  private lastStatus: number | undefined
  private lastRelease: number | undefined
  private readonly since: number

  constructor (private readonly clock: Clock, readonly freezeAfterMs: number) {
    this.since = clock.now()
  }

  /** A valid beat from another peer arrived. */
  heardStatus (): void {
    this.lastStatus = this.clock.now()
  }

  /** A valid release message from another peer arrived. */
  heardRelease (): void {
    this.lastRelease = this.clock.now()
  }

  /** The status now. */
  status (): FreshnessStatus {
    const now = this.clock.now()
    const last = Math.max(this.lastStatus ?? 0, this.lastRelease ?? 0)
    const silentFor = now - (last === 0 ? this.since : last)
    const frozen = silentFor > this.freezeAfterMs
    const iso = (t: number | undefined): string | null => t == null ? null : new Date(t).toISOString()
    return {
      lastStatus: iso(this.lastStatus),
      lastRelease: iso(this.lastRelease),
      frozen,
      freezeAfterMs: this.freezeAfterMs,
      ...(frozen ? { reason: last === 0 ? `no other peer heard since the start, ${formatDuration(silentFor)} ago` : `no status or release heard from any peer for ${formatDuration(silentFor)}` } : {})
    }
  }
}
