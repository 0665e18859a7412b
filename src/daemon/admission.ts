/**
 * Admission: every message of the releases topic — a signed release, a revocation, a
 * trust rotation, a rollout pause record — comes in through {@link Admission.take}, whether gossip delivered it
 * or anti-entropy sync fetched it, and leaves with one verdict. Gossip maps the verdict
 * to accept, ignore or reject; sync goes on with the next frame.
 */
import { MalformedInputError, RefusalError, UpgossipError } from '../errors.js'
import { EquivocationError, decodeReleasesTopicMessage } from '../release/index.js'
import type { ReleaseBook, ReleasesTopicMessage, Verdict } from '../release/index.js'
import type { EventLog } from './event-log.js'
import type { RolloutPauses } from './rollout-pauses.js'
import type { DaemonMetrics } from './metrics.js'
import type { TrustUpdates } from './trust-updates.js'
import type { TurnedDown } from './turned-down.js'

/** Where a message came from. */
export interface Via {
  kind: 'gossip' | 'sync'
  /** The peer that sent it. */
  from: string
}

/** The verdict on one message. */
export type IntakeVerdict =
  | { kind: 'new' | 'merged' | 'known', id: string }
  | { kind: 'ignored' | 'rejected', id?: string, reason: string, error: UpgossipError }

/** What admission made of one message. */
export interface Intake {
  verdict: IntakeVerdict
  /** A trust rotation was adopted. */
  rotated: boolean
  /** Refused under the trust policy in force; a rotation adopted later (in the same sync, say) may admit it. */
  retry: boolean
}

/** What admission needs. */
export interface AdmissionComponents {
  book: Pick<ReleaseBook, 'screen'>
  trustUpdates: Pick<TrustUpdates, 'applyRevocation' | 'applyRotation'>
  pauses: Pick<RolloutPauses, 'apply'>
  turnedDown: Pick<TurnedDown, 'remember'>
  events: Pick<EventLog, 'info' | 'warn' | 'error'>
  metrics: Pick<DaemonMetrics, 'refused'>
  /** A release came in by gossip (new, co-signed or known): the network is heard. */
  heardRelease: () => void
}

/** The gossip validation result a verdict maps to. */
export function gossipResult (verdict: IntakeVerdict): 'accept' | 'ignore' | 'reject' {
  if (verdict.kind === 'new' || verdict.kind === 'merged') return 'accept'
  return verdict.kind === 'rejected' ? 'reject' : 'ignore'
}

/**
 * A refusal as a verdict: only the sender's fault is rejected. A message that cannot be
 * decoded is the sender's fault unless the error says otherwise (a newer peer's message
 * type is not malformed, just not ours); applying one fails by the sender's fault only
 * when a refusal says so (not for this peer's own trouble, a full disk say).
 */
function refusal (err: unknown, decoding: boolean): IntakeVerdict & { kind: 'ignored' | 'rejected' } {
  const error = err instanceof UpgossipError ? err : decoding ? new MalformedInputError(String(err)) : new UpgossipError(String(err))
  const sender = error instanceof RefusalError ? error.fault === 'sender' : decoding
  return { kind: sender ? 'rejected' : 'ignored', reason: error.message, error }
}

/** Whether a refusal depends on the trust policy in force. */
function dependsOnTrust (verdict: IntakeVerdict): boolean {
  return verdict.kind === 'ignored' && verdict.error instanceof RefusalError && verdict.error.fault === 'trust'
}

/**
 * The event and metric a release verdict makes: admitted and co-signed are events;
 * every refusal is counted by its error's name (a release ignored under the trust policy
 * in force too: over sync nothing else records it); rejected and equivocation are events.
 */
export function noteVerdict (c: Pick<AdmissionComponents, 'events' | 'metrics'>, verdict: Verdict, where: string): void {
  if (verdict.kind === 'new') {
    const r = verdict.entry.signed.record
    c.events.info('release-admitted', `admitted ${r.app}@${r.version} (${verdict.id}) via ${where}`, { id: verdict.id, app: r.app, version: r.version, via: where })
  } else if (verdict.kind === 'merged') {
    c.events.info('release-cosigned', `merged new signatures for ${verdict.id} via ${where}`, { id: verdict.id, via: where })
  } else if (verdict.kind === 'rejected') {
    c.metrics.refused(verdict.error.name)
    c.events.warn('release-rejected', `refused a release via ${where}: ${verdict.reason}`, { id: verdict.id, error: verdict.error.name, via: where })
  } else if (verdict.kind === 'ignored') {
    c.metrics.refused(verdict.error.name)
    // not the sender's fault (it may only relay), but an operator must hear of it
    if (verdict.error instanceof EquivocationError) c.events.error('equivocation', `refused a release via ${where}: ${verdict.reason}`, { id: verdict.id, error: verdict.error.name, via: where })
  }
}

/** Takes in releases-topic messages. */
export class Admission {
  private readonly c: AdmissionComponents

  constructor (components: AdmissionComponents) {
    this.c = components
  }

  /** Take in one releases-topic message (dag-cbor bytes). */
  async take (bytes: Uint8Array, via: Via): Promise<Intake> {
    const where = via.kind === 'gossip' ? `gossip from ${via.from}` : `sync with ${via.from}`
    let message: ReleasesTopicMessage
    try {
      message = decodeReleasesTopicMessage(bytes)
    } catch (err) {
      // a newer peer's message type is not malformed, just not ours
      const verdict = refusal(err, true)
      this.note(verdict, where)
      return { verdict, rotated: false, retry: false }
    }
    if (message.type === 'revocation') {
      try {
        const outcome = await this.c.trustUpdates.applyRevocation(message.revocation, where)
        return { verdict: { kind: outcome, id: message.revocation.record.release.toString() }, rotated: false, retry: false }
      } catch (err) {
        const verdict = refusal(err, false)
        return { verdict, rotated: false, retry: dependsOnTrust(verdict) }
      }
    }
    if (message.type === 'pause') {
      try {
        const outcome = await this.c.pauses.apply(message.pause, where)
        return { verdict: { kind: outcome.kind, id: outcome.id }, rotated: false, retry: false }
      } catch (err) {
        const verdict = refusal(err, false)
        return { verdict, rotated: false, retry: dependsOnTrust(verdict) }
      }
    }
    if (message.type === 'rotation') {
      try {
        const outcome = await this.c.trustUpdates.applyRotation(message.rotation, where)
        return { verdict: { kind: outcome.kind, id: outcome.id }, rotated: outcome.kind === 'new', retry: false }
      } catch (err) {
        const verdict = refusal(err, false)
        return { verdict, rotated: false, retry: dependsOnTrust(verdict) }
      }
    }
    let verdict: Verdict
    try {
      // gossip forwards once checked, and the release is kept durably just after (the
      // book tells listeners then); sync waits for the disk
      const screened = await this.c.book.screen(message.signed)
      verdict = screened.verdict
      if (via.kind === 'sync') await screened.stored
      else {
        screened.stored.catch((err: Error) => {
          // our own trouble (a full disk): not the sender's fault; sync brings it again later
          this.c.events.warn('release-not-stored', `could not keep a release from ${via.from}: ${err.message}`)
        })
      }
    } catch (err) {
      this.c.events.warn('release-not-stored', `could not take in a release from ${via.from}: ${(err as Error).message}`)
      return { verdict: { kind: 'ignored', reason: (err as Error).message, error: err instanceof UpgossipError ? err : new UpgossipError(String(err)) }, rotated: false, retry: false }
    }
    const intake: IntakeVerdict = verdict.kind === 'new' || verdict.kind === 'merged' ? { kind: verdict.kind, id: verdict.id } : verdict
    if (intake.kind === 'ignored' || intake.kind === 'rejected') this.c.turnedDown.remember(intake)
    else if (via.kind === 'gossip') this.c.heardRelease()
    this.note(verdict, where)
    return { verdict: intake, rotated: false, retry: dependsOnTrust(intake) }
  }

  /** The event and metric a release verdict makes. */
  note (verdict: Verdict, where: string): void {
    noteVerdict(this.c, verdict, where)
  }
}
