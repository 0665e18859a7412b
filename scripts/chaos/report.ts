/**
 * The chaos run's report: the JSON whose first fields are a contract (docs/chaos.md, never
 * renamed) with more fields added, and the lines people read at the end.
 */
import type { AckedWrite } from './clients.ts'
import type { Convergence, LostWrite } from './checker.ts'
import type { ChaosEvent } from './nemesis.ts'
import type { ChaosPlan, FaultKind } from './plan.ts'

/** What `npm run chaos -- --json` prints. */
export interface ChaosReport {
  seed: number
  peers: number
  durationMs: number
  /** `netns` (a namespace per daemon) or `loopback`. */
  mode: 'netns' | 'loopback'
  /** What this machine could not strike, and why. */
  notes: string[]
  /** Strikes per kind. */
  faults: Partial<Record<FaultKind, number>>
  /** Every strike, heal, restart, crash, publish and revocation, in time order. */
  events: ChaosEvent[]
  writes: { acknowledged: number, lost: number, lostExamples: LostWrite[], attempted: number, failed: number }
  converged: boolean
  /** Peers per version at the end. */
  versions: Record<string, number>
  /** The version every peer should end on. */
  expected: string
  convergence: Omit<Convergence, 'converged' | 'versions' | 'expected'>
  plan: Pick<ChaosPlan, 'windowMs' | 'kinds' | 'milestones' | 'strikes'>
  /** The daemons' logs (kept with --keep, or when the run failed). */
  logs?: string
}

/** Assemble the report. */
export function chaosReport (r: {
  plan: ChaosPlan
  mode: ChaosReport['mode']
  notes: string[]
  durationMs: number
  counts: ChaosReport['faults']
  events: ChaosEvent[]
  acked: AckedWrite[]
  attempted: number
  failed: number
  lost: LostWrite[]
  convergence: Convergence
  logs?: string
}): ChaosReport {
  const { converged, versions, expected, ...convergence } = r.convergence
  return {
    seed: r.plan.seed,
    peers: r.plan.peers,
    durationMs: r.durationMs,
    mode: r.mode,
    notes: r.notes,
    faults: r.counts,
    events: [...r.events].sort((a, b) => a.at - b.at),
    writes: { acknowledged: r.acked.length, lost: r.lost.length, lostExamples: r.lost.slice(0, 20), attempted: r.attempted, failed: r.failed },
    converged,
    versions,
    expected,
    convergence,
    plan: { windowMs: r.plan.windowMs, kinds: r.plan.kinds, milestones: r.plan.milestones, strikes: r.plan.strikes },
    ...(r.logs == null ? {} : { logs: r.logs })
  }
}

/** The summary people read on stderr. */
export function formatChaosReport (r: ChaosReport): string {
  const kinds = Object.entries(r.faults).map(([k, n]) => `${k} ×${n}`).join(', ')
  const lines = [
    `chaos: seed ${r.seed}, ${r.peers} peers, ${r.mode} mode, ${(r.durationMs / 1000).toFixed(0)} s`,
    `faults: ${Object.values(r.faults).reduce((a, b) => a + (b ?? 0), 0)} (${kinds})`,
    `writes: ${r.writes.acknowledged} acknowledged of ${r.writes.attempted} attempted, ${r.writes.lost} lost`,
    `converged: ${r.converged ? `yes, every peer on ${r.expected}${r.convergence.tookMs == null ? '' : ` ${(r.convergence.tookMs / 1000).toFixed(1)} s after healing`}` : `NO (expected ${r.expected})`}; versions ${JSON.stringify(r.versions)}`
  ]
  for (const p of r.convergence.peers) {
    if (p.problems.length > 0 || p.releases.length > 0) lines.push(`  ${p.name}: ${[...p.problems, ...p.releases].join('; ')}`)
  }
  for (const w of r.writes.lostExamples.slice(0, 5)) lines.push(`  lost: ${w.peer} ${w.key} (acknowledged at ${(w.at / 1000).toFixed(1)} s) reads ${JSON.stringify(w.got)}`)
  if (r.convergence.wedged.length > 0) lines.push(`wedged: ${r.convergence.wedged.join('; ')}`)
  for (const n of r.notes) lines.push(`note: ${n}`)
  if (r.logs != null) lines.push(`logs: ${r.logs}`)
  return lines.join('\n')
}
