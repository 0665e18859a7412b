/**
 * Switching paused for a backup: `upgossip backup` asks for a lease (`POST /backup/begin`),
 * which waits for a switch in progress to end and then holds the rollout (no upgrade,
 * rollback or first install starts) until the backup ends it (`POST /backup/end`). A
 * lease not renewed within its time (`POST /backup/renew`) expires by itself, so a
 * backup that was killed never leaves the peer frozen. One backup at a time.
 */
import { randomBytes } from 'node:crypto'
import type { Clock } from '../clock.js'
import { UpgossipError } from '../errors.js'
import type { EventLog } from './event-log.js'
import type { Rollout } from './rollout.js'

/** Another backup holds the pause. */
export class BackupInProgressError extends UpgossipError {
  static override name = 'BackupInProgressError'
}

/** The lease named is not the one held (it expired, or never was). */
export class BackupLeaseError extends UpgossipError {
  static override name = 'BackupLeaseError'
}

/** What the pause needs. */
export interface BackupPauseComponents {
  rollout: Pick<Rollout, 'exclusive'>
  events: Pick<EventLog, 'info' | 'warn'>
  clock: Clock
}

/** Options of the pause. */
export interface BackupPauseInit {
  /** How long a lease lasts without a renewal (default 2 minutes). */
  leaseMs?: number
}

/** A lease on the pause: what `POST /backup/begin` and `/backup/renew` answer. */
export interface BackupLease {
  lease: string
  /** When it expires unless renewed (ISO 8601). */
  expires: string
  /** How long it waited for a switch in progress to end, in ms. */
  waitedMs: number
}

interface Held {
  lease: string
  since: number
  expires: number
  timer: NodeJS.Timeout
  release: () => void
}

/** Switching paused for one backup at a time. */
export class BackupPause {
  private readonly c: BackupPauseComponents
  private readonly leaseMs: number
  private held: Held | undefined
  private starting = false

  constructor (components: BackupPauseComponents, init: BackupPauseInit = {}) {
    this.c = components
    this.leaseMs = init.leaseMs ?? 120_000
  }

  /** True while a backup holds switching. */
  get holding (): boolean {
    return this.held != null || this.starting
  }

  /** Wait until nothing switches, then hold switching for a lease; {@link BackupInProgressError} while another backup holds it. */
  async begin (): Promise<BackupLease> {
    if (this.holding) throw new BackupInProgressError(`another backup of this peer is being taken${this.held == null ? '' : ` (switching paused for it until ${new Date(this.held.expires).toISOString()} unless it renews)`}; wait for it to end`)
    this.starting = true
    const asked = this.c.clock.now()
    let release = (): void => {}
    const released = new Promise<void>(resolve => { release = resolve })
    // a switch, rollback or first install in progress finishes first; none starts until released
    await new Promise<void>(resolve => {
      void this.c.rollout.exclusive(async () => {
        resolve()
        await released
      })
    })
    this.starting = false
    const now = this.c.clock.now()
    const lease = randomBytes(16).toString('hex')
    this.held = { lease, since: now, expires: now + this.leaseMs, timer: this.expiry(lease), release }
    this.c.events.info('backup-began', `switching paused for a backup${now - asked >= 1000 ? ` (after waiting ${Math.round((now - asked) / 1000)}s for a switch to end)` : ''}`)
    return { lease, expires: new Date(this.held.expires).toISOString(), waitedMs: now - asked }
  }

  /** Extend the lease by its full time. */
  renew (lease: string): BackupLease {
    const held = this.check(lease)
    clearTimeout(held.timer)
    held.expires = this.c.clock.now() + this.leaseMs
    held.timer = this.expiry(lease)
    return { lease, expires: new Date(held.expires).toISOString(), waitedMs: 0 }
  }

  /** The backup is done: switching goes on. */
  end (lease: string): { ended: true, pausedMs: number } {
    const held = this.check(lease)
    const pausedMs = this.c.clock.now() - held.since
    this.lift()
    this.c.events.info('backup-ended', `the backup is done: switching goes on (it was paused for ${(pausedMs / 1000).toFixed(1)}s)`)
    return { ended: true, pausedMs }
  }

  /** The daemon stops: a held pause goes with it. */
  stop (): void {
    this.lift()
  }

  private check (lease: string): Held {
    const held = this.held
    if (held?.lease !== lease || held == null) throw new BackupLeaseError(held == null ? 'no backup holds switching on this peer now (its lease expired, or the daemon restarted): the copy may not be consistent; take the backup again' : 'that is not the lease of the backup in progress')
    return held
  }

  private expiry (lease: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      if (this.held?.lease !== lease) return
      this.lift()
      this.c.events.warn('backup-expired', `a backup held switching for ${Math.round(this.leaseMs / 1000)}s without a word: its pause expired and switching goes on`)
    }, this.leaseMs)
    timer.unref()
    return timer
  }

  private lift (): void {
    const held = this.held
    if (held == null) return
    this.held = undefined
    clearTimeout(held.timer)
    held.release()
  }
}
