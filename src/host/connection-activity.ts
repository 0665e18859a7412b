/**
 * When bytes last moved on each connection of an app whose wire is TCP: what the `idle`
 * schedule rule measures for such an app. A request is in flight from its arrival to its
 * answer; a connection has no such end — a client may hold one open for hours and say
 * nothing — so an open connection counts only when bytes move on it, at the time they do.
 * "Idle for 5 s with at most N in flight" then reads: over the last 5 s, bytes moved on at
 * most N connections (none, with N = 0, the rule's default).
 *
 * Owned by the host, so that what an app did before a restart still counts after it.
 *
 * @example
 * ```ts
 * const activity = new ConnectionActivity(Date.now)
 * const conn = activity.track()
 * conn.moved(512)                // bytes moved on it, now
 * conn.close()
 * activity.quietFor(0)           // ms since bytes last moved on any connection
 * ```
 */

/** One connection, as {@link ConnectionActivity} tracks it. */
export interface TrackedConnection {
  /** Bytes moved on it (either way), now. */
  moved: (n: number) => void
  /** It closed. */
  close: () => void
}

/** Connections closed whose last bytes are remembered: enough for any `maxInFlight` a rule sensibly asks. */
const KEEP_CLOSED = 1000

/** When bytes last moved on the connections of a TCP app; see the module's comment. */
export class ConnectionActivity {
  /** Open connections, each with when bytes last moved on it (undefined: none yet). */
  private readonly open = new Set<{ last: number | undefined }>()
  /** When bytes last moved on connections closed since, the most recent {@link KEEP_CLOSED}. */
  private closed: number[] = []

  constructor (private readonly clock: () => number) {}

  /** A connection opens. */
  track (): TrackedConnection {
    const conn: { last: number | undefined } = { last: undefined }
    this.open.add(conn)
    return {
      moved: n => { if (n > 0) conn.last = this.clock() },
      close: () => {
        if (!this.open.delete(conn) || conn.last == null) return
        this.closed.push(conn.last)
        if (this.closed.length > 2 * KEEP_CLOSED) this.closed = this.closed.slice(-KEEP_CLOSED)
      }
    }
  }

  /**
   * For how long bytes have moved on at most `maxActive` connections: the time since the
   * (maxActive + 1)-th most recent last move. Undefined when fewer connections than that
   * ever moved bytes (quiet for as long as anyone can tell).
   */
  quietFor (maxActive: number): number | undefined {
    const lasts = [...this.closed]
    for (const conn of this.open) if (conn.last != null) lasts.push(conn.last)
    if (lasts.length <= maxActive) return undefined
    lasts.sort((a, b) => b - a)
    return Math.max(0, this.clock() - (lasts[maxActive] as number))
  }
}
