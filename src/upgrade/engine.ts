/**
 * The upgrade state machine: buffer → drain → stop → snapshot → transform → start →
 * verify → commit, or rollback to the old version and its untouched state. Before each
 * step the journal is written durably; `recover()` on start finishes or undoes the step
 * a crash interrupted. `UPGOSSIP_FAULT=crash-at:<step>` kills the daemon at that step.
 */
import fs from 'node:fs/promises'
import { parseDuration } from '../duration.js'
import { UpgossipError } from '../errors.js'
import { killLeftoverGroup } from '../host/index.js'
import type { AppHost, AppSpec, SimulationSpec } from '../host/index.js'
import type { Manifest } from '../package/index.js'
import { readJournal, writeJournal } from './journal.js'
import type { Journal, UpgradeAttempt, UpgradeStep } from './journal.js'
import { DEFAULT_LOG_LIMIT, copyTree, fsyncTree, removeTree, rotateIfFull, setWritable } from '../store/index.js'
import type { DataDir, LogLimit } from '../store/index.js'
import { runTransform } from './transform.js'

/** An upgrade could not run at all (another is running, a package is missing). */
export class UpgradeRefusedError extends UpgossipError {
  static override name = 'UpgradeRefusedError'
}

/** A release as installed on this peer. */
export interface InstalledRelease {
  id: string
  app: string
  version: string
  packageDir: string
  manifest: Manifest
}

/** What the engine needs. */
export interface UpgradeEngineInit {
  dataDir: DataDir
  host: AppHost
  /** Looks a release up by id (package unpacked, manifest read). */
  installed: (id: string) => Promise<InstalledRelease | undefined>
  /** The simulation objects a release's app loads (its past chain, staged futures). */
  simulations: (r: InstalledRelease) => Promise<SimulationSpec[]>
  /** The switch to `to` is committed: make it current (durably). */
  onCommit: (to: ReleaseRef, from: ReleaseRef, kind: UpgradeAttempt['kind']) => Promise<void>
  /** After a commit, when the journal is clear: best-effort clean-up (garbage collection). */
  afterCommit?: () => Promise<void>
  /** The switch failed and the old version runs again. */
  onFailed: (to: ReleaseRef, from: ReleaseRef, reason: string, kind: UpgradeAttempt['kind']) => Promise<void>
  /**
   * The switch is over (committed, or rolled back) and no switch runs any more: the moment a
   * status says what runs now, without "upgrading" (the daemon announces it by a beat).
   */
  switchEnded?: () => void
  /** A switch ended (committed, rolled back, or cut short by a stop of the daemon): for metrics. */
  observeSwitch?: (s: SwitchObservation) => void
  /** Last check before the commit step (a revocation may have come in during the switch). */
  mayCommit?: (to: ReleaseRef) => string | undefined
  log: { info: (type: string, message: string, fields?: Record<string, unknown>) => void, warn: (type: string, message: string, fields?: Record<string, unknown>) => void }
  /** `UPGOSSIP_FAULT`, e.g. `crash-at:transform`. */
  fault?: string
  /** How often an interrupted switch to one release is retried before it is declared failed. */
  maxInterrupted?: number
  drainMs?: number
  /** Time limit of a transform. */
  transformLimitMs?: number
  /** How big `app.log` (where transforms write) grows before it is moved aside. */
  logLimit?: LogLimit
  /** Since when the running version has run (ms), to name the window whose writes a rollback without `down` loses. */
  runningSince?: () => number | null
}

/** A release named by id and version (all a commit or a failure needs). */
export interface ReleaseRef {
  id: string
  version: string
  app?: string
}

/**
 * A switch as metrics see it: its kind, whether it was committed or rolled back (or cut
 * short by a stop of the daemon: `interrupted`), how long it took from its start, and how
 * many requests and connections were held during it.
 */
export interface SwitchObservation {
  kind: UpgradeAttempt['kind']
  outcome: 'committed' | 'rolled-back' | 'interrupted'
  seconds: number
  held: number
}

/** The outcome of a switch. */
export type SwitchOutcome = { ok: true } | { ok: false, reason: string }

/** What recovery found and did. */
export type RecoveryOutcome =
  | { kind: 'none' }
  | { kind: 'finished-commit', to: string }
  | { kind: 'undone', to: string, step: UpgradeStep, failed: boolean, switchKind: UpgradeAttempt['kind'] }

/** Runs switches between versions of the app. */
export class UpgradeEngine {
  private readonly init: UpgradeEngineInit
  private readonly journalFile: string
  private journal: Journal = { attempt: null, interrupted: {} }
  private running: UpgradeAttempt | undefined
  /** Settles when the switch in progress ends, whatever its outcome. */
  private ended: Promise<void> = Promise.resolve()
  private stopping = false

  constructor (init: UpgradeEngineInit) {
    this.init = init
    this.journalFile = init.dataDir.journal
  }

  /** The state directory of a release. */
  stateDir (id: string): string {
    return this.init.dataDir.stateDir(id)
  }

  /**
   * The daemon is stopping: a switch that fails from now on is left to `recover()` on the
   * next start, never rolled back half-way or reported failed. `planned` (a SIGTERM whose
   * switch outlived the stop timeout) marks the attempt in the journal, so the next start
   * undoes it without counting it as an interruption.
   */
  async stop (planned = false): Promise<void> {
    this.stopping = true
    if (planned && this.running != null && this.journal.attempt === this.running) {
      this.running.planned = true
      await writeJournal(this.journalFile, this.journal).catch(() => {})
    }
  }

  /** Wait up to `timeoutMs` for the switch in progress to end; true when none runs. */
  async settle (timeoutMs: number): Promise<boolean> {
    if (this.running == null) return true
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs) })
    await Promise.race([this.ended, late])
    clearTimeout(timer)
    return this.running == null
  }

  /** The switch in progress, if any. */
  get inProgress (): UpgradeAttempt | undefined {
    return this.running
  }

  /** The spec the host runs for a release, with the simulation objects it loads. */
  async spec (r: InstalledRelease): Promise<AppSpec> {
    const { main, run, protocol, health } = r.manifest
    return { app: r.app, version: r.version, packageDir: r.packageDir, main, run, healthPath: health.http, stateDir: this.stateDir(r.id), protocol, simulations: await this.init.simulations(r) }
  }

  private async step (attempt: UpgradeAttempt, step: UpgradeStep): Promise<void> {
    attempt.step = step
    this.journal.attempt = attempt
    await writeJournal(this.journalFile, this.journal)
    if (this.init.fault === `crash-at:${step}`) {
      this.init.log.warn('fault', `UPGOSSIP_FAULT: crashing at step ${step}`)
      process.kill(process.pid, 'SIGKILL')
      await new Promise(() => {})
    }
  }

  private async clearAttempt (): Promise<void> {
    this.journal.attempt = null
    await writeJournal(this.journalFile, this.journal)
  }

  /**
   * Switch from the running `from` to `to`. `upgrade` runs `to`'s `up` transform;
   * `downgrade` (operator rollback, revocation) runs `from`'s `down` transform, or
   * falls back to `to`'s kept state. On any failure the old version runs again.
   */
  async switch (from: InstalledRelease, to: InstalledRelease, kind: UpgradeAttempt['kind'], reason?: string): Promise<SwitchOutcome> {
    if (this.running != null) throw new UpgradeRefusedError(`a switch to ${this.running.to.version} is already running`)
    const attempt: UpgradeAttempt = { kind, from: { id: from.id, version: from.version }, to: { id: to.id, version: to.version }, step: 'buffer', started: new Date().toISOString(), reason }
    this.running = attempt
    let end = (): void => {}
    this.ended = new Promise<void>(resolve => { end = resolve })
    const { host } = this.init
    const snapshot = this.init.dataDir.snapshotDir(to.id)
    const label = `${to.app} ${from.version} → ${to.version}`
    let fromStopped = false
    let committed = false
    const startedAt = performance.now()
    let outcome: SwitchObservation['outcome'] = 'interrupted'
    try {
      this.journal = await readJournal(this.journalFile)
      this.init.log.info('upgrade-started', `${kind} ${label} started${reason != null ? ` (${reason})` : ''}`, { from: from.id, to: to.id, kind })
      await this.step(attempt, 'buffer')
      host.hold()
      await this.step(attempt, 'drain')
      await host.current?.drain(this.init.drainMs ?? 10_000)
      await this.step(attempt, 'stop')
      await host.stopCurrent()
      fromStopped = true
      await this.step(attempt, 'snapshot')
      await removeTree(snapshot)
      await fs.mkdir(this.stateDir(from.id), { recursive: true })
      await copyTree(this.stateDir(from.id), snapshot)
      await setWritable(snapshot, false)
      await this.step(attempt, 'transform')
      await this.transform(from, to, kind, snapshot)
      await this.step(attempt, 'start')
      const proc = host.launch(await this.spec(to))
      await this.step(attempt, 'verify')
      await proc.waitReady(parseDuration(to.manifest.health.readyWithin))
      await proc.stayHealthy(parseDuration(to.manifest.health.stableFor))
      const veto = this.init.mayCommit?.(to)
      if (veto != null) throw new UpgradeRefusedError(veto)
      // the new state must be on disk before node.json points at it
      await fsyncTree(this.stateDir(to.id))
      await this.step(attempt, 'commit')
      // from here the switch is committed: the journal says so, and a start after a crash finishes it
      committed = true
      host.supervise()
      await this.init.onCommit(to, from, kind)
      host.unhold()
      delete this.journal.interrupted[to.id]
      await this.clearAttempt()
      await removeTree(snapshot)
      this.init.log.info('upgrade-committed', `${kind} ${label} committed`, { from: from.id, to: to.id, kind })
      outcome = 'committed'
      await this.cleanUp()
      return { ok: true }
    } catch (err) {
      const why = (err as Error).message
      if (committed) {
        // never roll back past the commit step (that would drop the state the journal
        // points at): the new version runs, and the next start finishes the bookkeeping
        host.unhold()
        outcome = 'committed'
        this.init.log.warn('commit-incomplete', `${kind} ${label} is committed and ${to.version} runs, but recording it failed (${why}); the next start of the daemon finishes it from the journal`, { from: from.id, to: to.id, kind })
        return { ok: true }
      }
      if (this.stopping) {
        // the daemon is going down: leave the journal as it is for recover()
        this.init.log.warn('upgrade-interrupted', `${kind} ${label} stopped at ${attempt.step} because the daemon is stopping; it is finished or undone on the next start`)
        return { ok: false, reason: 'the daemon stopped' }
      }
      // rollback() moves the journal to its own step: name the one that failed
      const failedAt = attempt.step
      this.init.log.warn('upgrade-failed', `${kind} ${label} failed at ${failedAt}: ${why}; rolling back`, { from: from.id, to: to.id, step: failedAt, kind })
      outcome = 'rolled-back'
      await this.rollback(attempt, from, to, snapshot, fromStopped)
      // the old version runs again: no switch is in progress while the failure is reported
      // (a status read once the release shows failed says running, not rolling-back)
      this.running = undefined
      await this.init.onFailed(to, from, `failed at ${failedAt}: ${why}`, kind)
      return { ok: false, reason: `failed at ${failedAt}: ${why}` }
    } finally {
      this.running = undefined
      this.init.observeSwitch?.({ kind, outcome, seconds: (performance.now() - startedAt) / 1000, held: host.heldCount })
      this.init.switchEnded?.()
      end()
    }
  }

  private async cleanUp (): Promise<void> {
    try {
      await this.init.afterCommit?.()
    } catch (err) {
      this.init.log.warn('gc-failed', `cleaning up old versions failed (it is retried after the next switch): ${(err as Error).message}`)
    }
  }

  private async transform (from: InstalledRelease, to: InstalledRelease, kind: UpgradeAttempt['kind'], snapshot: string): Promise<void> {
    const target = this.stateDir(to.id)
    const logFile = this.init.dataDir.appLog
    // a transform writes to the file itself: it is moved aside before, if full
    rotateIfFull(logFile, this.init.logLimit ?? DEFAULT_LOG_LIMIT)
    const groupFile = this.init.dataDir.transformGroup
    if (kind === 'upgrade') {
      const up = to.manifest.transform?.up
      if (up == null) {
        await removeTree(target)
        await copyTree(snapshot, target)
        // the snapshot was read-only; the new version writes here
        await setWritable(target, true)
        return
      }
      await runTransform({ packageDir: to.packageDir, entry: up, from: snapshot, to: target, fromVersion: from.version, toVersion: to.version, logFile, groupFile, limitMs: this.init.transformLimitMs })
      return
    }
    const down = from.manifest.transform?.down
    if (down != null) {
      await runTransform({ packageDir: from.packageDir, entry: down, from: snapshot, to: target, fromVersion: from.version, toVersion: to.version, logFile, groupFile, limitMs: this.init.transformLimitMs })
      return
    }
    await fs.mkdir(target, { recursive: true })
    const since = this.init.runningSince?.()
    const window = since == null ? `while ${from.version} ran` : `from ${new Date(since).toISOString()} to ${new Date().toISOString()}`
    this.init.log.warn('writes-lost', `${from.app} ${from.version} has no down transform: going back to the state kept from before ${from.version} ran; writes made ${window} are not carried back`, { from: from.id, to: to.id, lostFrom: since == null ? null : new Date(since).toISOString(), lostTo: new Date().toISOString() })
  }

  private async rollback (attempt: UpgradeAttempt, from: InstalledRelease, to: InstalledRelease, snapshot: string, fromStopped: boolean): Promise<void> {
    const { host } = this.init
    try {
      await this.step(attempt, 'rollback')
    } catch (err) {
      // a full disk must not keep the old version down: roll back all the same. Removing the
      // new state frees space; a crash before the journal is cleared undoes the same way
      this.init.log.warn('journal-unwritten', `could not record the rollback in the journal (${(err as Error).message}); rolling back all the same`, { to: to.id })
    }
    // before the stop step the old version still runs and stays; after it, whatever runs is the new one
    if (fromStopped) await host.stopCurrent().catch(() => {})
    if (attempt.kind === 'upgrade') await removeTree(this.stateDir(to.id))
    await removeTree(snapshot)
    if (fromStopped || host.current == null) {
      const proc = host.launch(await this.spec(from))
      // supervised at once: if the old version exits while starting, it is restarted
      host.supervise()
      await proc.waitReady(parseDuration(from.manifest.health.readyWithin)).catch(err => {
        this.init.log.warn('rollback-start-failed', `${from.app}@${from.version} did not become ready after the rollback: ${(err as Error).message}`)
      })
    }
    host.supervise()
    host.unhold()
    await this.clearAttempt().catch(err => {
      // left in the journal, the attempt is undone again (harmlessly) on the next start
      this.init.log.warn('journal-unwritten', `could not clear the journal after the rollback (${(err as Error).message})`, { to: to.id })
    })
  }

  /**
   * On daemon start, before the app runs: finish a commit that was interrupted, or undo
   * any earlier step (the old state was never touched). An interrupted release goes back
   * to waiting, until it has been interrupted `maxInterrupted` times: then it has failed.
   */
  async recover (): Promise<RecoveryOutcome> {
    // a transform that outlived its daemon would go on writing while its step is undone or redone below
    const leftover = await killLeftoverGroup(this.init.dataDir.transformGroup)
    if (leftover != null) this.init.log.warn('transform-leftover', `killed the process group ${leftover} of a transform that a previous daemon left running`, { pgid: leftover })
    this.journal = await readJournal(this.journalFile)
    const attempt = this.journal.attempt
    if (attempt == null) return { kind: 'none' }
    const { from, to } = attempt
    const snapshot = this.init.dataDir.snapshotDir(attempt.to.id)
    if (attempt.step === 'commit') {
      // the new state was complete and on disk before this step: finish, from the journal alone
      await this.init.onCommit(to, from, attempt.kind)
      delete this.journal.interrupted[to.id]
      await this.clearAttempt()
      await removeTree(snapshot)
      this.init.log.info('upgrade-recovered', `finished the interrupted commit of ${to.version}`, { to: to.id })
      await this.cleanUp()
      return { kind: 'finished-commit', to: attempt.to.id }
    }
    // undo: the old state directory was never written
    if (attempt.kind === 'upgrade') await removeTree(this.stateDir(attempt.to.id))
    await removeTree(snapshot)
    if (attempt.planned === true && attempt.step !== 'rollback') {
      // an operator's stop, not a crash: tried again as if it had never started
      await this.clearAttempt()
      this.init.log.info('upgrade-interrupted', `the ${attempt.kind} to ${attempt.to.version} was stopped at ${attempt.step} by a planned stop of the daemon (past its stop timeout); ${attempt.from.version} runs, and the ${attempt.kind} is tried again; not counted as an interruption`, { to: attempt.to.id, step: attempt.step, planned: true })
      return { kind: 'undone', to: attempt.to.id, step: attempt.step, failed: false, switchKind: attempt.kind }
    }
    const count = (this.journal.interrupted[attempt.to.id] ?? 0) + 1
    this.journal.interrupted[attempt.to.id] = count
    await this.clearAttempt()
    const failed = attempt.step === 'rollback' || count >= (this.init.maxInterrupted ?? 3)
    this.init.log.warn('upgrade-interrupted', `the ${attempt.kind} to ${attempt.to.version} was interrupted at ${attempt.step} (${count} time${count === 1 ? '' : 's'}); ${attempt.from.version} runs${failed && attempt.kind === 'upgrade' ? '; the release is marked failed' : ''}`, { to: attempt.to.id, step: attempt.step, count })
    if (failed) await this.init.onFailed(to, from, `interrupted at ${attempt.step} ${count} time(s)`, attempt.kind)
    return { kind: 'undone', to: attempt.to.id, step: attempt.step, failed, switchKind: attempt.kind }
  }
}
