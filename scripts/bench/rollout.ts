/**
 * Rollout disruption, with the testnet's own machinery (`src/testnet`): N daemons run the
 * demo app's v1 under the load generator (every peer called through `POST /call`, one
 * request in flight per peer, each answer checked); after a quiet stretch, v2 (its
 * manifest: `rolling`, one peer at a time) is published, then v3 (`canary`, a quarter,
 * 5 s soak). Requests are split by when they were sent: before, during each rollout.
 */
import { Testnet } from '#src/testnet/index.js'
import type { DaemonProcess } from '#src/testnet/index.js'
import type { Progress } from './network.ts'
import { sleep } from './network.ts'
import { ratio } from './stats.ts'
import type { SimulatedRollouts } from '../sim/compare.ts'

/** Requests of one phase. */
export interface PhaseLoad {
  sent: number
  failed: number
  p50Ms: number
  p99Ms: number
}

/** One rollout, from the daemons' histories. */
export interface RolloutRun {
  release: string
  rule: string
  /** Publish until every peer runs the release. */
  rolloutMs: number
  /** Each peer's switch (upgrade-started → upgrade-committed), mean and max. */
  switchMeanMs: number
  switchMaxMs: number
  /** Most peers switching at one moment. */
  maxConcurrent: number
  /** Publish until the first switch started (announce + fetch + schedule). */
  firstStartMs: number
  load: PhaseLoad
}

/** The disruption figures. */
export interface RolloutResult {
  peers: number
  /** Requests that failed, over the whole run (before, rolling, canary, after). */
  failedRequests: number
  /** p99 during the rolling rollout ÷ p99 before it. */
  p99Ratio: number | null
  /** The rolling rollout's time. */
  rolloutMs: number
  before: PhaseLoad
  rolling: RolloutRun
  canary: RolloutRun
  requests: number
  failures: Array<{ atMs: number, peer: string, op: string, error: string }>
  /** The simulator's prediction of the same rollouts (scripts/sim/compare.ts). */
  simulated?: SimulatedRollouts
}

interface HistoryEvent { time: string, type: string, to?: string }

function switches (histories: Array<HistoryEvent[]>, releaseId: string): Array<{ start: number, end: number }> {
  const out = []
  for (const events of histories) {
    const start = events.find(e => e.type === 'upgrade-started' && e.to === releaseId)
    const end = events.find(e => (e.type === 'upgrade-committed' || e.type === 'upgrade-failed' || e.type === 'upgrade-rolled-back') && e.to === releaseId)
    if (start != null) out.push({ start: Date.parse(start.time), end: end == null ? Date.now() : Date.parse(end.time) })
  }
  return out
}

/** The largest number of intervals open at one moment. */
export function mostAtOnce (intervals: Array<{ start: number, end: number }>): number {
  const edges = intervals.flatMap(i => [[i.start, 1], [i.end, -1]] as Array<[number, number]>).sort((a, b) => a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1])
  let now = 0
  let most = 0
  for (const [, d] of edges) { now += d; most = Math.max(most, now) }
  return most
}

/** Run the rolling and canary rollouts on `peers` daemons under load. */
export async function rolloutDisruption (opts: { peers: number, beforeMs: number, afterMs: number }, progress: Progress, verbose = false): Promise<RolloutResult> {
  const net = new Testnet({
    peers: opts.peers,
    keep: false,
    stepTimeoutMs: 300_000,
    sink: { write: text => { if (verbose) process.stderr.write(text) }, isTTY: false }
  })
  try {
    await net.prepare()
    progress(`  rollout: starting ${opts.peers} daemons on kv 1.0.0 under load…`)
    await net.startNetwork(opts.peers, await net.release(1))
    await sleep(opts.beforeMs)
    const run = async (major: number, rule: string): Promise<RolloutRun> => {
      const release = await net.release(major)
      const from = net.elapsed()
      const publishedAt = Date.now()
      await net.publish(release)
      await net.waitVersion(release.version)
      const to = net.elapsed()
      const histories = await Promise.all(net.peers.map(async (p: DaemonProcess) => await p.history() as unknown as HistoryEvent[]))
      const s = switches(histories, release.id)
      const durations = s.map(x => x.end - x.start)
      const load = net.load.summary({ fromMs: from, toMs: to })
      const r: RolloutRun = {
        release: release.version,
        rule,
        rolloutMs: to - from,
        switchMeanMs: Math.round(durations.reduce((a, b) => a + b, 0) / Math.max(1, durations.length)),
        switchMaxMs: Math.max(0, ...durations),
        maxConcurrent: mostAtOnce(s),
        firstStartMs: Math.min(...s.map(x => x.start)) - publishedAt,
        load: { sent: load.sent, failed: load.failed, p50Ms: load.p50Ms, p99Ms: load.p99Ms }
      }
      progress(`  rollout: ${release.version} (${rule}) on ${opts.peers} peers in ${(r.rolloutMs / 1000).toFixed(1)} s, switches ${r.switchMeanMs} ms each, at most ${r.maxConcurrent} at once; ${load.sent} requests, ${load.failed} failed, p99 ${load.p99Ms} ms`)
      return r
    }
    const beforeLoad = net.load.summary()
    const before = { sent: beforeLoad.sent, failed: beforeLoad.failed, p50Ms: beforeLoad.p50Ms, p99Ms: beforeLoad.p99Ms }
    const rolling = await run(2, 'rolling, max 1')
    const canary = await run(3, 'canary, a quarter, 5 s soak')
    await sleep(opts.afterMs)
    const total = await net.load.stop()
    return {
      peers: opts.peers,
      failedRequests: total.failed,
      p99Ratio: ratio(rolling.load.p99Ms, before.p99Ms, 2),
      rolloutMs: rolling.rolloutMs,
      before,
      rolling,
      canary,
      requests: total.sent,
      failures: total.failures.slice(0, 5)
    }
  } finally {
    await net.load?.stop().catch(() => {})
    await net.monitor.stop()
    await net.close()
  }
}
