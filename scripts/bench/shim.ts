/**
 * Shim overhead: four daemons run the `bench` app. A and D stay on protocol 1 (a local
 * policy waits for an approval that never comes), B moves to 2, C (labelled `hop=two`)
 * to 3. A's app then calls D (same version, no simulation object), B (one hop: A's
 * future SO for 2) and C (two hops: A's future SOs for 2 and 3) — the version choice
 * takes the fewest hops, the newer on a tie. The calls are made by a loop inside A's
 * app (its own `node.call`), started by one control API request, so the HTTP control
 * API is not part of what is measured; a separate row shows what it adds.
 */
import fs from 'node:fs/promises'
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

/** The shim figures. */
export interface ShimResult {
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

interface BenchAnswer { latencies: number[], wallMs: number }

/** Rounds the configurations take turns in. */
const ROUNDS = 6

async function loop (a: DaemonProcess, target: string, count: number, inflight: number, bytes: number): Promise<BenchAnswer> {
  return await a.call({ bench: { target, count, inflight, bytes } }, { timeoutMs: 600_000 }) as BenchAnswer
}

/** Build the four-daemon network, measure, stop it. */
export async function shimOverhead (opts: { nullRequests: number, bulkRequests: number, concurrency: number[], bulkConcurrency: number[], warmup: number }, progress: Progress, keep = false): Promise<ShimResult> {
  // a loop runs inside one call: let it take longer than the default 30 s
  const net = await BenchNetwork.create(progress, ['kv', 'bench'], { callTimeout: '20m' })
  try {
    const v1 = benchAppVersion(1)
    const v2 = benchAppVersion(2)
    const v3 = benchAppVersion(3, { schedule: [{ rule: 'labels', match: { hop: 'two' } }] })
    const r1 = await net.release({ base: null, files: v1.files, manifest: v1.manifest })
    const policy = net.ws.file('hold-policy.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'approve' }] }))
    // A, B, C, D
    await net.start(4, r1, i => i === 0 || i === 3 ? ['--policy', policy] : i === 2 ? ['--label', 'hop=two'] : [])
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
    // the configurations take turns, in rounds, so that drift (JIT, other load on the
    // machine) spreads over all of them instead of favouring the ones measured last
    const rows: ShimRow[] = []
    const cases = [
      ...opts.concurrency.map(inflight => ({ kind: 'null' as const, bytes: 0, inflight, count: opts.nullRequests })),
      ...opts.bulkConcurrency.map(inflight => ({ kind: 'bulk' as const, bytes: 1024 * 1024, inflight, count: opts.bulkRequests }))
    ]
    for (const k of cases) {
      const rounds = Math.max(1, Math.min(ROUNDS, Math.floor(k.count / Math.max(k.inflight, 1))))
      const got = new Map<number, { latencies: number[], wallMs: number }>(targets.map(([h]) => [h, { latencies: [], wallMs: 0 }]))
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? targets : [...targets].reverse()
        for (const [hops, target] of order) {
          const answer = await loop(a, target.peerId, Math.ceil(k.count / rounds), k.inflight, k.bytes)
          const acc = got.get(hops) as { latencies: number[], wallMs: number }
          acc.latencies.push(...answer.latencies)
          acc.wallMs += answer.wallMs
        }
      }
      for (const [hops] of targets) {
        const acc = got.get(hops) as { latencies: number[], wallMs: number }
        const rps = acc.latencies.length / acc.wallMs * 1000
        const row: ShimRow = { hops, kind: k.kind, bytes: k.bytes, inflight: k.inflight, latency: summarize(acc.latencies), requestsPerSecond: round(rps, 1) }
        if (k.kind === 'bulk') row.mibPerSecond = round(rps * k.bytes / 1048576, 1)
        rows.push(row)
        progress(`  shim: ${hops} hop(s), ${k.kind === 'null' ? 'null' : '1 MiB uploads'}, ${k.inflight} in flight: p50 ${row.latency.p50Ms} ms, p99 ${row.latency.p99Ms} ms, ${row.requestsPerSecond} req/s${row.mibPerSecond == null ? '' : `, ${row.mibPerSecond} MiB/s`}`)
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
    return {
      latencyRatio: ratio(lat(1), lat(0), 2),
      throughputRatio: ratio(tput(1), tput(0), 2),
      bulkThroughputRatio: ratio(bulk(1), bulk(0), 2),
      twoHop: { latencyRatio: ratio(lat(2), lat(0), 2), throughputRatio: ratio(tput(2), tput(0), 2), bulkThroughputRatio: ratio(bulk(2), bulk(0), 2) },
      rows,
      controlApi: { hops: 0, latency: summarize(viaApi) },
      method: METHOD
    }
  } finally {
    await net.close(keep)
  }
}
