/**
 * Daemon memory over time, for the soak: resident set size read from `/proc` (Linux),
 * sampled at an interval, and a growth figure that ignores the warm-up.
 */
import fs from 'node:fs/promises'
import type { DaemonProcess } from './daemon-process.js'

/** One sample: resident memory of each running daemon, in MiB. */
export interface MemorySample {
  atMs: number
  rssMb: Record<string, number>
}

/** What the report says about memory. */
export interface MemoryReport {
  intervalMs: number
  samples: MemorySample[]
  /** Mean RSS per daemon over the second quarter of the run (after warm-up) and over the last quarter. */
  earlyMb: number
  lateMb: number
  /** (late − early) ÷ early, in percent. */
  growthPct: number
  /**
   * The same figures for each daemon alone: a mean over all of them can hide one that
   * grows (the one releases are published through, say) among others that stay flat.
   */
  perPeer: Record<string, { earlyMb: number, lateMb: number, growthPct: number }>
}

/** Resident set size of a process in bytes, or undefined where `/proc` is not there. */
export async function residentBytes (pid: number): Promise<number | undefined> {
  try {
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8')
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
    return kb == null ? undefined : Number(kb) * 1024
  } catch {
    return undefined
  }
}

/** Samples the daemons' memory every `intervalMs` until stopped (bounded by `maxSamples`). */
export class MemorySampler {
  readonly samples: MemorySample[] = []
  private timer?: NodeJS.Timeout

  constructor (private readonly peers: () => DaemonProcess[], private readonly elapsed: () => number, readonly intervalMs = 5000, private readonly maxSamples = 10_000) {}

  start (): void {
    const tick = async (): Promise<void> => {
      const rssMb: Record<string, number> = {}
      for (const p of this.peers()) {
        if (p.exited || p.pid == null) continue
        const bytes = await residentBytes(p.pid)
        if (bytes != null) rssMb[p.name] = Math.round(bytes / 1024 / 102.4) / 10
      }
      if (Object.keys(rssMb).length > 0 && this.samples.length < this.maxSamples) this.samples.push({ atMs: this.elapsed(), rssMb })
    }
    void tick()
    this.timer = setInterval(() => { void tick() }, this.intervalMs)
  }

  stop (): MemoryReport {
    clearInterval(this.timer)
    return memoryReport(this.samples, this.intervalMs)
  }
}

/** Growth of the mean per-daemon RSS from the second quarter of the samples to the last, over all daemons and for each. */
export function memoryReport (samples: MemorySample[], intervalMs: number): MemoryReport {
  const round = (x: number): number => Math.round(x * 10) / 10
  const q = Math.floor(samples.length / 4)
  const early = samples.slice(q, 2 * q)
  const late = samples.slice(samples.length - q)
  const figures = (pick: (s: MemorySample) => number[]): { earlyMb: number, lateMb: number, growthPct: number } => {
    const mean = (xs: MemorySample[]): number => {
      const values = xs.flatMap(pick)
      return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length
    }
    const e = mean(early)
    const l = mean(late)
    return { earlyMb: round(e), lateMb: round(l), growthPct: e === 0 ? 0 : round(100 * (l - e) / e) }
  }
  const names = [...new Set(samples.flatMap(s => Object.keys(s.rssMb)))].sort()
  const perPeer = Object.fromEntries(names.map(name => [name, figures(s => s.rssMb[name] == null ? [] : [s.rssMb[name]])]))
  return { intervalMs, samples, ...figures(s => Object.values(s.rssMb)), perPeer }
}

/** The daemon whose RSS grew most (by {@link MemoryReport.perPeer}), if any. */
export function mostGrowth (m: MemoryReport): { name: string, earlyMb: number, lateMb: number, growthPct: number } | undefined {
  return Object.entries(m.perPeer).map(([name, f]) => ({ name, ...f })).sort((a, b) => b.growthPct - a.growthPct)[0]
}
