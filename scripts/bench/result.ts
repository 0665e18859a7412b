/**
 * The shape of one benchmark run (what `npm run bench -- --json` prints), the targets
 * of issues 7 and 17 (process apps) checked against it, and its headline figures — pure,
 * so the shape is tested without running daemons.
 */
import type { AnnounceResult } from './announce.ts'
import type { AlternativeRun } from './bitswap.ts'
import type { FootprintResult } from './footprint.ts'
import type { Section } from './modes.ts'
import type { ProcessResult } from './process.ts'
import type { RolloutResult } from './rollout.ts'
import type { ShimResult } from './shim.ts'
import { check } from './stats.ts'
import type { TargetCheck } from './stats.ts'
import type { DeltaRun, SwarmRun } from './swarm.ts'
import { cpuRatio } from './swarm-counters.ts'
import type { PolicyRun } from '../sim/policies.ts'

/** Swarm figures: the headline ratios (of the headline run) and every run. */
export interface SwarmResult {
  publisherEgressRatio: number | null
  duplicateRatio: number | null
  timeVsHttps: number | null
  /** Swarm CPU-s per MiB delivered ÷ the HTTPS origin's, of the headline run (absent in runs before it). */
  cpuRatio?: number | null
  /** Which run the headline ratios come from. */
  headline: { peers: number, packageBytes: number } | null
  runs: SwarmRun[]
  delta: DeltaRun | null
  /** Idle daemons of each network size, before anything was published. */
  idle: Array<{ peers: number, cpuPercent: number | null, rssMB: number | null }>
  /** How the HTTPS origin's certificate was made. */
  certificate: string
  /**
   * Runs with every host's uplink shaped to `uplinkMbit` (`--uplink`), each on a network
   * of its own; `measuredMbit` is one connection's throughput between two shaped addresses
   * at setup. Null when there were none (or the machine could not shape: see `errors`);
   * absent in runs made before it existed.
   */
  shaped?: ShapedSwarm | null
  /**
   * Other block protocols on the same network sizes and packages, one run per swarm run
   * (issue 19: @helia/bitswap); never in `runs`. Absent when skipped (`--no-alternatives`)
   * and in runs made before it existed.
   */
  alternatives?: AlternativeRun[]
}

/** The swarm at a per-host uplink. */
export interface ShapedSwarm {
  uplinkMbit: number
  measuredMbit: number
  runs: SwarmRun[]
  /**
   * Bytes each shaped address sent through its own uplink during the runs, by address
   * (tc's counters of its class after the measurement and at the end): proof that the
   * hosts' traffic went through the shaping. Absent in runs made before it existed.
   */
  carriedBytes?: Record<string, number>
}

/** The machine and the conditions of a run. */
export interface MachineInfo {
  cpus: number
  cpuModel: string
  memoryGiB: number
  node: string
  platform: string
  /** 1-minute load average at the start and the end; above the CPU count, figures are noisy. */
  loadStart: number
  loadEnd: number
}

/** One invocation of `npm run bench`: what the figures of its sections were measured by. */
export interface BenchRun {
  version: string
  mode: 'quick' | 'full' | 'tiny'
  /** The git commit measured, if known. */
  commit: string | null
  startedAt: string
  wallMs: number
  machine: MachineInfo
  /** What the person who ran it said about the conditions (`--note`). */
  note: string | null
  /** The options the run was started with (absent in runs made before it was kept). */
  command?: string
  /** The sections the run measured, or tried to (a failed one is in `errors`). */
  sections: Section[]
}

/**
 * The figures of `npm run bench`: the run printed by `--json`, or the one a `--write`
 * saved in docs/benchmarks/run.json. The run's own fields describe the latest run; a
 * partial run written over a saved one keeps the sections it did not run, and the runs
 * that measured them are in `earlierRuns`.
 */
export interface BenchResult extends BenchRun {
  benchmark: 'upgossip'
  swarm: SwarmResult | null
  announce: AnnounceResult | null
  shim: ShimResult | null
  rollout: RolloutResult | null
  footprint: FootprintResult | null
  /** Rollouts at scale by the simulator (timelines left out of the JSON). */
  simulation: Array<Omit<PolicyRun, 'timeline'>> | null
  /** Process apps (wire "http") through the proxy and the shim; null when not run, absent in runs made before it existed. */
  process?: ProcessResult | null
  targets: TargetCheck[]
  /** Sections that failed, with the reason (`swarm.shaped`: the shaped runs, or why the machine could not shape; `process.tcp`: the wire "tcp" part of `process`). */
  errors: Partial<Record<Section | 'swarm.shaped' | 'swarm.alternatives' | 'process.tcp', string>>
  /**
   * Earlier runs whose figures this result keeps, newest first, each with the sections
   * still its own (none of them in `sections`); empty in a run's own JSON.
   */
  earlierRuns: BenchRun[]
}

/** The section a target or an `errors` key belongs to (`swarm.shaped` → `swarm`). */
export function sectionOf (name: string): Section {
  return name.slice(0, name.includes('.') ? name.indexOf('.') : undefined) as Section
}

/** The run that measured `section` in `r` (this one or an earlier one), or null when none did. */
export function runOf (r: BenchResult, section: Section): BenchRun | null {
  if (r.sections.includes(section)) return r
  return r.earlierRuns.find(x => x.sections.includes(section)) ?? null
}

/** Every run whose figures are in `r`, newest first. */
export function runsOf (r: BenchResult): BenchRun[] {
  return [r, ...r.earlierRuns]
}

/** The run the headline swarm ratios come from: the largest network, and the size nearest 16 MiB. */
export function headlineRun (runs: SwarmRun[]): SwarmRun | undefined {
  const most = Math.max(...runs.map(r => r.peers))
  return runs.filter(r => r.peers === most).sort((a, b) => Math.abs(Math.log2(a.packageBytes / 16_777_216)) - Math.abs(Math.log2(b.packageBytes / 16_777_216)))[0]
}

/** Swarm section results from its runs. */
export function swarmResult (runs: SwarmRun[], delta: DeltaRun | null, idle: SwarmResult['idle'], certificate: string): SwarmResult {
  const h = headlineRun(runs)
  return {
    publisherEgressRatio: h?.publisherEgressRatio ?? null,
    duplicateRatio: runs.length === 0 ? null : Math.max(...runs.map(r => r.duplicateRatio ?? 0)),
    timeVsHttps: h?.timeVsHttps ?? null,
    cpuRatio: h == null ? null : cpuRatioOf(h),
    headline: h == null ? null : { peers: h.peers, packageBytes: h.packageBytes },
    runs,
    delta,
    idle,
    certificate,
    shaped: null
  }
}

/** A run's CPU ratio: as measured, or from its CPU times in a run made before it was kept. */
export function cpuRatioOf (run: SwarmRun): number | null {
  return run.cpuRatio !== undefined ? run.cpuRatio : cpuRatio(run)
}

const MiB = 1048576

/** Whether a package is of about `mib` MiB (a package's blocks add a little to its file). */
function sized (run: SwarmRun, mib: number): boolean {
  return run.packageBytes >= mib * MiB && run.packageBytes < (mib + 1) * MiB
}

/** The largest of `values`, or null when there are none (a missing value counts as a miss). */
function worst (values: Array<number | null | undefined>): number | null {
  return values.length === 0 ? null : Math.max(...values.map(v => v ?? Infinity))
}

/** The runs the CPU target is checked on: N = 10 with a 4 or a 16 MiB package. */
export function cpuTargetRuns (swarm: SwarmResult | null | undefined): SwarmRun[] {
  return (swarm?.runs ?? []).filter(x => x.peers === 10 && (sized(x, 4) || sized(x, 16)))
}

/** The shaped runs the time target at a per-host uplink is checked on: N = 10 and N = 25. */
export function shapedTargetRuns (swarm: SwarmResult | null | undefined): SwarmRun[] {
  return (swarm?.shaped?.runs ?? []).filter(x => x.peers === 10 || x.peers === 25)
}

/** Idle daemon CPU at N = 50, where a run measured it (full mode); null otherwise. */
export function idleCpuAt50 (r: Pick<BenchResult, 'footprint'>): number | null {
  return r.footprint?.idleByPeers?.find(i => i.peers === 50)?.cpuPercent ?? null
}

/** The targets of issues 7, 17 and 19, checked against a run. */
export function targets (r: Pick<BenchResult, 'mode' | 'swarm' | 'announce' | 'shim' | 'rollout' | 'footprint' | 'process'>): TargetCheck[] {
  const runs = r.swarm?.runs ?? []
  const at10 = runs.filter(x => x.peers === 10)
  const shaped = shapedTargetRuns(r.swarm)
  const idle = r.footprint?.idlePeers === 10 ? r.footprint.idleCpuPercent : null
  const at50 = idleCpuAt50(r)
  return [
    check('swarm.publisherEgressRatio', '≤ 1.5 × package at every N', worst(runs.map(x => x.publisherEgressRatio)), v => v <= 1.5),
    check('swarm.duplicateRatio', '≤ 1.05', r.swarm?.duplicateRatio, v => v <= 1.05),
    check('swarm.cpuRatio', "≤ 3 × the HTTPS origin's CPU per MiB delivered (N = 10, 4 and 16 MiB)", worst(cpuTargetRuns(r.swarm).map(cpuRatioOf)), v => v <= 3),
    check('swarm.timeVsHttps', '≤ 1.5 × the HTTPS origin (N = 10, loopback)', worst(at10.map(x => x.timeVsHttps)), v => v <= 1.5),
    check('swarm.timeVsHttps shaped, N = 10 and 25', `≤ 1: no slower than the HTTPS origin${r.swarm?.shaped?.uplinkMbit == null ? '' : `, every host with a per-host uplink of ${r.swarm.shaped.uplinkMbit} Mbit/s`}`, worst(shaped.map(x => x.timeVsHttps)), v => v <= 1, 'full mode'),
    check('announce.ratio', '≤ 1.2 × a plain gossip message', r.announce?.ratio, v => v <= 1.2),
    check('shim.latencyRatio', '≤ 1.2 × same-version p50 (one SO hop)', r.shim?.latencyRatio, v => v <= 1.2),
    check('shim.throughputRatio', '≥ 0.9 × same-version req/s (one SO hop)', r.shim?.throughputRatio, v => v >= 0.9),
    check('shim.twoHop.latencyRatio', '≤ 1.4 × same-version p50 (two SO hops)', r.shim?.twoHop.latencyRatio, v => v <= 1.4),
    check('shim.baselineRatio', '≤ 8 × a plain TCP request between the two app processes (same version, null, p50, one in flight)', r.shim?.baselineRatio, v => v <= 8),
    check('shim.baselineThroughputRatio', '≥ 0.1 × a plain TCP connection\'s req/s (same version, null, 64 in flight)', r.shim?.baselineThroughputRatio, v => v >= 0.1),
    check('process.latencyRatio', '≤ 2 × a direct request between the app ports (HTTP, same version, p50)', r.process?.latencyRatio, v => v <= 2),
    check('process.soHopRatio', '≤ 1.2 × the untranslated path (HTTP, one SO hop, p50)', r.process?.soHopRatio, v => v <= 1.2),
    check('process.tcpThroughputRatio', '≥ 0.8 × a bare libp2p stream (wire "tcp", MiB/s)', r.process?.tcpThroughputRatio, v => v >= 0.8),
    check('rollout.failedRequests', '0', r.rollout?.failedRequests, v => v === 0),
    check('rollout.p99Ratio', '≤ 3 × p99 before', r.rollout?.p99Ratio, v => v <= 3),
    check('footprint.idleRssMB', '≤ 100 MB (idle daemon)', r.footprint?.idleRssMB, v => v <= 100),
    check('footprint.idleCpuPercent', `≤ 0.5 % of one CPU (idle daemon, N = 10; at N = 50 ≤ 1 %: ${at50 == null ? 'not measured' : `${at50} %`})`, idle, v => v <= 0.5 && (at50 == null || at50 <= 1))
  ]
}
