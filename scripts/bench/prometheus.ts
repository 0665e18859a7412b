/**
 * Reading a daemon's `GET /metrics` (Prometheus text) into numbers, and adding up the
 * series a benchmark needs.
 *
 * @example
 * ```ts
 * const m = parseMetrics('upgossip_block_bytes_total{direction="in"} 4096\n')
 * metricSum(m, 'upgossip_block_bytes_total', { direction: 'in' }) // → 4096
 * ```
 */

/** One sample: a metric name, its labels and value. */
export interface MetricSample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parse the text exposition (comments and blank lines skipped). */
export function parseMetrics (text: string): MetricSample[] {
  const out: MetricSample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (match == null) continue
    const labels: Record<string, string> = {}
    for (const l of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1')
    out.push({ name: match[1] as string, labels, value: Number(match[3]) })
  }
  return out
}

/** The sum of `name`'s samples whose labels include `where` (a function filters freely). */
export function metricSum (samples: MetricSample[], name: string, where: Record<string, string> | ((labels: Record<string, string>) => boolean) = {}): number {
  const match = typeof where === 'function' ? where : (labels: Record<string, string>) => Object.entries(where).every(([k, v]) => labels[k] === v)
  return samples.filter(s => s.name === name && match(s.labels)).reduce((sum, s) => sum + s.value, 0)
}

/**
 * Bytes a daemon sent for releases: everything in `upgossip_bytes_total` going out but
 * the status beats (background chatter) and app traffic.
 */
export function releaseBytesOut (samples: MetricSample[]): number {
  return metricSum(samples, 'upgossip_bytes_total', l => l.direction === 'out' && l.protocol?.endsWith('/status') !== true && l.protocol?.startsWith('/upgossip/app/') !== true)
}
