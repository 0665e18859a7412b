/**
 * A local network of real daemons running a demo app (kv, or pykv, or the two classes
 * store and client), driven through a scenario under client load, ending in a report of
 * checks.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { byRank } from '../schedule/index.js'
import { KV_APP } from './apps.js'
import type { TestnetApp } from './apps.js'
import { DaemonProcess, pollUntil } from './daemon-process.js'
import { LoadGenerator } from './load.js'
import type { KvClientCodec, LoadSummary } from './load.js'
import type { MemoryReport } from './memory.js'
import { Monitor } from './monitor.js'
import type { TimelineEntry, ViewSink } from './monitor.js'
import { Workspace } from './workspace.js'
import type { ManifestOverride, TestnetRelease } from './workspace.js'

/** One check of the report. */
export interface TestnetCheck {
  name: string
  ok: boolean
  detail: string
}

/** What `upgossip testnet --json` prints. */
export interface TestnetReport {
  scenario: string
  peers: number
  durationMs: number
  requests: { sent: number, failed: number, p50Ms: number, p99Ms: number }
  checks: TestnetCheck[]
  timeline: TimelineEntry[]
  failures: LoadSummary['failures']
  dir: string
  kept: boolean
  dashboard?: string
  /** Daemon memory over time (the soak scenario). */
  memory?: MemoryReport
}

/** How a testnet runs. */
export interface TestnetOptions {
  peers: number
  keep: boolean
  /** Where the throwaway directory goes (default: a new one under the system temp dir). */
  dir?: string
  /** The longest any one wait may take. */
  stepTimeoutMs: number
  /** How long the soak scenario keeps cycling. */
  soakMinutes?: number
  /** Live view and progress. */
  sink: ViewSink
}

/** A history event of a daemon (`GET /history`). */
export interface HistoryEvent {
  time: string
  type: string
  to?: string
  from?: string
  kind?: string
}

/** How {@link Testnet.startNetwork} starts the network beyond its first release. */
export interface NetworkStart {
  /** Extra `daemon` arguments of peer `i` (0-based). */
  argsOf?: (i: number) => string[]
  /** The release peer `i` installs (default: the one given): peers of several classes. */
  releaseOf?: (i: number) => TestnetRelease
  /** Whether the load's clients call peer `i` (default: every peer). */
  loaded?: (i: number) => boolean
}

/** A wait that ran out of time. */
export class StepTimeoutError extends Error {
  static override name = 'StepTimeoutError'
}

/** The running testnet, as scenarios see it. */
export class Testnet {
  readonly peers: DaemonProcess[] = []
  readonly checks: TestnetCheck[] = []
  readonly monitor: Monitor
  /** Set by a scenario that samples memory. */
  memory?: MemoryReport
  load!: LoadGenerator
  codec!: KvClientCodec
  ws!: Workspace
  /** The app the network runs (set by {@link prepare}); with several classes, the first. */
  app: TestnetApp = KV_APP
  /** The other classes of node the network carries (trusted too). */
  otherApps: TestnetApp[] = []
  private readonly began = Date.now()
  private trustFile = ''
  private configFile = ''
  /** Seed values by peer name (a restarted peer keeps its name). */
  private readonly seeds = new Map<string, string>()

  constructor (readonly options: TestnetOptions) {
    this.monitor = new Monitor(options.sink, () => this.elapsed(), () => {
      if (this.load == null) return 'no load yet'
      const s = this.load.summary()
      return `requests ${s.sent} sent, ${s.failed} failed`
    })
  }

  /** Milliseconds since the run began. */
  elapsed (): number {
    return Date.now() - this.began
  }

  /** Make the workspace for `app` (and `otherApps`): keys, a trust file of `publishers` keys needing `threshold` for each, the daemon config. */
  async prepare (publishers = 1, threshold = 1, app: TestnetApp = KV_APP, otherApps: TestnetApp[] = []): Promise<void> {
    this.app = app
    this.otherApps = otherApps
    this.monitor.showApps = otherApps.length > 0
    this.ws = await Workspace.create(this.options.dir, app, otherApps)
    this.trustFile = await this.ws.writeTrust(publishers, threshold)
    this.configFile = await this.ws.writeConfig({ beatInterval: '1s', peerTimeout: '8s', minConnections: 3 })
  }

  /** Start daemon `name` (a new one, or again on its data dir) and watch it. */
  async startPeer (name: string, args: string[]): Promise<DaemonProcess> {
    const bootstrap = this.peers.find(p => !p.exited && p.name !== name)
    const daemon = await DaemonProcess.start({
      name,
      dataDir: this.ws.file(name),
      logFile: this.ws.file('logs', `${name}.log`),
      detached: this.options.keep,
      startTimeoutMs: this.options.stepTimeoutMs,
      args: ['--trust', this.trustFile, '--config', this.configFile, '--listen', '/ip4/127.0.0.1/tcp/0',
        ...(bootstrap == null ? [] : ['--bootstrap', bootstrap.addr]), ...args]
    })
    const at = this.peers.findIndex(p => p.name === name)
    if (at >= 0) this.peers[at] = daemon
    else this.peers.push(daemon)
    this.monitor.watch(this.peers)
    return daemon
  }

  /**
   * Start `count` peers on `release` (or each on its `releaseOf`), wait until every one
   * runs it and sees the others, seed their state, start the load (on the `loaded` ones).
   * The seeds and the load speak `release`'s protocol to every peer.
   */
  async startNetwork (count: number, release: TestnetRelease, argsOrStart: ((i: number) => string[]) | NetworkStart = {}): Promise<void> {
    const start = typeof argsOrStart === 'function' ? { argsOf: argsOrStart } : argsOrStart
    const argsOf = start.argsOf ?? (() => [])
    const releaseOf = start.releaseOf ?? (() => release)
    const installs = Array.from({ length: count }, (_, i) => releaseOf(i))
    const what = [...new Set(installs.map(r => `${r.app} ${r.version}`))].join(' and ')
    this.monitor.note('start', `starting ${count} daemons on ${this.otherApps.length > 0 ? what : release.version}`)
    this.monitor.start()
    await this.startPeer('peer-1', ['--install', releaseOf(0).file, ...argsOf(0)])
    // settle every start before going on, so a failed one leaves no daemon unaccounted for
    const started = await Promise.allSettled(Array.from({ length: count - 1 }, async (_, i) => await this.startPeer(`peer-${i + 2}`, ['--install', releaseOf(i + 1).file, ...argsOf(i + 1)])))
    for (const s of started) if (s.status === 'rejected') throw s.reason
    // keep the order peer-1, peer-2, … whatever order they started in
    this.peers.sort((a, b) => Number(a.name.slice(5)) - Number(b.name.slice(5)))
    await this.waitUntil(`every peer to run ${what} and see the others`, async () => {
      const all = await Promise.all(this.peers.map(async p => await p.status()))
      return all.every((s, i) => s.version === installs[i]?.version && s.state === 'running' && s.network.length >= count - 1)
    })
    this.monitor.note('ready', `${count} peers run ${this.otherApps.length > 0 ? what : release.version}; dashboard: ${this.peers[0]?.dashboardUrl ?? ''}`)
    this.codec = this.app.codec(release.protocol)
    for (const peer of this.peers) await this.seed(peer)
    this.load = new LoadGenerator({ codec: this.codec, elapsed: () => this.elapsed() })
    this.peers.forEach((peer, i) => { if (start.loaded?.(i) ?? true) this.load.add(peer) })
  }

  /** Write a seed key on `peer` (read back at the end). */
  async seed (peer: DaemonProcess): Promise<void> {
    const value = `seed of ${peer.name} at ${this.elapsed()} ms`
    const answer = this.codec.value(await peer.call(this.codec.put(`seed-${peer.name}`, value), { protocol: this.codec.protocol }))
    if (answer !== value) throw new Error(`seeding ${peer.name}: expected ${value}, got ${JSON.stringify(answer)}`)
    this.seeds.set(peer.name, value)
  }

  /** The seed value written on the peer called `name`. */
  seedOf (name: string): string {
    const value = this.seeds.get(name)
    if (value == null) throw new Error(`${name} has no seed`)
    return value
  }

  /** `from` (speaking `protocol`, its own) reads `to`'s seed through the shim; throws unless it reads right. */
  async readAcross (from: DaemonProcess, protocol: number, to: DaemonProcess): Promise<string> {
    const codec = this.app.codec(protocol)
    const got = codec.value(await from.call(codec.get(`seed-${to.name}`), { peer: to.peerId }))
    if (got !== this.seedOf(to.name)) throw new Error(`${from.name} reading ${to.name}'s seed got ${JSON.stringify(got)}`)
    return `${from.name} (protocol ${protocol}) read ${to.name}'s seed`
  }

  /** Poll until `check` holds; throws {@link StepTimeoutError} after the step timeout. */
  async waitUntil (what: string, check: () => Promise<boolean> | boolean, timeoutMs = this.options.stepTimeoutMs): Promise<void> {
    const failure = await pollUntil(what, check, timeoutMs)
    if (failure != null) throw new StepTimeoutError(failure)
  }

  /** Wait until every running peer (or `peers`) runs `version`. */
  async waitVersion (version: string, peers: DaemonProcess[] = this.peers.filter(p => !p.exited)): Promise<void> {
    await this.waitUntil(`${peers.map(p => p.name).join(', ')} to run ${version}`, async () => {
      const all = await Promise.all(peers.map(async p => await p.status()))
      return all.every(s => s.version === version && s.state === 'running')
    })
  }

  /** Build a release of the app's version `major` (or `app`'s, another class). */
  async release (major: number, override: ManifestOverride = {}, signers: number[] = [0], app: TestnetApp = this.app): Promise<TestnetRelease> {
    return await this.ws.release(major, override, signers, app)
  }

  /** Publish a bundle through `via` (default peer-1). */
  async publish (release: TestnetRelease, via: DaemonProcess = this.peers[0] as DaemonProcess): Promise<void> {
    this.monitor.note('publish', `publish ${release.app} ${release.version} (${release.signed.signatures.length} signature${release.signed.signatures.length === 1 ? '' : 's'}) through ${via.name}`)
    await via.api('POST', '/publish', release.bytes)
  }

  /** Record a check. */
  check (name: string, ok: boolean, detail: string): void {
    this.checks.push({ name, ok, detail })
    this.monitor.note('check', `${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`)
  }

  /** Run `fn` as a check: it passes when `fn` returns its detail, fails with the error's message. */
  async checkThat (name: string, fn: () => Promise<string>): Promise<void> {
    try {
      this.check(name, true, await fn())
    } catch (err) {
      this.check(name, false, (err as Error).message)
    }
  }

  /** A peer by name. */
  peer (name: string): DaemonProcess {
    const p = this.peers.find(x => x.name === name)
    if (p == null) throw new Error(`no peer ${name}`)
    return p
  }

  /** Every peer's history of upgrades (by peer). */
  async histories (): Promise<Map<DaemonProcess, HistoryEvent[]>> {
    const out = new Map<DaemonProcess, HistoryEvent[]>()
    for (const p of this.peers.filter(x => !x.exited)) out.set(p, await p.history() as unknown as HistoryEvent[])
    return out
  }

  /** The peers a canary rule of `fraction` picks for `release` among the running peers. */
  canaries (release: TestnetRelease, fraction: number, among: DaemonProcess[] = this.peers.filter(p => !p.exited)): DaemonProcess[] {
    const count = Math.max(1, Math.floor(fraction * among.length))
    const ids = byRank(among.map(p => p.peerId), release.id).slice(0, count)
    return among.filter(p => ids.includes(p.peerId))
  }

  /** The checks every scenario ends with: versions, failed requests, seeds, peers reading each other. */
  async finalChecks (version: string, load: LoadSummary): Promise<void> {
    const running = this.peers.filter(p => !p.exited)
    await this.checkThat(`every peer runs ${version}`, async () => {
      const wrong = []
      for (const p of running) {
        const s = await p.status()
        if (s.version !== version || s.state !== 'running') wrong.push(`${p.name} ${s.version ?? 'none'} ${s.state}`)
      }
      if (wrong.length > 0) throw new Error(`not on ${version}: ${wrong.join(', ')}`)
      return `${running.length} of ${running.length} peers`
    })
    this.check('no client request failed', load.failed === 0 && load.sent > 0,
      load.failed === 0 ? `${load.sent} requests, p50 ${load.p50Ms} ms, p99 ${load.p99Ms} ms` : `${load.failed} of ${load.sent} failed; first: ${load.failures.map(f => `${f.peer} ${f.op} at ${(f.atMs / 1000).toFixed(1)} s: ${f.error}`).slice(0, 3).join('; ')}`)
    // callers see delay, not errors: the clients kept being answered while the peers switched
    const rollout = this.monitor.rolloutWindow()
    if (rollout != null) {
      const during = this.load.summary(rollout)
      const answered = during.sent - during.failed
      this.check('clients were answered during the rollout', answered > 0 && during.failed === 0,
        `${answered} requests answered and ${during.failed} failed between the first publish (${(rollout.fromMs / 1000).toFixed(1)} s) and the last change seen on a peer (${(rollout.toMs / 1000).toFixed(1)} s)`)
    }
    await this.checkThat('state written before the upgrades reads back', async () => {
      for (const [name, value] of this.seeds) {
        const peer = this.peer(name)
        const got = this.codec.value(await peer.call(this.codec.get(`seed-${peer.name}`), { protocol: this.codec.protocol }))
        if (got !== value) throw new Error(`${peer.name}: seed reads ${JSON.stringify(got)}, expected ${JSON.stringify(value)}`)
      }
      return `${this.seeds.size} seed keys read back in protocol ${this.codec.protocol}`
    })
    await this.checkThat('peers read each other through the shim', async () => {
      const statuses = await Promise.all(running.map(async p => await p.status()))
      // neighbours within a class: a peer's own protocol is its app's
      const apps = [this.app, ...this.otherApps]
      let calls = 0
      for (const app of apps) {
        const ring = running.filter((_, i) => apps.length === 1 || statuses[i]?.app === app.name)
        for (let i = 0; i < ring.length; i++) {
          const from = ring[i] as DaemonProcess
          const to = ring[(i + 1) % ring.length] as DaemonProcess
          const value = this.seeds.get(to.name)
          if (value == null || from === to) continue
          const codec = app.codec(app.native(statuses[running.indexOf(from)]?.version ?? ''))
          const got = codec.value(await from.call(codec.get(`seed-${to.name}`), { peer: to.peerId }))
          if (got !== value) throw new Error(`${from.name} reading ${to.name}: got ${JSON.stringify(got)}`)
          calls++
        }
      }
      return `${calls} calls between neighbours${apps.length > 1 ? ' of the same class' : ''}, each in the caller's own protocol`
    })
  }

  /** Stop every daemon (unless kept) and remove the directory (unless kept). */
  async close (): Promise<void> {
    if (this.options.keep) {
      await fs.writeFile(this.ws.file('pids'), this.peers.filter(p => !p.exited).map(p => String(p.pid)).join('\n') + '\n').catch(() => {})
      return
    }
    await Promise.all(this.peers.map(async p => { await p.stop() }))
    if (this.ws != null && this.options.dir == null) await this.ws.remove()
  }

  /** Where the daemons' logs are. */
  get logDir (): string {
    return path.join(this.ws.root, 'logs')
  }
}

/** The demo app's protocol for a version (`2.0.0` → 2; v4 keeps v3's protocol). */
export function kvNative (version: string): number {
  return KV_APP.native(version)
}

/** When a history's events happened, by type, for upgrades to `releaseId`. */
export function upgradeTimes (events: HistoryEvent[], releaseId: string): { started?: number, committed?: number, failed?: number } {
  const at = (type: string): number | undefined => {
    const e = events.find(x => x.type === type && x.to === releaseId)
    return e == null ? undefined : Date.parse(e.time)
  }
  return { started: at('upgrade-started'), committed: at('upgrade-committed'), failed: at('upgrade-failed') ?? at('upgrade-rolled-back') }
}
