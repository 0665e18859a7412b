/**
 * The rollout pauses a peer holds: per app and release, the one signed pause record that
 * won (the highest sequence), kept durably in `pauses/<app>/<release id>.cbor` — a pause
 * survives restarts and is handed to late peers by sync. Every record goes through
 * {@link PauseBook.take}: verified against the trust policy in force, then compared with
 * the one held, so gossip, sync and the control API apply the same checks.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { writeFileAtomic } from '../store/index.js'
import { PauseOutdatedError, decodePause, describePause, encodePause, pauseId, pauseSupersedes, verifyPause } from './pause.js'
import type { SignedPause } from './pause.js'
import type { TrustPolicy } from './trust.js'

/** What {@link PauseBook.take} did with a record. */
export interface PauseOutcome {
  kind: 'new' | 'known'
  /** The record's id. */
  id: string
  /** The trusted keys whose signatures verified. */
  signers: string[]
}

interface Held {
  signed: SignedPause
  id: string
}

/** The pause records of this peer, durable. */
export class PauseBook {
  private readonly held = new Map<string, Held>()
  private queue: Promise<unknown> = Promise.resolve()

  /** `dir`: where the records are kept (`DataDir.pauses`). */
  constructor (private readonly dir: string) {}

  private static key (app: string, release: string): string {
    return `${app}/${release}`
  }

  /** Load the kept records; unreadable files are skipped and reported. */
  async load (): Promise<string[]> {
    const problems: string[] = []
    for (const app of await fs.readdir(this.dir).catch(() => [] as string[])) {
      for (const name of await fs.readdir(path.join(this.dir, app)).catch(() => [] as string[])) {
        if (!name.endsWith('.cbor')) continue
        try {
          const signed = decodePause(await fs.readFile(path.join(this.dir, app, name)))
          const { record } = signed
          if (record.app !== app || `${record.release.toString()}.cbor` !== name) throw new Error('file name does not match its record')
          this.held.set(PauseBook.key(app, record.release.toString()), { signed, id: (await pauseId(record)).toString() })
        } catch (err) {
          problems.push(`${app}/${name}: ${(err as Error).message}`)
        }
      }
    }
    return problems
  }

  /** The record held for a release of `app`, if any (a pause or a resume). */
  get (app: string, release: string): SignedPause | undefined {
    return this.held.get(PauseBook.key(app, release))?.signed
  }

  /** Why the rollout of `release` (of `app`) is paused, or undefined when it is not. */
  pausedReason (app: string, release: string): string | undefined {
    const signed = this.get(app, release)
    return signed?.record.action === 'pause' ? describePause(signed) : undefined
  }

  /** The records of `app` (for sync), oldest issued first (by time, whatever offset each names). */
  list (app: string): SignedPause[] {
    return [...this.held.values()].map(h => h.signed).filter(s => s.record.app === app)
      .sort((a, b) => Date.parse(a.record.issued) !== Date.parse(b.record.issued) ? Date.parse(a.record.issued) - Date.parse(b.record.issued) : a.record.sequence - b.record.sequence)
  }

  /**
   * Verify a record against `trust` and keep it when it supersedes the one held for its
   * release (only the signatures that verified are kept). Returns `known` for the record
   * held; throws `ThresholdNotMetError`, `UntrustedAppError` or {@link PauseOutdatedError}.
   * Serialised, so two records for one release never race.
   */
  async take (signed: SignedPause, trust: TrustPolicy): Promise<PauseOutcome> {
    const run = this.queue.then(async () => await this.takeNow(signed, trust))
    this.queue = run.catch(() => {})
    return await run
  }

  private async takeNow (offered: SignedPause, trust: TrustPolicy): Promise<PauseOutcome> {
    const { record } = offered
    const release = record.release.toString()
    const held = this.held.get(PauseBook.key(record.app, release))
    const id = (await pauseId(record)).toString()
    if (held?.id === id) return { kind: 'known', id, signers: held.signed.signatures.map(s => s.key) }
    const { signers, signatures } = await verifyPause(offered, trust)
    if (held != null && !pauseSupersedes({ record, id }, { record: held.signed.record, id: held.id })) {
      const h = held.signed.record
      throw new PauseOutdatedError(`a ${h.action} of ${record.app} ${release} signed at ${h.issued} (sequence ${h.sequence}) is held; this ${record.action} signed at ${record.issued} (sequence ${record.sequence}, ${id}) is ${record.sequence < h.sequence ? 'older' : 'a losing twin of the same sequence'}, and is refused`)
    }
    const kept: SignedPause = { record, signatures }
    await writeFileAtomic(path.join(this.dir, record.app, `${release}.cbor`), encodePause(kept))
    this.held.set(PauseBook.key(record.app, release), { signed: kept, id })
    return { kind: 'new', id, signers }
  }
}
