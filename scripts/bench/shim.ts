/**
 * Shim overhead: four daemons run the `bench` app. A and D stay on protocol 1 (a local
 * policy waits for an approval that never comes), B moves to 2, C (labelled `hop=two`)
 * to 3. A's app then calls D (same version, no simulation object), B (one hop: A's
 * future SO for 2) and C (two hops: A's future SOs for 2 and 3) — the version choice
 * takes the fewest hops, the newer on a tie. The calls are made by a loop inside A's
 * app (its own `node.call`), started by one control API request, so the HTTP control
 * API is not part of what is measured; a separate row shows what it adds.
 *
 * Two rows without upgossip's logic, measured in the same rounds: the baseline, the same
 * null request over a plain TCP connection between the apps of A and D; and the floor, the
 * same echo through the bare parts (IPC on both sides and one libp2p stream between two
 * nodes made by src/net, `shim-floor-process.ts`).
 */
import { spawn } from 'node:child_process'
import type { ChildProcessByStdio } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'
import fs from 'node:fs/promises'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { DaemonProcess } from '#src/testnet/index.js'
import { benchAppVersion } from './bench-app.ts'
import { BenchNetwork, sleep } from './network.ts'
import type { Progress } from './network.ts'
import { ratio, round, summarize } from './stats.ts'
import type { LatencySummary } from './stats.ts'

/** One measured configuration. */
export interface ShimRow {
  hops: 0 | 1 | 2
  /** `null` requests or bulk uploads of `bytes`. */
  kind: 'null' | 'bulk'
  bytes: number
  inflight: number
  latency: LatencySummary
  requestsPerSecond: number
  /** For bulk: payload MiB/s. */
  mibPerSecond?: number
}

/** A path without upgossip's logic (the baseline or the floor), null requests. */
export interface PlainRow {
  inflight: number
  latency: LatencySummary
  requestsPerSecond: number
}

/** The shim figures. */
export interface ShimResult {
  /** Same-version p50 ÷ the baseline's p50 (null requests, one in flight); absent in runs made before it existed. */
  baselineRatio?: number | null
  /** Same-version p50 ÷ the baseline's p50, null requests, at the highest concurrency. */
  baselineRatioLoaded?: number | null
  /** Same-version req/s ÷ the baseline's req/s at the highest concurrency. */
  baselineThroughputRatio?: number | null
  /** The same null request over a plain TCP connection between the two app processes. */
  baseline?: { rows: PlainRow[], method: string }
  /** The same echo through the bare parts: IPC on both sides and one libp2p stream, no upgossip logic. */
  floor?: { rows: PlainRow[], method: string, latencyRatio: number | null, throughputRatio: number | null }
  /** One hop p50 ÷ same-version p50 (null requests, one in flight). */
  latencyRatio: number | null
  /** One hop req/s ÷ same-version req/s (null requests, the highest concurrency). */
  throughputRatio: number | null
  /** One hop MiB/s ÷ same-version MiB/s (1 MiB uploads, one in flight). */
  bulkThroughputRatio: number | null
  twoHop: { latencyRatio: number | null, throughputRatio: number | null, bulkThroughputRatio: number | null }
  rows: ShimRow[]
  /** The same null request through `POST /call` (bench → daemon HTTP → app → …), one in flight. */
  controlApi: { hops: 0, latency: LatencySummary }
  method: string
}

const METHOD = 'a loop inside the caller\'s app (node.call), started by one POST /call; latency per call measured in the app; same version = v1→v1, one hop = v1→v2 through the caller\'s future SO, two hops = v1→v3 through two future SOs'

const BASELINE_METHOD = 'a TCP connection from A\'s app to a server in D\'s app on 127.0.0.1 (no upgossip), JSON lines, requests pipelined in order, Nagle off'
const FLOOR_METHOD = 'two processes, each a libp2p node made by src/net (TCP, noise, yamux) that forks an app with IPC (advanced serialization); the caller\'s app sends each request over IPC, its node writes it (dag-cbor, an id in front, length-prefixed) on one long-lived libp2p stream, the other node hands it to its app over IPC, the answer comes back the same way; floor.latencyRatio and floor.throughputRatio are same-version ÷ floor'
const FLOOR = fileURLToPath(new URL('./shim-floor-process.ts', import.meta.url))

interface BenchAnswer { latencies: number[], wallMs: number }

type FloorProcess = ChildProcessByStdio<Writable, Readable, null>

/** The floor's two node processes: the caller's and the callee's. */
class Floor {
  private readonly procs: FloorProcess[]
  private readonly lines: AsyncIterator<string>
  private constructor (procs: FloorProcess[], lines: AsyncIterator<string>) {
    this.procs = procs
    this.lines = lines
  }

  static async start (keyFile: (name: string) => string): Promise<Floor> {
    const procs = ['floor-caller', 'floor-callee'].map(name => spawn(process.execPath, [FLOOR, 'node', keyFile(`${name}.key`)], { stdio: ['pipe', 'pipe', 'inherit'] }))
    const [caller, callee] = procs as [FloorProcess, FloorProcess]
    const calleeLines = readline.createInterface({ input: callee.stdout })[Symbol.asyncIterator]()
    const calleeAddr = (JSON.parse((await calleeLines.next()).value as string) as { addr: string }).addr
    const floor = new Floor(procs, readline.createInterface({ input: caller.stdout })[Symbol.asyncIterator]())
    await floor.next()
    caller.stdin.write(JSON.stringify({ dial: calleeAddr }) + '\n')
    await floor.next()
    return floor
  }

  private async next (): Promise<unknown> {
    const line = await this.lines.next()
    if (line.done === true) throw new Error('the floor\'s caller process ended')
    return JSON.parse(line.value)
  }

  async loop (count: number, inflight: number): Promise<BenchAnswer> {
    (this.procs[0] as FloorProcess).stdin.write(JSON.stringify({ loop: { count, inflight } }) + '\n')
    return await this.next() as BenchAnswer
  }

  close (): void {
    for (const p of this.procs) p.stdin.end()
  }
}

/** Rounds the configurations take turns in. */
const ROUNDS = 6

async function loop (a: DaemonProcess, target: string, count: number, inflight: number, bytes: number): Promise<BenchAnswer> {
  return await a.call({ bench: { target, count, inflight, bytes } }, { timeoutMs: 600_000 }) as BenchAnswer
}

/** Build the four-daemon network, measure, stop it. */
/** `env`: for every daemon (and the apps it forks), `NODE_OPTIONS` with `--cpu-prof` under `--profile`. */
export async function shimOverhead (opts: { nullRequests: number, bulkRequests: number, concurrency: number[], bulkConcurrency: number[], warmup: number }, progress: Progress, keep = false, env: Record<string, string> = {}): Promise<ShimResult> {
  // a loop runs inside one call: let it take longer than the default 30 s
  const net = await BenchNetwork.create(progress, ['kv', 'bench'], { callTimeout: '20m' })
  let floor: Floor | undefined
  try {
    const v1 = benchAppVersion(1)
    const v2 = benchAppVersion(2)
    const v3 = benchAppVersion(3, { schedule: [{ rule: 'labels', match: { hop: 'two' } }] })
    const r1 = await net.release({ base: null, files: v1.files, manifest: v1.manifest })
    const policy = net.ws.file('hold-policy.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'approve' }] }))
    // A, B, C, D
    await net.start(4, r1, i => i === 0 || i === 3 ? ['--policy', policy] : i === 2 ? ['--label', 'hop=two'] : [], env)
    const [a, b, c, d] = net.peers as [DaemonProcess, DaemonProcess, DaemonProcess, DaemonProcess]
    progress('  shim: B and C to protocol 2, then C to 3…')
    const r2 = await net.release({ base: null, files: v2.files, manifest: v2.manifest })
    await a.api('POST', '/publish', r2.bytes)
    await net.waitUntil('B and C to run 2.0.0', async () => (await b.status()).version === '2.0.0' && (await c.status()).version === '2.0.0', 120_000)
    const r3 = await net.release({ base: null, files: v3.files, manifest: v3.manifest })
    await a.api('POST', '/publish', r3.bytes)
    await net.waitUntil('C to run 3.0.0', async () => (await c.status()).version === '3.0.0', 120_000)
    // every peer has seen every release staged (A and D load the future SOs), and identify has told A what each speaks
    await net.waitRelease(r3, ['staged', 'waiting', 'active'], net.peers, 60_000)
    await sleep(2000)

    const targets: Array<[0 | 1 | 2, DaemonProcess]> = [[0, d], [1, b], [2, c]]
    for (const [, target] of targets) await loop(a, target.peerId, opts.warmup, 4, 0)
    const { port } = await d.call({ tcpServe: true }) as { port: number }
    const baseline = async (count: number, inflight: number): Promise<BenchAnswer> => await a.call({ tcpBench: { port, count, inflight } }, { timeoutMs: 600_000 }) as BenchAnswer
    floor = await Floor.start(name => net.ws.file(name))
    const theFloor = floor
    await baseline(opts.warmup, 4)
    await theFloor.loop(opts.warmup, 4)
    // every path of a configuration, in turn: the three hop counts, and for null requests the baseline and the floor
    type PathName = 0 | 1 | 2 | 'baseline' | 'floor'
    const paths = (kind: 'null' | 'bulk', bytes: number): Array<[PathName, (count: number, inflight: number) => Promise<BenchAnswer>]> => [
      ...targets.map(([hops, target]) => [hops, async (count: number, inflight: number) => await loop(a, target.peerId, count, inflight, bytes)] as [PathName, (count: number, inflight: number) => Promise<BenchAnswer>]),
      ...(kind === 'null' ? [['baseline', baseline], ['floor', async (count: number, inflight: number) => await theFloor.loop(count, inflight)]] as Array<[PathName, (count: number, inflight: number) => Promise<BenchAnswer>]> : [])
    ]
    // the configurations take turns, in rounds, so that drift (JIT, other load on the
    // machine) spreads over all of them instead of favouring the ones measured last
    const rows: ShimRow[] = []
    const plain: Record<'baseline' | 'floor', PlainRow[]> = { baseline: [], floor: [] }
    const cases = [
      ...opts.concurrency.map(inflight => ({ kind: 'null' as const, bytes: 0, inflight, count: opts.nullRequests })),
      ...opts.bulkConcurrency.map(inflight => ({ kind: 'bulk' as const, bytes: 1024 * 1024, inflight, count: opts.bulkRequests }))
    ]
    for (const k of cases) {
      const rounds = Math.max(1, Math.min(ROUNDS, Math.floor(k.count / Math.max(k.inflight, 1))))
      const these = paths(k.kind, k.bytes)
      const got = new Map<PathName, BenchAnswer>(these.map(([p]) => [p, { latencies: [], wallMs: 0 }]))
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? these : [...these].reverse()
        for (const [name, run] of order) {
          const answer = await run(Math.ceil(k.count / rounds), k.inflight)
          const acc = got.get(name) as BenchAnswer
          acc.latencies.push(...answer.latencies)
          acc.wallMs += answer.wallMs
        }
      }
      for (const [name] of these) {
        const acc = got.get(name) as BenchAnswer
        const rps = acc.latencies.length / acc.wallMs * 1000
        if (name === 'baseline' || name === 'floor') {
          const row: PlainRow = { inflight: k.inflight, latency: summarize(acc.latencies), requestsPerSecond: round(rps, 1) }
          plain[name].push(row)
          progress(`  shim: ${name}, null, ${k.inflight} in flight: p50 ${row.latency.p50Ms} ms, p99 ${row.latency.p99Ms} ms, ${row.requestsPerSecond} req/s`)
          continue
        }
        const row: ShimRow = { hops: name, kind: k.kind, bytes: k.bytes, inflight: k.inflight, latency: summarize(acc.latencies), requestsPerSecond: round(rps, 1) }
        if (k.kind === 'bulk') row.mibPerSecond = round(rps * k.bytes / 1048576, 1)
        rows.push(row)
        progress(`  shim: ${name} hop(s), ${k.kind === 'null' ? 'null' : '1 MiB uploads'}, ${k.inflight} in flight: p50 ${row.latency.p50Ms} ms, p99 ${row.latency.p99Ms} ms, ${row.requestsPerSecond} req/s${row.mibPerSecond == null ? '' : `, ${row.mibPerSecond} MiB/s`}`)
      }
    }
    // what the control API adds: the same null request, one at a time, from this process
    const viaApi: number[] = []
    for (let i = 0; i < Math.min(200, opts.nullRequests); i++) {
      const t = performance.now()
      await a.call({ op: 'null' }, { peer: d.peerId })
      viaApi.push(performance.now() - t)
    }
    const pick = (hops: number, kind: string, inflight: number): ShimRow | undefined => rows.find(r => r.hops === hops && r.kind === kind && r.inflight === inflight)
    const top = Math.max(...opts.concurrency)
    const lat = (h: number): number | undefined => pick(h, 'null', 1)?.latency.p50Ms
    const tput = (h: number): number | undefined => pick(h, 'null', top)?.requestsPerSecond
    const bulk = (h: number): number | undefined => pick(h, 'bulk', 1)?.mibPerSecond
    const plainAt = (name: 'baseline' | 'floor', inflight: number): PlainRow | undefined => plain[name].find(x => x.inflight === inflight)
    return {
      baselineRatio: ratio(lat(0), plainAt('baseline', 1)?.latency.p50Ms, 2),
      baselineRatioLoaded: ratio(pick(0, 'null', top)?.latency.p50Ms, plainAt('baseline', top)?.latency.p50Ms, 2),
      baselineThroughputRatio: ratio(tput(0), plainAt('baseline', top)?.requestsPerSecond, 3),
      baseline: { rows: plain.baseline, method: BASELINE_METHOD },
      floor: { rows: plain.floor, method: FLOOR_METHOD, latencyRatio: ratio(lat(0), plainAt('floor', 1)?.latency.p50Ms, 2), throughputRatio: ratio(tput(0), plainAt('floor', top)?.requestsPerSecond, 2) },
      latencyRatio: ratio(lat(1), lat(0), 2),
      throughputRatio: ratio(tput(1), tput(0), 2),
      bulkThroughputRatio: ratio(bulk(1), bulk(0), 2),
      twoHop: { latencyRatio: ratio(lat(2), lat(0), 2), throughputRatio: ratio(tput(2), tput(0), 2), bulkThroughputRatio: ratio(bulk(2), bulk(0), 2) },
      rows,
      controlApi: { hops: 0, latency: summarize(viaApi) },
      method: METHOD
    }
  } finally {
    floor?.close()
    await net.close(keep)
  }
}
