/**
 * How big each benchmark is in each mode: `quick` (a few minutes: N = 10, a 4 MiB
 * package), `full` (the report: N = 10, 25 at 1, 16, 64 MiB, N = 50 at 1, 16 MiB, and
 * shaped runs at a per-host uplink of 20 Mbit/s), and `tiny` (the test that keeps the
 * scripts working: a few seconds per section).
 */
import type { ShapedRunSpec } from './uplink.ts'

/** Every section of the benchmark. */
export const SECTIONS = ['swarm', 'announce', 'shim', 'process', 'rollout', 'footprint', 'simulation'] as const

/** A section's name. */
export type Section = typeof SECTIONS[number]

/** The parameters of a run. */
export interface BenchMode {
  name: 'quick' | 'full' | 'tiny'
  swarm: {
    /** Network sizes; every size is measured on each. */
    peers: number[]
    /** Package sizes (the large file's bytes). */
    sizes: number[]
    /** Package sizes for some network sizes instead of `sizes` (a run has 600 s: 50 daemons on 2 CPUs cannot move 64 MiB in it). */
    sizesByPeers: Record<number, number[]>
    /** The package a one-file change is measured on (its large file's bytes). */
    deltaSize: number
  }
  /** Swarm runs on separate networks, each host with its own uplink of `uplinkMbit` (root and tc; scripts/bench/uplink.ts). */
  shaped: ShapedRunSpec[]
  /** Mbit/s of each host's uplink in the shaped runs; null: none. */
  uplinkMbit: number | null
  announce: { probes: number }
  shim: {
    /** Null requests per configuration and concurrency. */
    nullRequests: number
    /** 1 MiB requests per configuration and concurrency. */
    bulkRequests: number
    concurrency: number[]
    bulkConcurrency: number[]
    /** Calls made before measuring (JIT, connections, caches). */
    warmup: number
  }
  /**
   * Process apps. wire "http": null requests measured per path, one in flight, after
   * `warmup` per path; wire "tcp": `tcpBytes` sent on each path, `tcpRounds` times.
   */
  process: { requests: number, warmup: number, tcpBytes: number, tcpRounds: number }
  rollout: { peers: number, beforeMs: number, afterMs: number }
  /**
   * Idle CPU and RSS are measured on networks of `idlePeers` daemons (the first gives the
   * headline figures), each left to settle for `settleMs` after it started, over `idleMs`.
   */
  footprint: { idleMs: number, helpRuns: number, starts: number, idlePeers: number[], settleMs: number }
  /** Network sizes the simulator runs every policy at. */
  simulation: { peers: number[] }
}

const MiB = 1024 * 1024

/** The modes by name. */
export const MODES: Record<BenchMode['name'], BenchMode> = {
  quick: {
    name: 'quick',
    swarm: { peers: [10], sizes: [4 * MiB], sizesByPeers: {}, deltaSize: 4 * MiB },
    shaped: [],
    uplinkMbit: null,
    announce: { probes: 7 },
    shim: { nullRequests: 1000, bulkRequests: 40, concurrency: [1, 64], bulkConcurrency: [1, 8], warmup: 100 },
    process: { requests: 2000, warmup: 200, tcpBytes: 64 * MiB, tcpRounds: 5 },
    rollout: { peers: 6, beforeMs: 10_000, afterMs: 3000 },
    footprint: { idleMs: 30_000, helpRuns: 5, starts: 3, idlePeers: [10], settleMs: 15_000 },
    simulation: { peers: [1000] }
  },
  full: {
    name: 'full',
    swarm: { peers: [10, 25, 50], sizes: [1 * MiB, 16 * MiB, 64 * MiB], sizesByPeers: { 50: [1 * MiB, 16 * MiB] }, deltaSize: 64 * MiB },
    // 20 Mbit/s: the uplink a host with 1 Gbit/s per 2 CPUs would have with the 1/25 of a
    // CPU each daemon gets at N = 50 here; N = 50 itself is not shaped (it takes too long)
    shaped: [{ peers: 10, size: 16 * MiB }, { peers: 25, size: 16 * MiB }],
    uplinkMbit: 20,
    announce: { probes: 15 },
    shim: { nullRequests: 5000, bulkRequests: 200, concurrency: [1, 64], bulkConcurrency: [1, 8], warmup: 500 },
    process: { requests: 5000, warmup: 500, tcpBytes: 256 * MiB, tcpRounds: 5 },
    rollout: { peers: 10, beforeMs: 30_000, afterMs: 5000 },
    footprint: { idleMs: 60_000, helpRuns: 10, starts: 5, idlePeers: [10, 50], settleMs: 20_000 },
    simulation: { peers: [1000, 10_000] }
  },
  tiny: {
    name: 'tiny',
    swarm: { peers: [3], sizes: [256 * 1024], sizesByPeers: {}, deltaSize: 256 * 1024 },
    shaped: [],
    uplinkMbit: null,
    announce: { probes: 2 },
    shim: { nullRequests: 30, bulkRequests: 3, concurrency: [1, 4], bulkConcurrency: [1], warmup: 5 },
    process: { requests: 30, warmup: 5, tcpBytes: 1 * MiB, tcpRounds: 1 },
    rollout: { peers: 3, beforeMs: 2000, afterMs: 500 },
    footprint: { idleMs: 1000, helpRuns: 1, starts: 1, idlePeers: [3], settleMs: 1000 },
    simulation: { peers: [100] }
  }
}

/** The package sizes measured on a network of `peers` daemons. */
export function swarmSizes (mode: BenchMode, peers: number): number[] {
  return mode.swarm.sizesByPeers[peers] ?? mode.swarm.sizes
}
