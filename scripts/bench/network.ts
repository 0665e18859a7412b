/**
 * A benchmark's network: real `upgossip daemon` processes on loopback (the testnet's
 * {@link DaemonProcess} and {@link Workspace}), releases built from files at run time,
 * and what the daemons record — their event logs and metrics — read back precisely.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { MemoryBlockStore } from '#src/store/index.js'
import { createRelease, writeBundle } from '#src/release/index.js'
import { DaemonProcess, DEMO_APP_DIR, Workspace, pollUntil, sleep } from '#src/testnet/index.js'
import type { PublisherKey } from '#src/release/index.js'
import { parseMetrics } from './prometheus.ts'
import type { MetricSample } from './prometheus.ts'

/** Progress for people, on stderr. */
export type Progress = (line: string) => void

/** A release built for a benchmark. */
export interface BenchRelease {
  app: string
  version: string
  id: string
  file: string
  bytes: Uint8Array
  /** The record's `size`: every block of the package. */
  size: number
}

/** One line of a daemon's `events.jsonl`. */
export interface DaemonEvent {
  time: string
  type: string
  id?: string
  [key: string]: unknown
}

/** What a release is made of: a base directory's files, replaced or added files, manifest changes. */
export interface ReleaseSpec {
  /** Copy this directory first (default: the demo app's v1; null: start empty). */
  base?: string | null
  /** Files written over the base (path → content). */
  files?: Record<string, string | Uint8Array>
  /** Keys merged into `upgossip.json` (`app`, `version`, `schedule`, …). */
  manifest: Record<string, unknown>
}

/** Sleep (the testnet's). */
export { sleep }

/** A set of daemons in one throwaway directory. */
export class BenchNetwork {
  readonly peers: DaemonProcess[] = []
  readonly ws: Workspace
  readonly trustFile: string
  readonly configFile: string
  /** Daemon i's own address, to listen and dial from (shaped uplinks); all on 127.0.0.1 when absent. */
  readonly addressOf?: (i: number) => string
  private readonly progress: Progress
  private built = 0
  /** Daemons starting, and every daemon started: {@link close} stops those not in `peers` yet too (Ctrl-C while starting). */
  private readonly starting = new Set<Promise<DaemonProcess>>()
  private readonly started = new Set<DaemonProcess>()
  private closed = false

  /** Networks not closed yet, for {@link BenchNetwork.closeAll}. */
  private static readonly open = new Set<BenchNetwork>()

  private constructor (ws: Workspace, trustFile: string, configFile: string, progress: Progress, addressOf?: (i: number) => string) {
    this.ws = ws
    this.trustFile = trustFile
    this.configFile = configFile
    this.progress = progress
    this.addressOf = addressOf
    BenchNetwork.open.add(this)
  }

  /** Stop every network still open and remove their directories (on Ctrl-C). */
  static async closeAll (): Promise<void> {
    await Promise.all([...BenchNetwork.open].map(async net => { await net.close() }))
  }

  /**
   * A workspace with publisher keys, a trust file for `apps` (alice signs), and the
   * daemons' config: the daemon's defaults (a beat every 5 s) unless `config` says
   * otherwise — the testnet beats every second, which a network of 50 daemons on two
   * CPUs cannot afford (docs/benchmarks.md, idle CPU). With `addressOf`, daemon i listens
   * on and dials from its own address (`--dial-from`), so its egress can be shaped.
   */
  static async create (progress: Progress, apps: string[] = ['kv', 'bench'], config: Record<string, unknown> = {}, opts: { addressOf?: (i: number) => string } = {}): Promise<BenchNetwork> {
    const ws = await Workspace.create()
    const key = ws.keys[0] as PublisherKey
    const trustFile = ws.file('trust.json')
    await fs.writeFile(trustFile, JSON.stringify({ apps: Object.fromEntries(apps.map(a => [a, { publishers: [key.id], threshold: 1 }])) }, null, 2))
    const configFile = await ws.writeConfig({ minConnections: 3, ...config })
    return new BenchNetwork(ws, trustFile, configFile, progress, opts.addressOf)
  }

  /** Build and sign a release; the bundle is written to the workspace. */
  async release (spec: ReleaseSpec): Promise<BenchRelease> {
    const dir = this.ws.file('packages', `r${++this.built}`)
    await fs.rm(dir, { recursive: true, force: true })
    if (spec.base === null) await fs.mkdir(dir, { recursive: true })
    else await fs.cp(spec.base ?? path.join(DEMO_APP_DIR, 'v1'), dir, { recursive: true })
    for (const [rel, content] of Object.entries(spec.files ?? {})) {
      const file = path.join(dir, ...rel.split('/'))
      await fs.mkdir(path.dirname(file), { recursive: true })
      await fs.writeFile(file, content)
    }
    const manifestFile = path.join(dir, 'upgossip.json')
    const baseManifest = spec.base === null ? {} : JSON.parse(await fs.readFile(manifestFile, 'utf8')) as Record<string, unknown>
    const manifest = { ...baseManifest, ...spec.manifest }
    await fs.writeFile(manifestFile, JSON.stringify(manifest, null, 2) + '\n')
    const store = new MemoryBlockStore()
    const { signed, id, blocks } = await createRelease({ dir, store, keys: [this.ws.keys[0] as PublisherKey] })
    const bytes = await writeBundle(signed, store, blocks)
    const file = this.ws.file(`${signed.record.app}-${signed.record.version}.car`)
    await fs.writeFile(file, bytes)
    // the package directory is only needed to build the bundle; big blobs should not stay twice on disk
    await fs.rm(dir, { recursive: true, force: true })
    return { app: signed.record.app, version: signed.record.version, id: id.toString(), file, bytes, size: signed.record.size }
  }

  /**
   * Start `count` daemons installed from `install`. The first starts alone; the others
   * start a few at a time, each bootstrapping from a random daemon already up, so the
   * mesh is not a star around the first (the publisher).
   */
  async start (count: number, install: BenchRelease, argsOf: (i: number) => string[] = () => [], env: Record<string, string> | ((i: number) => Record<string, string>) = {}): Promise<void> {
    const startOne = async (i: number): Promise<DaemonProcess> => {
      const name = `peer-${i + 1}`
      const up = this.peers.filter(p => !p.exited)
      const bootstrap = up.length === 0 ? [] : ['--bootstrap', (up[Math.floor(Math.random() * up.length)] as DaemonProcess).addr]
      const address = this.addressOf?.(i)
      const host = address == null ? ['--listen', '/ip4/127.0.0.1/tcp/0'] : ['--listen', `/ip4/${address}/tcp/0`, '--dial-from', address]
      if (this.closed) throw new Error('the network was closed while its daemons started')
      const started = DaemonProcess.start({
        name,
        dataDir: this.ws.file(name),
        logFile: this.ws.file('logs', `${name}.log`),
        startTimeoutMs: 120_000,
        env: typeof env === 'function' ? env(i) : env,
        args: ['--trust', this.trustFile, '--config', this.configFile, ...host, '--install', install.file, ...bootstrap, ...argsOf(i)]
      })
      this.starting.add(started)
      try {
        const daemon = await started
        this.started.add(daemon)
        return daemon
      } finally {
        this.starting.delete(started)
      }
    }
    const first = this.peers.length
    this.peers.push(await startOne(first))
    for (let i = first + 1; i < first + count; i += 4) {
      const batch = Array.from({ length: Math.min(4, first + count - i) }, (_, k) => i + k)
      const started = await Promise.allSettled(batch.map(startOne))
      for (const s of started) if (s.status === 'fulfilled') this.peers.push(s.value)
      for (const s of started) if (s.status === 'rejected') throw s.reason
      this.progress(`  ${this.peers.length}/${first + count} daemons up`)
    }
    await this.waitUntil(`${this.peers.length} daemons to run ${install.app}@${install.version} and see each other`, async () => {
      const all = await Promise.all(this.peers.map(async p => await p.status()))
      return all.every(s => s.version === install.version && s.state === 'running' && s.network.length >= this.peers.length - 1)
    }, 120_000 + 4000 * this.peers.length, 1000)
  }

  /** Poll until `check` holds. */
  async waitUntil (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 120_000, intervalMs = 250): Promise<void> {
    const failure = await pollUntil(what, check, timeoutMs, intervalMs)
    if (failure != null) throw new Error(failure)
  }

  /** Wait until every peer (or `peers`) holds `release` in one of `states`. */
  async waitRelease (release: BenchRelease, states: string[], peers = this.peers, timeoutMs = 300_000): Promise<void> {
    await this.waitUntil(`${peers.length} peers to hold ${release.app}@${release.version} (${states.join('/')})`, async () => {
      const all = await Promise.all(peers.map(async p => await p.status()))
      return all.every(s => states.includes(s.releases.find(r => r.id === release.id)?.state ?? ''))
    }, timeoutMs, 1000)
  }

  /** A daemon's event log (every line, oldest first). */
  async events (peer: DaemonProcess): Promise<DaemonEvent[]> {
    const text = await fs.readFile(path.join(peer.init.dataDir, 'events.jsonl'), 'utf8').catch(() => '')
    const out: DaemonEvent[] = []
    for (const line of text.split('\n')) {
      if (line === '') continue
      try {
        out.push(JSON.parse(line) as DaemonEvent)
      } catch {}
    }
    return out
  }

  /**
   * When `peer` first logged `type` for release `id` (ms since the epoch). The log is
   * written just after the state that `GET /status` shows, so it is read again for a
   * while before giving up.
   */
  async eventTime (peer: DaemonProcess, type: string, id: string, waitMs = 10_000): Promise<number | undefined> {
    const deadline = Date.now() + waitMs
    while (true) {
      const e = (await this.events(peer)).find(x => x.type === type && x.id === id)
      if (e != null) return Date.parse(e.time)
      if (Date.now() > deadline) return undefined
      await sleep(200)
    }
  }

  /** A daemon's metrics now. */
  async metrics (peer: DaemonProcess): Promise<MetricSample[]> {
    const res = await fetch(`${peer.control.url}/metrics`, { headers: { authorization: `Bearer ${peer.control.token}` }, signal: AbortSignal.timeout(10_000) })
    return parseMetrics(await res.text())
  }

  /** Stop every daemon and remove the directory (unless `keep`). */
  async close (keep = false): Promise<void> {
    BenchNetwork.open.delete(this)
    this.closed = true
    await Promise.allSettled([...this.starting])
    await Promise.all([...new Set([...this.peers, ...this.started])].map(async p => { await p.stop() }))
    if (!keep) await this.ws.remove()
    else this.progress(`  kept ${this.ws.root}`)
  }
}
