/**
 * The simulator against the real testnet: the rollouts the rollout benchmark measured
 * (rolling, then canary, on N daemons) simulated with that run's own timings — beat
 * interval and settle time of the testnet's config, the measured switch time, and the
 * measured time from publish to the first switch as the fetch time — so the prediction
 * can be set beside what the daemons did.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { ScheduleRule } from '#src/package/index.js'
import { DEMO_APP_DIR } from '#src/testnet/index.js'
import type { RolloutResult, RolloutRun } from '../bench/rollout.ts'
import { median, ratio } from '../bench/stats.ts'
import { simulateRollout } from './simulator.ts'

/** A prediction set beside the measurement. */
export interface Comparison {
  release: string
  rules: ScheduleRule[]
  realMs: number
  predictedMs: number | null
  /** predicted ÷ real. */
  ratio: number | null
  realPeak: number
  predictedPeak: number
}

/** What `rollout.simulated` holds. */
export interface SimulatedRollouts {
  peers: number
  seeds: number
  runs: Comparison[]
}

async function manifestRules (major: number): Promise<ScheduleRule[]> {
  const manifest = JSON.parse(await fs.readFile(path.join(DEMO_APP_DIR, `v${major}`, 'upgossip.json'), 'utf8')) as { schedule?: ScheduleRule[] }
  return manifest.schedule ?? [{ rule: 'immediate' }]
}

/** Simulate the measured rollouts (median of a few seeds). */
export async function compareWithTestnet (real: Pick<RolloutResult, 'peers' | 'rolling' | 'canary'>, seeds = 5): Promise<SimulatedRollouts> {
  // the testnet's daemon config: beats every second; settle = max(1 s, 1.5 beats)
  const beatMs = 1000
  const settleMs = 1500
  const compare = async (run: RolloutRun, rules: ScheduleRule[]): Promise<Comparison> => {
    const times: number[] = []
    const peaks: number[] = []
    for (let seed = 1; seed <= seeds; seed++) {
      const r = await simulateRollout({
        peers: real.peers,
        rules,
        beatMs,
        settleMs,
        hopMs: 20,
        degree: 3,
        // publish → first switch took announce + fetch + one decision (and a settle where rules claim)
        fetchMs: Math.max(0, run.firstStartMs - (rules.some(x => x.rule === 'rolling') ? settleMs : 0) - 500),
        switchMs: run.switchMeanMs,
        seed
      })
      if (r.rolloutMs != null) times.push(r.rolloutMs)
      peaks.push(r.peakConcurrent)
    }
    const predicted = times.length === 0 ? null : median(times)
    return { release: run.release, rules, realMs: run.rolloutMs, predictedMs: predicted, ratio: ratio(predicted, run.rolloutMs, 2), realPeak: run.maxConcurrent, predictedPeak: Math.max(...peaks) }
  }
  return {
    peers: real.peers,
    seeds,
    runs: [await compare(real.rolling, await manifestRules(2)), await compare(real.canary, await manifestRules(3))]
  }
}
