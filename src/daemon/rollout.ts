/**
 * The rollout on this peer: runs the current version, picks the next release (the
 * newest staged one whose `upgrades` range holds the running version, step by step,
 * passing over paused, held and halted ones: `chooseCandidate`), asks the schedule when,
 * claims a slot, and hands the switch to the upgrade engine. Joining with no code
 * installs the newest trusted release found.
 */
import { EventEmitter } from 'node:events'
import fs from 'node:fs/promises'
import semver from 'semver'
import type { Clock } from '../clock.js'
import { UpgossipError } from '../errors.js'
import type { AppHost } from '../host/index.js'
import type { ViewEntry } from '../net/index.js'
import type { ScheduleRule } from '../package/index.js'
import type { ReleaseBook, ReleaseEntry } from '../release/index.js'
import { parseManifest } from '../package/index.js'
import { applicableRules, chooseCandidate, claimWins, decide, moduleRunner, slotLimit } from '../schedule/index.js'
import type { CandidateRelease, PassedOver, ScheduleContext } from '../schedule/index.js'
import { parseDuration } from '../duration.js'
import type { DataDir } from '../store/index.js'
import type { ReleaseRef, UpgradeEngine } from '../upgrade/index.js'
import type { InstalledReleases } from './installed-releases.js'
import { schedulePeers } from './schedule-peers.js'
import type { OperatorControls } from './controls.js'
import type { EventLog } from './event-log.js'
import type { NodeStateStore } from './node-state.js'

/** How long a first install waits for a newer release that is still being fetched. */
const FIRST_INSTALL_WAIT_MS = 30_000

/** An operator action that cannot be done now. */
export class RolloutRefusedError extends UpgossipError {
  static override name = 'RolloutRefusedError'
}

/** What the rollout needs. */
export interface RolloutComponents {
  dataDir: Pick<DataDir, 'packages' | 'states'>
  book: Pick<ReleaseBook, 'get' | 'list' | 'summaries' | 'setState' | 'isRevoked'>
  engine: Pick<UpgradeEngine, 'inProgress' | 'recover' | 'spec' | 'stateDir' | 'switch'>
  host: Pick<AppHost, 'current' | 'idleFor' | 'launch' | 'stopCurrent' | 'supervise'>
  releases: Pick<InstalledReleases, 'installed' | 'simulationsFor' | 'nativeProtocol'>
  controls: Pick<OperatorControls, 'isApproved' | 'isHeld'>
  events: Pick<EventLog, 'info' | 'warn' | 'error'>
  clock: Clock
  peerId: () => string
  view: () => ViewEntry[]
  nodeState: Pick<NodeStateStore, 'state' | 'set'>
  changes: { changed: () => void }
  /** Why the rollout of a release is paused network-wide, if it is. */
  paused: (app: string, id: string) => string | undefined
  /** Why a peer that joined with no code must hear more peers before its first install, if it must (`joinPeers`). */
  joinWait?: () => string | undefined
}

/** Options of the rollout. */
export interface RolloutInit {
  /** The operator's `--policy` rules, which hold besides the release's schedule. */
  policy: ScheduleRule[]
  labels: Record<string, string>
  /** How long a claim settles before the claim step decides. */
  settleMs: number
}

/** Events of the rollout. */
export interface RolloutEvents {
  /** Others must hear of this peer now (a claim, a failure): a beat. */
  announce: []
}

/** Why a release waits, for `status`. */
export interface Waiting {
  rule: string
  reason?: string
}

/** Drives this peer's upgrades. */
export class Rollout extends EventEmitter<RolloutEvents> {
  private readonly c: RolloutComponents
  private readonly init: RolloutInit
  private timer: NodeJS.Timeout | undefined
  private ticking = false
  private lock: Promise<unknown> = Promise.resolve()
  private stopped = false
  private readonly waiting = new Map<string, Waiting>()
  private readonly stagedAt = new Map<string, number>()
  /** The rules that apply to each release (its manifest never changes). */
  private readonly rulesOf = new Map<string, ScheduleRule[]>()
  /** The release chosen last as next, if any. */
  private chosen: string | undefined
  /** The release this peer claims a slot for now. */
  claim: string | null = null
  /** A first install (no previous version) in progress. */
  private installing: string | undefined

  constructor (components: RolloutComponents, init: RolloutInit) {
    super()
    this.c = components
    this.init = init
  }

  /** Why a release waits, if it does. */
  waitingOn (id: string): Waiting | undefined {
    return this.waiting.get(id)
  }

  /** The release of this peer's app that waits now (the one chosen next, else the newest), and why (what beats tell other peers). */
  waitingNow (): (Waiting & { id: string }) | undefined {
    const app = this.c.nodeState.state.app
    const all = this.c.book.list().filter(e => e.state === 'waiting' && e.signed.record.app === app)
    const entry = all.find(e => e.id === this.chosen) ?? all.at(-1)
    const waiting = entry == null ? undefined : this.waiting.get(entry.id)
    return entry == null || waiting == null ? undefined : { id: entry.id, ...waiting }
  }

  /** The release being switched to now, if any. */
  get upgrading (): string | null {
    return this.c.engine.inProgress?.to.id ?? this.installing ?? null
  }

  /** A release was staged: the running app loads the future SOs it brings. */
  async refreshSimulations (): Promise<void> {
    const current = this.c.nodeState.state.current
    const proc = this.c.host.current
    if (current == null || proc == null || this.c.engine.inProgress != null) return
    await this.loadSimulations(current.id)
  }

  /** The app now running (release `id`) loads the SOs its release makes reachable now. */
  private async loadSimulations (id: string): Promise<void> {
    const proc = this.c.host.current
    const release = await this.c.releases.installed(id)
    if (release == null || proc == null) return
    await proc.loadSimulations(await this.c.releases.simulationsFor(release))
  }

  /** The running release's own protocol version. */
  nativeProtocol (): number | undefined {
    return this.c.releases.nativeProtocol()
  }

  /** Recover an interrupted switch, start the current version, and begin deciding. */
  async start (): Promise<void> {
    const outcome = await this.c.engine.recover()
    if (outcome.kind === 'undone' && !outcome.failed && outcome.switchKind === 'upgrade') await this.c.book.setState(outcome.to, 'staged')
    const current = this.c.nodeState.state.current
    // a first install cut short by a crash: try again
    for (const e of this.c.book.list()) {
      if (e.state === 'upgrading' && e.id !== current?.id) await this.c.book.setState(e.id, 'staged')
    }
    if (current != null) {
      const release = await this.c.releases.installed(current.id)
      if (release == null) {
        this.c.events.error('current-missing', `the package of the current release ${current.id} is missing; the app cannot start`)
      } else {
        const proc = this.c.host.launch(await this.c.engine.spec(release))
        this.c.host.supervise()
        proc.waitReady(parseDuration(release.manifest.health.readyWithin)).then(
          () => { this.c.events.info('app-started', `${release.app}@${release.version} is running`) },
          (err: Error) => { this.c.events.warn('app-not-ready', err.message) }
        )
      }
    }
    this.timer = setInterval(() => { void this.tick() }, 1000)
    this.timer.unref()
  }

  /** Stop deciding (a switch in progress is left to finish or to recovery). */
  stop (): void {
    this.stopped = true
    this.claim = null
    clearInterval(this.timer)
  }

  private context (entry: ReleaseEntry): ScheduleContext {
    const state = this.c.nodeState.state
    return {
      now: this.c.clock.now(),
      self: {
        peerId: this.c.peerId(),
        version: state.current?.version ?? null,
        state: 'running',
        labels: this.init.labels,
        since: state.since ?? undefined,
        claim: this.claim,
        failed: this.failedHere()
      },
      peers: schedulePeers(this.c.view(), state.app),
      network: schedulePeers(this.c.view(), state.app, true),
      release: { id: entry.id, version: entry.signed.record.version },
      stagedAt: this.stagedAt.get(entry.id) ?? this.c.clock.now(),
      approved: this.c.controls.isApproved(entry.id),
      idleFor: n => this.c.host.idleFor(n)
    }
  }

  /** Releases that failed on this peer (reported in beats). */
  failedHere (): string[] {
    return this.c.book.summaries().filter(e => e.state === 'failed').map(e => e.id).slice(-16)
  }

  private rules (entry: ReleaseEntry): ScheduleRule[] {
    let rules = this.rulesOf.get(entry.id)
    if (rules == null) this.rulesOf.set(entry.id, rules = applicableRules(parseManifest(entry.signed.record.manifest).schedule, this.init.policy))
    return rules
  }

  /** The next release to switch to, and why every other staged or waiting one of this app is passed over ({@link chooseCandidate}). */
  choose (): { entry?: ReleaseEntry, passed: Map<string, PassedOver> } {
    const state = this.c.nodeState.state
    const app = state.app
    if (app == null) return { passed: new Map() }
    const entries = this.c.book.list().filter(e => e.signed.record.app === app && (e.state === 'staged' || e.state === 'waiting'))
    const releases = entries.map((e): CandidateRelease & { entry: ReleaseEntry } => ({
      entry: e,
      id: e.id,
      version: e.signed.record.version,
      upgrades: (e.signed.record.manifest as { upgrades?: string }).upgrades,
      rules: this.rules(e),
      paused: this.c.paused(app, e.id),
      held: this.c.controls.isHeld(e.id)
    }))
    const { candidate, passed } = chooseCandidate(releases, state.current?.version ?? null, r => this.context((r as typeof releases[number]).entry))
    this.chosen = candidate?.id
    return { entry: entries.find(e => e.id === candidate?.id), passed }
  }

  /** The next release to switch to: the newest staged one whose `upgrades` range holds the running version, and not paused, held or halted. */
  candidate (): ReleaseEntry | undefined {
    return this.choose().entry
  }

  private async setWaiting (entry: ReleaseEntry, waiting: Waiting, state: 'waiting' | 'staged' = 'waiting'): Promise<void> {
    const before = this.waiting.get(entry.id)
    this.waiting.set(entry.id, waiting)
    if (before?.rule !== waiting.rule) {
      const { app, version } = entry.signed.record
      this.c.events.info('waiting', `${app}@${version} ${state === 'waiting' ? 'waits' : 'is passed over'}: ${waiting.rule}${waiting.reason == null ? '' : ` (${waiting.reason})`}`, { id: entry.id, rule: waiting.rule, reason: waiting.reason, state })
    }
    if (entry.state !== state) await this.c.book.setState(entry.id, state)
    else if (before?.rule !== waiting.rule || before?.reason !== waiting.reason) this.c.changes.changed()
  }

  /** Run `fn` alone: ticks, rollbacks and first installs never overlap, and a backup holds it while it copies. */
  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn)
    this.lock = run.catch(() => {})
    return await run
  }

  /** One decision round. */
  async tick (): Promise<void> {
    if (this.ticking || this.stopped || this.c.engine.inProgress != null || this.installing != null) return
    this.ticking = true
    try {
      await this.exclusive(async () => { await this.decideNext() })
    } finally {
      this.ticking = false
    }
  }

  private async decideNext (): Promise<void> {
    let marked: string | undefined
    try {
      if (this.stopped) return
      // a revoked release must not keep running where a previous version is kept
      const running = this.c.nodeState.state.current
      if (running != null && this.c.book.isRevoked(running.id) && this.c.nodeState.state.previous != null) {
        await this.rollbackNow('revoked').then(() => this.c.book.setState(running.id, 'revoked'), err => {
          this.c.events.warn('revocation-rollback', `the running release is revoked but could not be rolled back yet: ${(err as Error).message}`)
        })
        return
      }
      const { entry, passed } = this.choose()
      for (const [id, why] of passed) {
        const other = this.c.book.get(id)
        if (other != null) await this.setWaiting(other, { rule: why.rule, reason: why.reason }, why.state)
      }
      if (entry == null) return
      if (!this.stagedAt.has(entry.id)) this.stagedAt.set(entry.id, this.c.clock.now())
      const state = this.c.nodeState.state
      if (state.current == null) {
        // a peer joining with --app installs the newest release: one still being fetched
        // is waited for a while, rather than installing an older one and upgrading at once
        const newer = this.c.book.list().find(e => e.signed.record.app === state.app && e.state === 'fetching' && semver.gt(e.signed.record.version, entry.signed.record.version))
        if (newer != null && this.c.clock.now() - (this.stagedAt.get(entry.id) ?? 0) < FIRST_INSTALL_WAIT_MS) return
        const join = this.c.joinWait?.()
        if (join != null) return await this.setWaiting(entry, { rule: 'join', reason: join })
        await this.firstInstall(entry)
        return
      }
      const to = await this.c.releases.installed(entry.id)
      const from = await this.c.releases.installed(state.current.id)
      if (to == null || from == null) return
      const rules = this.rules(entry)
      const runModule = moduleRunner(to.packageDir, m => { this.c.events.warn('schedule-module', m) })
      const decision = await decide(rules, this.context(entry), runModule)
      if (!decision.start) {
        await this.setWaiting(entry, { rule: decision.waitingOn ?? 'schedule', reason: decision.reason })
        return
      }
      // the claim step, where a rule limits how many switch at once: announce, let the
      // view settle, then only the lowest ranks go
      if (rules.some(r => slotLimit(r, this.context(entry)) != null)) {
        this.claim = entry.id
        this.emit('announce')
        await new Promise(resolve => setTimeout(resolve, this.init.settleMs))
        const settled = claimWins(rules, this.context(entry))
        if (!settled.start) {
          this.claim = null
          await this.setWaiting(entry, { rule: settled.waitingOn ?? 'rolling', reason: settled.reason })
          return
        }
      }
      // a hold, a pause, a revocation or a stop may have come in meanwhile, or the running version changed
      const now = this.c.book.get(entry.id)
      if (this.stopped || now == null || (now.state !== 'staged' && now.state !== 'waiting') || this.c.controls.isHeld(entry.id) ||
        this.c.paused(entry.signed.record.app, entry.id) != null ||
        this.c.book.isRevoked(entry.id) || this.c.nodeState.state.current?.id !== from.id) return
      this.waiting.delete(entry.id)
      marked = entry.id
      await this.c.book.setState(entry.id, 'upgrading')
      this.claim = null
      await this.c.engine.switch(from, to, 'upgrade')
    } catch (err) {
      this.c.events.warn('rollout', `deciding the next upgrade failed: ${(err as Error).message}`)
      // marked upgrading, but the switch never began (the mark's write failed: a full disk, which the book's
      // memory does not see): staged again and decided on a later tick, not wedged until a restart
      if (marked != null && this.c.book.get(marked)?.state === 'upgrading' && this.c.engine.inProgress == null && this.c.nodeState.state.current?.id !== marked) await this.c.book.setState(marked, 'staged').catch(() => {})
    } finally {
      this.claim = null
    }
  }

  /** Joining with no code: run the newest release found, with a fresh state directory. */
  private async firstInstall (entry: ReleaseEntry): Promise<void> {
    const release = await this.c.releases.installed(entry.id)
    if (release == null) return
    this.installing = entry.id
    try {
      await this.c.book.setState(entry.id, 'upgrading')
      const proc = this.c.host.launch(await this.c.engine.spec(release))
      await proc.waitReady(parseDuration(release.manifest.health.readyWithin))
      await proc.stayHealthy(parseDuration(release.manifest.health.stableFor))
      if (this.c.book.isRevoked(release.id)) throw new RolloutRefusedError(`${release.app}@${release.version} was revoked while it was being installed`)
      this.c.host.supervise()
      await this.c.nodeState.set({ ...this.c.nodeState.state, app: release.app, current: { id: release.id, version: release.version }, previous: null, since: this.c.clock.now() })
      await this.c.book.setState(entry.id, 'active')
      this.c.events.info('installed', `installed ${release.app}@${release.version} (${release.id}) from the network`, { id: release.id })
    } catch (err) {
      await this.c.host.stopCurrent()
      await fs.rm(this.c.engine.stateDir(release.id), { recursive: true, force: true })
      await this.c.book.setState(entry.id, 'failed', (err as Error).message)
      this.c.events.error('install-failed', `installing ${release.app}@${release.version} failed: ${(err as Error).message}`, { id: release.id })
    } finally {
      this.installing = undefined
    }
  }

  /** The switch committed: the new version is current (durably); older states and packages go. */
  async onCommit (to: ReleaseRef, from: ReleaseRef, kind: 'upgrade' | 'downgrade'): Promise<void> {
    const state = this.c.nodeState.state
    await this.c.nodeState.set({ ...state, current: { id: to.id, version: to.version }, previous: kind === 'upgrade' ? { id: from.id, version: from.version } : null, since: this.c.clock.now() })
    await this.c.book.setState(to.id, 'active')
    if (!this.c.book.isRevoked(from.id)) await this.c.book.setState(from.id, kind === 'upgrade' ? 'superseded' : 'rolled-back')
    // the version gone back from was started with its SOs, before it was rolled-back: its
    // future SO now serves the peers that still run it
    if (kind === 'downgrade' && !this.c.book.isRevoked(from.id)) {
      await this.loadSimulations(to.id).catch((err: Error) => { this.c.events.warn('simulations', `could not load simulation objects after going back to ${to.version}: ${err.message}`) })
    }
  }

  /** The switch failed and the old version runs again. */
  async onFailed (to: ReleaseRef, from: ReleaseRef, reason: string, kind: 'upgrade' | 'downgrade'): Promise<void> {
    if (kind === 'upgrade' && !this.c.book.isRevoked(to.id)) await this.c.book.setState(to.id, 'failed', reason)
    this.c.events.error('upgrade-rolled-back', `${to.version} ${kind === 'upgrade' ? 'failed' : 'could not be restored'} (${reason}); ${from.version} runs`, { to: to.id, from: from.id })
    this.emit('announce')
  }

  /** `upgossip rollback` (or a revocation, or an unhealthy version): go back to the previous version on this peer. */
  async rollback (reason = 'operator rollback'): Promise<{ from: string, to: string }> {
    return await this.exclusive(async () => await this.rollbackNow(reason))
  }

  private async rollbackNow (reason: string): Promise<{ from: string, to: string }> {
    const state = this.c.nodeState.state
    if (this.c.engine.inProgress != null || this.installing != null) throw new RolloutRefusedError('a switch is running; try again when it is done')
    if (state.current == null || state.previous == null) throw new RolloutRefusedError('there is no previous version kept on this peer to go back to')
    const from = await this.c.releases.installed(state.current.id)
    const to = await this.c.releases.installed(state.previous.id)
    if (from == null || to == null) throw new RolloutRefusedError('the previous version\'s package is no longer kept on this peer')
    if (this.c.book.isRevoked(to.id)) throw new RolloutRefusedError(`the previous version ${to.version} has been revoked; it will not run again`)
    const outcome = await this.c.engine.switch(from, to, 'downgrade', reason)
    if (!outcome.ok) throw new RolloutRefusedError(`rollback failed (${outcome.reason}); ${from.version} still runs`)
    return { from: from.version, to: to.version }
  }
}
