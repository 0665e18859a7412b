/**
 * The arithmetic of the benchmarks, kept pure so a unit of it can be tested without
 * daemons: quantiles, the ratios the report is made of, and the targets of issue 7.
 *
 * @example
 * ```ts
 * swarmRatios({ peers: 10, packageBytes: 4 << 20, publisherSentBytes: 6 << 20, blockBytesReceived: 36 << 20, swarmMs: 900, httpsMs: 600 })
 * // → { publisherEgressRatio: 1.5, duplicateRatio: 1, timeVsHttps: 1.5 }
 * ```
 */

/** The `q` quantile of numbers sorted ascending (nearest rank; 0 when empty). */
export function quantile (sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i] as number
}

/** Sorted copy. */
export function sortedCopy (values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b)
}

/** The median of unsorted numbers. */
export function median (values: readonly number[]): number {
  return quantile(sortedCopy(values), 0.5)
}

/** Round to `digits` decimals (figures in the JSON and the report stay readable). */
export function round (x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** `a ÷ b`, or null when it means nothing (b is 0 or either is missing). */
export function ratio (a: number | null | undefined, b: number | null | undefined, digits = 3): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null
  return round(a / b, digits)
}

/** Latencies summarised: count, p50, p99 and mean in ms. */
export interface LatencySummary {
  count: number
  p50Ms: number
  p99Ms: number
  meanMs: number
  maxMs: number
}

/** Summarise latencies in ms. */
export function summarize (latencies: readonly number[]): LatencySummary {
  const sorted = sortedCopy(latencies)
  const sum = sorted.reduce((a, b) => a + b, 0)
  return {
    count: sorted.length,
    p50Ms: round(quantile(sorted, 0.5), 3),
    p99Ms: round(quantile(sorted, 0.99), 3),
    meanMs: round(sorted.length === 0 ? 0 : sum / sorted.length, 3),
    maxMs: round(sorted.at(-1) ?? 0, 3)
  }
}

/** What one swarm run measured. */
export interface SwarmMeasure {
  peers: number
  packageBytes: number
  /** Bytes the publisher's daemon sent for the release: block protocol, releases topic and sync. */
  publisherSentBytes: number
  /** Block payload bytes received by every peer but the publisher. */
  blockBytesReceived: number
  /** Publish until every peer holds the verified (staged) package. */
  swarmMs: number
  /** The HTTPS origin: start until every client holds the verified bundle. */
  httpsMs: number
}

/** The swarm ratios of issue 7. */
export function swarmRatios (m: SwarmMeasure): { publisherEgressRatio: number | null, duplicateRatio: number | null, timeVsHttps: number | null } {
  return {
    publisherEgressRatio: ratio(m.publisherSentBytes, m.packageBytes),
    duplicateRatio: ratio(m.blockBytesReceived, (m.peers - 1) * m.packageBytes),
    timeVsHttps: ratio(m.swarmMs, m.httpsMs)
  }
}

/** One target of issue 7 and whether this run met it. */
export interface TargetCheck {
  name: string
  /** What the issue asks, for people. */
  target: string
  value: number | null
  /** null when the figure was not measured in this run. */
  met: boolean | null
  /** Under which conditions the target applies (full mode only, …). */
  applies: string
}

/** Compare a value with a bound. */
export function check (name: string, target: string, value: number | null | undefined, ok: (v: number) => boolean, applies = 'every mode'): TargetCheck {
  return { name, target, value: value ?? null, met: value == null ? null : ok(value), applies }
}

/** Bytes as MiB with one decimal. */
export function mib (bytes: number): string {
  return `${(bytes / 1048576).toFixed(bytes < 1048576 ? 2 : 1)} MiB`
}
