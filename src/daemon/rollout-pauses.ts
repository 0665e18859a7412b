/**
 * Rollout pauses on this peer: signed pause and resume records, checked against the
 * trust policy in force, kept durably when they supersede the one held for their release,
 * and told to the rollout (which starts no switch to a paused release). Local only:
 * spreading them is publishing's job, hearing them admission's.
 */
import { EventEmitter } from 'node:events'
import { RefusalError } from '../errors.js'
import { PauseAppMismatchError, shortKey } from '../release/index.js'
import type { PauseBook, PauseOutcome, ReleaseBook, SignedPause, TrustStore } from '../release/index.js'
import type { EventLog } from './event-log.js'
import type { DaemonMetrics } from './metrics.js'

/** What rollout pauses need. */
export interface RolloutPausesComponents {
  pauses: Pick<PauseBook, 'take' | 'pausedReason' | 'get'>
  trustStore: Pick<TrustStore, 'policy'>
  book: Pick<ReleaseBook, 'summary'>
  events: Pick<EventLog, 'event'>
  metrics: Pick<DaemonMetrics, 'refused'>
  changes: { changed: () => void }
}

/** Events of rollout pauses. */
export interface RolloutPauseEvents {
  /** A record changed whether a release is paused: the rollout decides again. */
  changed: [app: string, release: string]
}

/** Applies pause and resume records. */
export class RolloutPauses extends EventEmitter<RolloutPauseEvents> {
  private readonly c: RolloutPausesComponents

  constructor (components: RolloutPausesComponents) {
    super()
    this.c = components
  }

  /**
   * A pause or resume record: verified (a threshold of the app's publishers), kept when it
   * supersedes the one held for its release (a higher sequence), and applied. Returns the
   * outcome (`known` for the record held); throws the refusal's named error
   * (`ThresholdNotMetError`, `UntrustedAppError`, `PauseOutdatedError`, `PauseAppMismatchError`).
   */
  async apply (signed: SignedPause, via: string): Promise<PauseOutcome> {
    const { app, release, action, sequence, issued, reason } = signed.record
    const id = release.toString()
    let outcome: PauseOutcome
    try {
      const known = this.c.book.summary(id)
      if (known != null && known.app !== app) {
        throw new PauseAppMismatchError(`a ${action} signed for app ${app} names ${id}, a release of ${known.app}; it is refused`)
      }
      outcome = await this.c.pauses.take(signed, this.c.trustStore.policy)
    } catch (err) {
      const error = err as Error
      this.c.metrics.refused(error.name)
      const routine = err instanceof RefusalError && err.routine
      this.c.events.event(routine ? 'info' : 'warn', 'pause-refused', `refused a rollout ${action} of ${app} ${id} (signed at ${issued}) via ${via}: ${error.message}`, { app, release: id, action, sequence, error: error.name, via })
      throw err
    }
    if (outcome.kind === 'known') return outcome
    const entry = this.c.book.summary(id)
    const what = entry == null ? `${app} ${id}` : `${app}@${entry.version} (${id})`
    const by = outcome.signers.map(shortKey).join(', ')
    this.c.events.event('warn', action === 'pause' ? 'rollout-paused' : 'rollout-resumed',
      `the rollout of ${what} was ${action === 'pause' ? 'paused' : 'resumed'} by its publishers (${by}) via ${via}, signed at ${issued}${reason === '' ? '' : `: ${reason}`}`,
      { app, release: id, action, sequence, signers: outcome.signers, via, id: outcome.id })
    this.emit('changed', app, id)
    this.c.changes.changed()
    return outcome
  }

  /** Why the rollout of `release` (of `app`) is paused, or undefined when it is not. */
  pausedReason (app: string, release: string): string | undefined {
    return this.c.pauses.pausedReason(app, release)
  }

  /** The record held for a release of `app`, if any. */
  get (app: string, release: string): SignedPause | undefined {
    return this.c.pauses.get(app, release)
  }
}
