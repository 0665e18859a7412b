/**
 * Trust updates on this peer: revocations and trust rotations, checked against the
 * policy in force and applied — a revoked release is dropped (or rolled back where it
 * runs), a rotation changes which keys count and drops what the new keys do not admit.
 * Local only: spreading them is publishing's job, hearing them admission's.
 */
import { EventEmitter } from 'node:events'
import { verifyRevocation } from '../release/index.js'
import type { AdoptOutcome, ReleaseBook, SignedRevocation, SignedRotation, TrustStore } from '../release/index.js'
import type { Downloads } from './downloads.js'
import type { EventLog } from './event-log.js'
import type { DaemonMetrics } from './metrics.js'
import type { NodeStateStore } from './node-state.js'
import type { TurnedDown } from './turned-down.js'
import { RefusalError } from '../errors.js'

/** What trust updates need. */
export interface TrustUpdatesComponents {
  trustStore: Pick<TrustStore, 'adopt' | 'policy'>
  book: Pick<ReleaseBook, 'revoke' | 'dropUntrusted'>
  downloads: Pick<Downloads, 'abort' | 'forget'>
  turnedDown: Pick<TurnedDown, 'clear'>
  nodeState: Pick<NodeStateStore, 'state'>
  events: Pick<EventLog, 'info' | 'warn' | 'event'>
  metrics: Pick<DaemonMetrics, 'refused' | 'rotation'>
  changes: { changed: () => void }
}

/** Events of trust updates. */
export interface TrustUpdateEvents {
  /** A revocation of the release this peer runs was applied: the rollout rolls it back. */
  'running-revoked': [id: string]
  /** A revocation of release `id` (running or not) was applied: SOs it brought must be unloaded. */
  revoked: [id: string]
  /** A rotation of `app` was adopted: peers should be synced with again, and a beat sent. */
  rotated: [app: string]
}

/** Applies revocations and rotations. */
export class TrustUpdates extends EventEmitter<TrustUpdateEvents> {
  private readonly c: TrustUpdatesComponents

  constructor (components: TrustUpdatesComponents) {
    super()
    this.c = components
  }

  /** At start: rotations adopted before a stop may not have dropped what they no longer admit yet. */
  async start (): Promise<void> {
    const trust = this.c.trustStore.policy
    for (const app of trust.appNames()) {
      if ((trust.forApp(app)?.sequence ?? 0) > 0) await this.dropUntrusted(app)
    }
  }

  /**
   * A revocation: verified against the trust policy (a threshold of the app's
   * publishers), kept durably, and applied — a peer running the release rolls back,
   * others drop it. Returns `known` when it was already applied; throws the refusal.
   */
  async applyRevocation (revocation: SignedRevocation, via: string): Promise<'new' | 'known'> {
    let fresh: boolean
    try {
      await verifyRevocation(revocation, this.c.trustStore.policy)
      // a revocation of a known release of another app is refused here (RevocationAppMismatchError)
      fresh = await this.c.book.revoke(revocation)
    } catch (err) {
      const error = err as Error
      this.c.metrics.refused(error.name)
      const routine = err instanceof RefusalError && err.routine
      this.c.events.event(routine ? 'info' : 'warn', 'revocation-refused', `refused a revocation via ${via}: ${error.message}`)
      throw err
    }
    const id = revocation.record.release.toString()
    if (!fresh) return 'known'
    this.c.downloads.abort(id)
    // a release turned down as the revoked one's twin may be the right one after all
    this.c.turnedDown.clear()
    this.c.events.warn('release-revoked', `release ${id} of ${revocation.record.app} was revoked by its publishers (via ${via})${revocation.record.reason === '' ? '' : `: ${revocation.record.reason}`}`, { id })
    this.emit('revoked', id)
    if (this.c.nodeState.state.current?.id === id) this.emit('running-revoked', id)
    this.c.changes.changed()
    return 'new'
  }

  /**
   * A trust rotation: adopted when a threshold of the app's current publishers signed it
   * and it is the next one (`TrustStore.adopt`); from then on only the new keys count.
   * Releases not started here that the new policy no longer admits are dropped, and
   * listeners hear `rotated` (releases and revocations this peer turned down may be signed
   * by the new keys). Throws the refusal's named error.
   */
  async applyRotation (rotation: SignedRotation, via: string): Promise<AdoptOutcome> {
    const { app, sequence } = rotation.record
    let outcome: AdoptOutcome
    try {
      outcome = await this.c.trustStore.adopt(rotation)
    } catch (err) {
      const error = err as Error
      this.c.metrics.rotation('refused', error.name)
      this.c.metrics.refused(error.name)
      const routine = err instanceof RefusalError && err.routine
      this.c.events.event(routine ? 'info' : 'warn', 'rotation-refused', `refused a trust rotation of ${app} to sequence ${sequence} via ${via}: ${error.message}`, { app, sequence, error: error.name, via })
      throw err
    }
    if (outcome.kind === 'known') return outcome
    this.c.metrics.rotation('adopted')
    this.noteRotated(rotation, via, outcome.id)
    await this.dropUntrusted(app)
    // what this peer turned down may be signed by the new keys: hear it again from every peer
    this.c.turnedDown.clear()
    this.emit('rotated', app)
    this.c.changes.changed()
    return outcome
  }

  /** The `trust-rotated` event (also for rotations adopted again at start). */
  noteRotated (rotation: SignedRotation, via: string, id?: string): void {
    const { app, publishers, threshold, sequence, reason } = rotation.record
    this.c.events.warn('trust-rotated', `the trust policy of ${app} was rotated by its publishers (via ${via}): now ${threshold} of ${publishers.length} key${publishers.length === 1 ? '' : 's'} (${publishers.join(', ')}), sequence ${sequence}${reason === '' ? '' : `: ${reason}`}`, {
      app, sequence, publishers, threshold, via, ...(id == null ? {} : { id })
    })
  }

  /** Sequences of the apps whose trust was rotated, for beats (others are 0). */
  sequences (): Record<string, number> {
    const trust = this.c.trustStore.policy
    const out: Record<string, number> = {}
    for (const app of trust.appNames().slice(0, 32)) {
      const sequence = trust.forApp(app)?.sequence ?? 0
      if (sequence > 0) out[app] = sequence
    }
    return out
  }

  /** Forget the releases of `app` not started here that the policy in force no longer admits (after a rotation). */
  private async dropUntrusted (app: string): Promise<void> {
    const threshold = this.c.trustStore.policy.forApp(app)?.threshold ?? 0
    for (const entry of await this.c.book.dropUntrusted(app)) {
      this.c.downloads.forget(entry.id)
      const r = entry.signed.record
      this.c.events.warn('release-dropped', `dropped ${r.app}@${r.version} (${entry.id}): after the trust rotation it no longer has ${threshold} signature${threshold === 1 ? '' : 's'} by trusted keys; co-signed by the current keys it is admitted again`, { id: entry.id, app: r.app, version: r.version })
    }
  }
}
