/**
 * The policies `npm run simulate` compares, run at several network sizes.
 */
import type { ScheduleRule } from '#src/package/index.js'
import { simulateRollout } from './simulator.ts'
import type { SimulationParams, SimulationResult } from './simulator.ts'

/** Policies by name: the release's `schedule`. */
export const POLICIES: Record<string, ScheduleRule[]> = {
  rolling: [{ rule: 'rolling', maxFraction: 0.1 }],
  canary: [{ rule: 'canary', fraction: 0.05, soak: '60s' }],
  'canary+rolling': [{ rule: 'canary', fraction: 0.05, soak: '60s' }, { rule: 'rolling', maxFraction: 0.1 }]
}

/** One policy at one size. */
export interface PolicyRun extends SimulationResult {
  policy: string
}

/** Simulate every policy at every size. */
export async function simulatePolicies (sizes: number[], params: Omit<SimulationParams, 'peers' | 'rules'>, progress: (line: string) => void = () => {}): Promise<PolicyRun[]> {
  const out: PolicyRun[] = []
  for (const peers of sizes) {
    for (const [policy, rules] of Object.entries(POLICIES)) {
      const r = await simulateRollout({ ...params, peers, rules })
      progress(`  ${policy} at ${peers} peers: ${r.rolloutMs == null ? 'did not finish' : `${(r.rolloutMs / 1000).toFixed(1)} s`}, peak ${r.peakConcurrent} switching at once (limit ${r.slotLimit ?? 'none'}), ${r.backoffs} claims backed off; ${r.decisions} engine calls in ${(r.wallMs / 1000).toFixed(1)} s`)
      out.push({ policy, ...r })
    }
  }
  return out
}

/** A table for people. */
export function formatSimulation (runs: PolicyRun[]): string {
  const p = runs[0]?.params
  const lines = [
    `simulated rollouts (beat ${p?.beatMs ?? '?'} ms, switch ${p?.switchMs ?? '?'} ms, fetch ${p?.fetchMs ?? '?'} ms, hop ${p?.hopMs ?? '?'} ms, mesh degree ${p?.degree ?? '?'})`,
    'policy            peers   rollout     peak at once  limit   backoffs',
    ...runs.map(r => `${r.policy.padEnd(16)} ${String(r.peers).padStart(6)}   ${(r.rolloutMs == null ? 'unfinished' : `${(r.rolloutMs / 1000).toFixed(1)} s`).padStart(9)}   ${String(r.peakConcurrent).padStart(11)}  ${String(r.slotLimit ?? '-').padStart(5)}   ${String(r.backoffs).padStart(8)}`)
  ]
  return lines.join('\n')
}
