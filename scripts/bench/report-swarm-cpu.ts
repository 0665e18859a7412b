/**
 * The report's "where the CPU goes" table of the swarm section: per run, the daemons'
 * counters summed over every daemon beside the CPU they used, so that the next regression
 * of the block protocol shows as a count (more requests, more streams, bytes hashed twice)
 * before anyone profiles. A counter a run did not have is "–".
 */
import { cpuRatioOf } from './result.ts'
import { mib } from './stats.ts'
import type { SwarmRun } from './swarm.ts'

function cell (v: number | null | undefined): string {
  return v == null ? '–' : String(v)
}

function mibCell (bytes: number | null | undefined): string {
  return bytes == null ? '–' : (bytes / 1048576).toFixed(1)
}

/** CPU-s per MiB delivered to the N − 1 peers. */
function perMiB (cpuMs: number, run: SwarmRun): string {
  return (cpuMs / 1000 / ((run.peers - 1) * run.packageBytes / 1048576)).toFixed(3)
}

/** Requests: the counter, or in a run from before it was kept, `have` (with `wait`) plus `get`. */
function requests (run: SwarmRun): number | null {
  if (run.counters != null) return run.counters.requests
  return run.haveRequests == null ? null : run.haveRequests + (run.getRequests ?? 0)
}

function messages (run: SwarmRun): string {
  const m = run.counters?.messages
  if (m == null) return '–'
  const kinds = Object.entries(m).sort(([a], [b]) => a.localeCompare(b))
  return kinds.length === 0 ? '0' : kinds.map(([kind, n]) => `${kind} ${n}`).join(' · ')
}

/** The table and the sentence that says what its columns count (markdown lines). */
export function whereTheCpuGoes (runs: SwarmRun[]): string[] {
  if (runs.length === 0) return []
  const head = ['peers', 'package', 'CPU-s: swarm', 'CPU-s per MiB: swarm', 'CPU-s per MiB: HTTPS', 'CPU ÷ HTTPS', 'requests', 'block streams in / out', 'block messages', 'MiB hashed', 'MiB written', 'beats taken in']
  const rows = runs.map(x => [
    String(x.peers),
    mib(x.packageBytes),
    (x.swarmCpuMs / 1000).toFixed(1),
    perMiB(x.swarmCpuMs, x),
    perMiB(x.httpsCpuMs, x),
    cell(cpuRatioOf(x)),
    cell(requests(x)),
    x.counters?.streamsIn == null && x.counters?.streamsOut == null ? '–' : `${cell(x.counters.streamsIn)} / ${cell(x.counters.streamsOut)}`,
    messages(x),
    mibCell(x.counters?.hashedBytes),
    mibCell(x.counters?.writtenBytes),
    cell(x.counters?.beatsHeard ?? x.beatsHeard)
  ])
  return [
    '### Where the CPU goes', '',
    'Each run\'s counters, summed over every daemon from the publish until the last peer staged the package: block requests answered (`upgossip_block_requests_total`), block streams opened to and by the daemons (`upgossip_block_streams_total`), block-protocol messages by kind (`upgossip_block_messages_total`), block bytes hashed (`upgossip_block_hashed_bytes_total`) and written (`upgossip_block_written_bytes_total`), and status beats taken in (`upgossip_gossip_messages_total` on the status topic; copies of a beat dropped before validation are not counted); "–" where the daemons of that run had no such counter. CPU is user + system time from /proc; per MiB delivered to the N − 1 peers; CPU ÷ HTTPS is `swarm.cpuRatio`.', '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map(r => `| ${r.join(' | ')} |`),
    ''
  ]
}
