/**
 * "Where the CPU goes" in a swarm run: the daemons' own counters, summed over every daemon,
 * between a snapshot before the publish and one after the last peer staged the package.
 * A counter no daemon exposes (a build from before it) is null, shown as "–", so the table
 * reads the same before and after a change of the block protocol.
 *
 * @example
 * ```ts
 * const before = [parseMetrics('upgossip_block_requests_total{kind="have"} 2\n')]
 * const after = [parseMetrics('upgossip_block_requests_total{kind="have"} 7\n')]
 * swarmCounters(before, after).requests // → 5
 * swarmCounters(before, after).hashedBytes // → null: no daemon counts hashed bytes
 * ```
 */
import type { MetricSample } from './prometheus.ts'

/** Counters of one swarm run, summed over every daemon; null where no daemon has the counter. */
export interface SwarmCounters {
  /** Block requests answered (`upgossip_block_requests_total`, every kind). */
  requests: number | null
  /** Block streams opened to a daemon (`upgossip_block_streams_total{direction="in"}`) and by it (`out`). */
  streamsIn: number | null
  streamsOut: number | null
  /** Block-protocol messages by kind (`upgossip_block_messages_total{kind}`). */
  messages: Record<string, number> | null
  /** Bytes of blocks hashed (`upgossip_block_hashed_bytes_total`) and written to the block store (`upgossip_block_written_bytes_total`). */
  hashedBytes: number | null
  writtenBytes: number | null
  /** Status beats taken in from gossip (`upgossip_gossip_messages_total{topic="status"}`; a daemon counts a beat once, not its copies). */
  beatsHeard: number | null
}

type Where = (labels: Record<string, string>) => boolean

/** The sum of `name` over every daemon's samples that `where` admits, or null when no daemon has `name` at all. */
function total (daemons: MetricSample[][], name: string, where: Where = () => true): number | null {
  let found = false
  let sum = 0
  for (const samples of daemons) {
    for (const s of samples) {
      if (s.name !== name) continue
      found = true
      if (where(s.labels)) sum += s.value
    }
  }
  return found ? sum : null
}

/** The sum of `name` by the value of its label `label`, over every daemon; null when no daemon has `name`. */
function byLabel (daemons: MetricSample[][], name: string, label: string): Record<string, number> | null {
  let found = false
  const out: Record<string, number> = {}
  for (const samples of daemons) {
    for (const s of samples) {
      if (s.name !== name) continue
      found = true
      const key = s.labels[label] ?? ''
      out[key] = (out[key] ?? 0) + s.value
    }
  }
  return found ? out : null
}

function delta (before: number | null, after: number | null): number | null {
  return after == null ? null : after - (before ?? 0)
}

/** What the daemons counted between two snapshots of every daemon's metrics (the same daemons, in any order). */
export function swarmCounters (before: MetricSample[][], after: MetricSample[][]): SwarmCounters {
  const of = (name: string, where?: Where): number | null => delta(total(before, name, where), total(after, name, where))
  const messagesBefore = byLabel(before, 'upgossip_block_messages_total', 'kind') ?? {}
  const messagesAfter = byLabel(after, 'upgossip_block_messages_total', 'kind')
  return {
    requests: of('upgossip_block_requests_total'),
    streamsIn: of('upgossip_block_streams_total', l => l.direction === 'in'),
    streamsOut: of('upgossip_block_streams_total', l => l.direction === 'out'),
    messages: messagesAfter == null
      ? null
      : Object.fromEntries(Object.entries(messagesAfter).map(([kind, n]) => [kind, n - (messagesBefore[kind] ?? 0)]).filter(([, n]) => n !== 0)),
    hashedBytes: of('upgossip_block_hashed_bytes_total'),
    writtenBytes: of('upgossip_block_written_bytes_total'),
    beatsHeard: of('upgossip_gossip_messages_total', l => l.topic === 'status')
  }
}

/**
 * Swarm CPU-s per MiB delivered ÷ the HTTPS origin's (origin and clients), same run: both
 * delivered N − 1 copies of the package (the origin's bundle adds the signed record, well
 * under 1 %), so it is the ratio of their CPU times. Null when the origin's is 0.
 */
export function cpuRatio (run: { swarmCpuMs: number, httpsCpuMs: number }): number | null {
  return run.httpsCpuMs > 0 ? Math.round(1000 * run.swarmCpuMs / run.httpsCpuMs) / 1000 : null
}
