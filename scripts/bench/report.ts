/**
 * The report of a run: docs/benchmarks.md with its tables, and SVG plots beside it in
 * docs/benchmarks/. Everything in it comes from the run — or, after a partial run was
 * merged into the saved one, from the run of each section, named under its heading:
 * figures, and the method of each section. Why figures come out as they do, what was changed because of them, and the
 * profiles behind that, are written by hand in docs/benchmarks-analysis.md, which the
 * report links to and never writes. Nothing else is written: not the README.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { PolicyRun } from '../sim/policies.ts'
import type { ProcessLatency } from './process.ts'
import type { Section } from './modes.ts'
import { isMerged, provenance, runLabel, sectionSource, whichRun } from './provenance.ts'
import { cpuTargetRuns, idleCpuAt50, runOf, sectionOf, shapedTargetRuns } from './result.ts'
import { whereTheCpuGoes } from './report-swarm-cpu.ts'
import type { BenchResult, ShapedSwarm } from './result.ts'
import { mib } from './stats.ts'
import { alternativesTable } from './bitswap.ts'
import type { AlternativeRun } from './bitswap.ts'
import type { SwarmRun } from './swarm.ts'
import type { TargetCheck } from './stats.ts'
import { barChart, lineChart } from './svg.ts'

function table (head: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cell = (v: string | number | null | undefined): string => v == null ? '–' : String(v)
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map(r => `| ${r.map(cell).join(' | ')} |`)].join('\n')
}

function seconds (ms: number | null | undefined, digits = 1): string | null {
  return ms == null ? null : `${(ms / 1000).toFixed(digits)} s`
}

function verdict (t: TargetCheck, merged: boolean): string {
  return t.met == null ? (merged ? 'not measured' : 'not measured in this run') : t.met ? '**met**' : '**missed**'
}

/** The hand-written page that discusses the figures of this report (a sibling of the report). */
export const ANALYSIS_PAGE = 'benchmarks-analysis.md'

/**
 * The section of the analysis page about each target (the anchor of its heading); a unit
 * test checks that every one exists in docs/benchmarks-analysis.md.
 */
export const ANALYSIS_ANCHORS: Record<string, string> = {
  'swarm.publisherEgressRatio': 'publisher-egress',
  'swarm.duplicateRatio': 'duplicate-blocks',
  'swarm.cpuRatio': 'where-the-swarms-cpu-goes',
  'swarm.timeVsHttps': 'swarm-time-against-the-https-origin',
  'swarm.timeVsHttps shaped, N = 10 and 25': 'swarm-time-against-the-https-origin',
  'announce.ratio': 'announcement',
  'shim.latencyRatio': 'shim-overhead',
  'shim.throughputRatio': 'shim-overhead',
  'shim.twoHop.latencyRatio': 'shim-overhead',
  'shim.baselineRatio': 'shim-overhead',
  'shim.baselineThroughputRatio': 'shim-overhead',
  'process.latencyRatio': 'process-apps',
  'process.soHopRatio': 'process-apps',
  'process.tcpThroughputRatio': 'process-apps',
  'rollout.failedRequests': 'rollout-disruption',
  'rollout.p99Ratio': 'rollout-disruption',
  'footprint.idleRssMB': 'idle-memory',
  'footprint.idleCpuPercent': 'idle-cpu'
}

/** Where the analysis page discusses a target: a markdown link, or '' for a target it does not. */
function analysisLink (name: string): string {
  const anchor = ANALYSIS_ANCHORS[name]
  return anchor == null ? '' : ` Why: [${ANALYSIS_PAGE}](${ANALYSIS_PAGE}#${anchor}).`
}

function busyCpus (y: { swarmCpuMs: number, swarmMs: number }): string {
  return (y.swarmCpuMs / y.swarmMs).toFixed(2)
}

/** The swarm runs at a per-host uplink, or why there are none, in one sentence. */
function shapedFigures (r: BenchResult): string {
  const s = r.swarm?.shaped
  if (s != null && s.runs.length > 0) return `Shaped runs at ${s.uplinkMbit} Mbit/s per host: ${s.runs.map(y => `N = ${y.peers}, ${mib(y.packageBytes)}: the swarm ${seconds(y.swarmMs) ?? '–'} against the origin's ${seconds(y.httpsMs) ?? '–'} (× ${y.timeVsHttps ?? '–'})`).join('; ')}.`
  const error = r.errors['swarm.shaped']
  return error == null ? 'Shaped runs (`--uplink MBIT`): not asked for in this run.' : `Shaped runs (\`--uplink MBIT\`): not made in this run: ${error}.`
}

/**
 * The figures behind a target that was missed (or, in a full run, not measured): numbers
 * only, from the result as its section's run saw it (see {@link asMeasured}). Why they
 * come out as they do is the analysis page's business.
 */
const FIGURES: Record<string, (r: BenchResult) => string> = {
  'swarm.timeVsHttps': r => {
    const cpus = r.machine.cpus
    const at10 = (r.swarm?.runs ?? []).filter(y => y.peers === 10)
    const saturated = (r.swarm?.runs ?? []).filter(y => y.swarmMs > 0 && y.swarmCpuMs / y.swarmMs >= 0.8 * cpus)
    const idle = (r.swarm?.idle ?? []).filter(i => i.cpuPercent != null).map(i => `${i.cpuPercent ?? '–'} % at N = ${i.peers}`).join(', ')
    return [
      at10.map(x => `N = 10, ${mib(x.packageBytes)}: the swarm ${seconds(x.swarmMs, 2) ?? '–'} against the origin's ${seconds(x.httpsMs, 2) ?? '–'}; its daemons used ${seconds(x.swarmCpuMs) ?? '–'} of CPU (${busyCpus(x)} of ${cpus} CPUs busy on average), the origin and its clients ${seconds(x.httpsCpuMs) ?? '–'}.`).join(' '),
      saturated.length === 0 ? '' : `Runs with the CPUs at least 80 % busy: ${saturated.length} of ${r.swarm?.runs.length ?? 0} (${saturated.map(y => `N = ${y.peers}, ${mib(y.packageBytes)}: ${busyCpus(y)}`).join('; ')}).`,
      r.errors.swarm == null ? '' : `The swarm section failed: ${r.errors.swarm}.`,
      idle === '' ? '' : `An idle daemon's CPU before the publish: ${idle} of one CPU.`
    ].filter(t => t !== '').join(' ')
  },
  'swarm.timeVsHttps shaped, N = 10 and 25': r => {
    const uplink = r.swarm?.shaped?.uplinkMbit
    const rows = shapedTargetRuns(r.swarm).map(x => {
      const oneCopyMs = uplink == null ? null : x.bundleBytes * 8 / (uplink * 1e6) * 1000
      const plain = r.swarm?.runs.find(y => y.peers === x.peers && y.packageBytes === x.packageBytes)
      return `N = ${x.peers}, ${mib(x.packageBytes)}: the swarm ${seconds(x.swarmMs) ?? '–'} against the origin's ${seconds(x.httpsMs) ?? '–'} (× ${x.timeVsHttps ?? '–'}${plain == null ? '' : `; unshaped × ${plain.timeVsHttps ?? '–'}`}), one copy at the uplink ${seconds(oneCopyMs) ?? '–'}`
    })
    return rows.length > 0 ? `At ${uplink ?? '–'} Mbit/s per host: ${rows.join('; ')}.` : shapedFigures(r)
  },
  'swarm.cpuRatio': r => {
    const rows = cpuTargetRuns(r.swarm).map(x => `N = ${x.peers}, ${mib(x.packageBytes)}: ${(x.swarmCpuMs / 1000).toFixed(1)} CPU-s for the swarm, ${(x.httpsCpuMs / 1000).toFixed(1)} for the origin and its clients`)
    return rows.length === 0 ? '' : `${rows.join('; ')}. Where the swarm's CPU goes, run by run: the table under the swarm section.`
  },
  'swarm.publisherEgressRatio': r => {
    const worst = [...(r.swarm?.runs ?? [])].sort((a, b) => (b.publisherEgressRatio ?? 0) - (a.publisherEgressRatio ?? 0))[0]
    const rows = (r.swarm?.runs ?? []).map(y => `N = ${y.peers}, ${mib(y.packageBytes)}: ${y.publisherEgressRatio ?? '–'}`).join('; ')
    return worst == null ? '' : `The highest was N = ${worst.peers}, ${mib(worst.packageBytes)}: ${worst.publisherEgressRatio ?? '–'}, with ${busyCpus(worst)} of ${r.machine.cpus} CPUs busy on average. Run by run: ${rows}.`
  },
  'swarm.duplicateRatio': r => `Run by run: ${(r.swarm?.runs ?? []).map(y => `N = ${y.peers}, ${mib(y.packageBytes)}: ${y.duplicateRatio ?? '–'}`).join('; ')}.`,
  'announce.ratio': r => {
    const rows = (r.announce?.byPeers ?? []).map(b => `N = ${b.peers}: ${b.releaseMs} ms against ${b.plainMs} ms (× ${b.ratio ?? '–'})`).join('; ')
    return rows === '' ? '' : `By network size: ${rows}.`
  },
  'shim.latencyRatio': r => r.shim == null ? '' : `Two hops: p50 × ${r.shim.twoHop.latencyRatio ?? '–'}.`,
  'shim.throughputRatio': r => r.shim == null ? '' : `Two hops: throughput × ${r.shim.twoHop.throughputRatio ?? '–'}; 1 MiB uploads, one hop × ${r.shim.bulkThroughputRatio ?? '–'}, two hops × ${r.shim.twoHop.bulkThroughputRatio ?? '–'}.`,
  'shim.baselineRatio': r => r.shim?.baseline == null ? '' : `At ${Math.max(...r.shim.baseline.rows.map(x => x.inflight))} in flight: p50 × ${r.shim.baselineRatioLoaded ?? '–'}. The floor (IPC both sides and one libp2p stream, no upgossip logic): same version ÷ floor, p50 × ${r.shim.floor?.latencyRatio ?? '–'}, throughput × ${r.shim.floor?.throughputRatio ?? '–'}.`,
  'process.latencyRatio': r => r.process == null ? '' : `p50 ${r.process.sameVersion.p50Ms} ms through the proxy and the peer's daemon, ${r.process.direct.p50Ms} ms between the app ports; A's proxy to A's own app, without libp2p: ${r.process.ownProxy.p50Ms} ms.`,
  'process.soHopRatio': r => r.process == null ? '' : `p50 ${r.process.soHop.p50Ms} ms through one SO hop, ${r.process.sameVersion.p50Ms} ms untranslated.`,
  'process.tcpThroughputRatio': r => {
    const t = r.process?.tcp
    return t == null ? (r.process?.tcpThroughputNote ?? '') : `${t.tunnel.mibPerSecond ?? '–'} MiB/s through the tunnel, ${t.libp2p.mibPerSecond ?? '–'} MiB/s on a bare libp2p stream, ${t.loopback.mibPerSecond ?? '–'} MiB/s over plain loopback TCP; CPU per MiB of all the processes: ${t.tunnel.cpuMsPerMiB?.total ?? '–'}, ${t.libp2p.cpuMsPerMiB?.total ?? '–'} and ${t.loopback.cpuMsPerMiB?.total ?? '–'} ms.`
  },
  'rollout.failedRequests': r => r.rollout == null ? '' : `${r.rollout.failedRequests} of ${r.rollout.requests}; \`rollout.failures\` in run.json names them.`,
  'rollout.p99Ratio': r => r.rollout == null ? '' : `p99 before: ${r.rollout.before.p99Ms} ms; during the rolling rollout: ${r.rollout.rolling.load.p99Ms} ms; a switch took ${r.rollout.rolling.switchMeanMs} ms on average, ${r.rollout.rolling.switchMaxMs} ms at most.`,
  'footprint.idleRssMB': r => {
    const f = r.footprint
    return f == null ? '' : `Of the RSS, the daemon's own (USS): ${f.idleUssMB ?? '–'} MB; with \`NODE_OPTIONS=--max-semi-space-size=1\` the RSS is ${f.idleRssSmallYoungGenMB ?? '–'} MB; the app, in its own process: ${f.appRssMB ?? '–'} MB.`
  },
  'footprint.idleCpuPercent': r => {
    const f = r.footprint
    if (f == null) return ''
    const all = (f.idleByPeers ?? []).map(i => `${i.peers} daemons: ${i.cpuPercent ?? '–'} % each`).join('; ')
    const at50 = idleCpuAt50(r)
    return `${f.idlePeers === 10 ? '' : `Measured at N = ${f.idlePeers}, not 10. `}${all === '' ? '' : `Idle networks measured: ${all}. `}N = 50: ${at50 == null ? 'not measured' : `${at50} %`}.`
  }
}

/**
 * `r` with the run fields (machine, mode, …) of the run that measured `section`: in a
 * merged report, a section's CPUs and load are those of its own run.
 */
function asMeasured (r: BenchResult, section: Section): BenchResult {
  const x = runOf(r, section)
  return x == null || x === r ? r : { ...r, ...x }
}

/** A target's line in the lists of missed and unmeasured targets. */
function targetLine (t: TargetCheck, r: BenchResult): string {
  const figures = FIGURES[t.name]?.(asMeasured(r, sectionOf(t.name))) ?? ''
  return `- \`${t.name}\`${t.value == null ? '' : ` (${t.value})`}:${figures === '' ? '' : ` ${figures}`}${analysisLink(t.name)}`
}

/** The spread of the largest network's probes, by kind: a median hides a second mode. */
function probeSpread (a: NonNullable<BenchResult['announce']>): string[] {
  const probes = a.probes ?? []
  const range = (kind: string): string => {
    const ms = probes.filter(p => p.kind === kind).map(p => p.lastMs)
    return ms.length === 0 ? '–' : `${Math.min(...ms)}–${Math.max(...ms)} ms`
  }
  if (probes.length === 0) return []
  return [`At N = ${a.peers}, probe by probe, the last daemon had a release after ${range('release')} and a beat after ${range('plain')} (every probe: \`announce.probes\` in run.json).`]
}

/** The shaped runs: the table and why they exist. */
function shapedSection (s: ShapedSwarm, cpus: number): string[] {
  return ['### At a per-host uplink', '',
    `On one machine over loopback an HTTPS origin has no uplink for its clients to share, so the first table of this section compares CPU, not networks. Here each host — each daemon and the origin — gets its own loopback address (daemon i 127.0.0.(10 + i), for listening and, with \`--dial-from\`, for dialling; the origin 127.0.0.2) and the same uplink of **${s.uplinkMbit} Mbit/s**, shaped with tc on \`lo\` by source address (an HTB class per address, ceil = rate, a FIFO of max(64, 3 × (hosts − 1)) packets — a real uplink's 200 ms of bytes holds only seven of lo's 64 KiB packets at 20 Mbit/s, and TCP then times out; the control API and the clients' requests unshaped). One TCP connection between two shaped addresses measured **${s.measuredMbit} Mbit/s** at setup. Each run is a network of its own; the figures are times at that uplink, and the ${cpus} CPUs are still shared. Why this uplink, and why no 50-daemon network is shaped: [${ANALYSIS_PAGE}](${ANALYSIS_PAGE}#the-uplink-of-the-shaped-runs).`, '',
    table(['peers', 'package', 'swarm', 'HTTPS', 'time ÷ HTTPS', 'one copy at the uplink', '(N − 1) copies at the uplink', 'publisher sent ÷ package', 'received ÷ (N−1) × package', 'CPU: swarm daemons', 'CPU: HTTPS origin + clients'],
      s.runs.map(x => {
        const copyMs = x.bundleBytes * 8 / (s.uplinkMbit * 1e6) * 1000
        return [x.peers, mib(x.packageBytes), seconds(x.swarmMs, 2), seconds(x.httpsMs, 2), x.timeVsHttps, seconds(copyMs, 2), seconds((x.peers - 1) * copyMs, 2), x.publisherEgressRatio, x.duplicateRatio, seconds(x.swarmCpuMs), seconds(x.httpsCpuMs)]
      })), '']
}

/** Other block protocols beside the swarm runs (issue 19): the table and how they were run. */
function alternativesSection (alternatives: AlternativeRun[], runs: SwarmRun[]): string[] {
  const { head, rows } = alternativesTable(alternatives, runs)
  return ['### Against @helia/bitswap', '',
    `After each swarm run, as many processes each run a libp2p node with the daemons' transports (TCP, noise, yamux, identify) and @helia/bitswap over a blockstore-fs store on disk (scripts/bench/bitswap.ts); ${alternatives[0]?.topology ?? ''}. The first imports the package blocks of the same bundle; at once the others each walk the package DAG from its root, wanting every block, check each against its sha-256, write it to disk and announce it. A fetcher that got no block for 10 s sends its whole want-list again to every connected peer, as kubo's periodic rebroadcast does (\`stalls\`: bitswap 2.2.0 takes a message it failed to write for sent and sends a want-list again only to a peer that connects anew). The time runs from that start until the last process holds every block; CPU is every process's, the first's too, from /proc; bytes are counted on each node's connections (framing and want-lists in them). The swarm's time includes what the daemons do besides moving blocks (admitting the release, checking the package against the record, unpacking it). Ratios are to the swarm run of the same N and package, and to its HTTPS origin. Why: [${ANALYSIS_PAGE}](${ANALYSIS_PAGE}#our-block-protocol-against-heliabitswap).`, '',
    table(head, rows), '']
}

/** Process apps: the paths side by side, and the ratios. */
function processSection (p: NonNullable<BenchResult['process']>, source: string): string[] {
  const ms = (v: number): string => `${v} ms`
  const rows: Array<[string, ProcessLatency]> = [
    ['direct: app A → app B\'s port on loopback (no upgossip)', p.direct],
    ['same version: app A → A\'s proxy → daemon A → libp2p → daemon B → app B', p.sameVersion],
    ['one SO hop: the same to C, served through C\'s past SO', p.soHop],
    ['A\'s proxy → daemon A → app A (no libp2p)', p.ownProxy]
  ]
  return ['## Process apps', '', source, '',
    `Three daemons run an HTTP process app (\`run: { command, wire: "http" }\`): ${p.app}. A and B run protocol 1, C runs 2 with a past simulation object that passes messages through unchanged. A loop inside A's app makes null requests (GET, an 11-byte answer), one in flight, to each path in turn, request by request, over connections kept open; latency is measured per request in the app (${p.requests} per path after ${p.warmup} not counted).`, '',
    table(['path', 'requests', 'p50', 'p90', 'p99', 'mean'], rows.map(([name, l]) => [name, l.count, ms(l.p50Ms), ms(l.p90Ms), ms(l.p99Ms), ms(l.meanMs)])), '',
    `Same version through the proxy and the peer's daemon against the direct request: p50 × **${p.latencyRatio ?? '–'}**. One SO hop against the untranslated path: p50 × **${p.soHopRatio ?? '–'}**. Where the time goes: [${ANALYSIS_PAGE}](${ANALYSIS_PAGE}#process-apps).`, '',
    ...processCpu(p), '', ...processTcp(p), '']
}

/** wire "tcp": the three paths' throughput and CPU. */
function processTcp (p: NonNullable<BenchResult['process']>): string[] {
  const t = p.tcp
  if (t == null) return [`**wire "tcp".** ${p.tcpThroughputNote ?? 'Not measured in this run.'}`]
  const paths: Array<[string, keyof Pick<typeof t, 'tunnel' | 'libp2p' | 'loopback'>]> = [['tunnel: CONNECT through A\'s proxy → daemon A → libp2p → daemon B → app B', 'tunnel'], ['a bare libp2p stream between two nodes (TCP, noise, yamux)', 'libp2p'], ['plain loopback TCP to B\'s app port', 'loopback']]
  const cpu = (c: number | undefined): string => c == null ? '–' : String(c)
  return [`**wire "tcp".** Two more daemons run a TCP process app, a sink that answers a count of bytes once it has them all. The bench sends ${mib(t.bytes)} on each path in turn, ${t.rounds} times (after one run each not counted), in 64 KiB writes with backpressure, timed from the first byte until the count came back; CPU ms per MiB from /proc (the sender is the bench process; the libp2p sink runs in a process of its own; a process not on the path counts its background work).`, '',
    table(['path', 'MiB/s (median)', 'runs', 'CPU ms per MiB: sender', 'daemon A', 'daemon B', 'app B', 'libp2p sink', 'all'], paths.map(([label, k]) => {
      const x = t[k]
      const c = x.cpuMsPerMiB
      return [label, x.mibPerSecond, x.runs.join(', '), cpu(c?.sender), cpu(c?.daemonA), cpu(c?.daemonB), cpu(c?.appB), cpu(c?.sink), cpu(c?.total)]
    })), '',
    `Through the tunnel against the bare libp2p stream: × **${p.tcpThroughputRatio ?? '–'}**; against plain loopback TCP: × ${ratioText(t.tunnel.mibPerSecond, t.loopback.mibPerSecond)}.`]
}

function ratioText (a: number | null, b: number | null): string {
  return a == null || b == null || b === 0 ? '–' : (a / b).toFixed(2)
}

/** The CPU each process spent per request, each path measured alone. */
function processCpu (p: NonNullable<BenchResult['process']>): string[] {
  const cpu = p.cpu
  if (cpu == null) return []
  const paths: Array<[string, keyof typeof cpu]> = [['direct', 'direct'], ['same version', 'sameVersion'], ['one SO hop', 'soHop'], ['A\'s own app through its proxy', 'ownProxy']]
  return [`CPU milliseconds per request of each process (user + system, from /proc, counted in 10 ms ticks), each path alone for ${cpu.direct.requests} requests, one in flight. With one request in flight the processes of a path work one after another, so on CPUs not shared with much else the latency is about their sum.`, '',
    table(['path', 'wall per request', 'app A', 'daemon A', 'daemon B', 'app B', 'daemon C', 'app C', 'all six'], paths.map(([label, k]) => {
      const c = cpu[k]
      const m = c.msPerRequest
      return [label, `${c.wallMsPerRequest} ms`, m.appA, m.daemonA, m.daemonB, m.appB, m.daemonC, m.appC, `${m.total} ms`]
    }))]
}

/**
 * Write docs/benchmarks.md and its SVGs; returns the files written. The whole report is
 * made in memory first: a result it cannot render leaves the files as they were.
 */
export async function writeReport (r: BenchResult, file: string, simulations: PolicyRun[] = []): Promise<string[]> {
  const svgDir = path.join(path.dirname(file), 'benchmarks')
  const plots = new Map<string, string>()
  const svg = (name: string, content: string): string => {
    plots.set(path.join(svgDir, name), content)
    return `![${name}](benchmarks/${name})`
  }
  const merged = isMerged(r)
  // under a section's heading, in a merged report: the run its figures come from
  const source = (section: Section): string => sectionSource(r, section)
  const cpus = (section: Section): number => (runOf(r, section) ?? r).machine.cpus
  const md: string[] = ['# Benchmarks', '', provenance(r), '',
    'Every figure comes from real `upgossip daemon` processes on loopback, started and measured by `scripts/bench.ts` (the method of each section is in [scripts/README.md](../scripts/README.md)). Performance is reported as ratios measured side by side in one run; no test asserts a time.', '',
    `This page is written by the benchmark and holds the figures of ${merged ? 'the runs above' : 'one run'}; ${merged ? 'their' : 'the run\'s'} JSON is [benchmarks/run.json](benchmarks/run.json). Why targets are missed, what was changed in the code because of these measurements, and the profiles behind both are in [${ANALYSIS_PAGE}](${ANALYSIS_PAGE}), written by hand.`, '',
    '## Targets', '',
    merged
      ? table(['figure', 'target', 'value', '', 'run'], r.targets.map(t => [`\`${t.name}\``, t.target + (t.applies === 'every mode' ? '' : ` (${t.applies})`), t.value, verdict(t, merged), runLabel(runOf(r, sectionOf(t.name)))]))
      : table(['figure', 'target', 'this run', ''], r.targets.map(t => [`\`${t.name}\``, t.target + (t.applies === 'every mode' ? '' : ` (${t.applies})`), t.value, verdict(t, merged)])), '']
  const missed = r.targets.filter(t => t.met === false)
  if (missed.length > 0) {
    md.push(merged ? 'Targets missed, with the figures of their runs behind each:' : 'Targets missed in this run, with the figures behind each:', '')
    for (const t of missed) md.push(targetLine(t, r))
    md.push('')
  }
  // in a full run, a target with no figure is one whose section failed: say what stood in the way
  const unmeasured = r.targets.filter(t => t.met == null && FIGURES[t.name] != null && runOf(r, sectionOf(t.name))?.mode === 'full')
  if (unmeasured.length > 0) {
    md.push(merged ? 'Targets their full runs could not measure, with the figures they have:' : 'Targets this run could not measure, with the figures it has:', '')
    for (const t of unmeasured) md.push(targetLine(t, r))
    md.push('')
  }
  for (const [key, error] of Object.entries(r.errors)) md.push(key === 'swarm.shaped' ? `> The swarm's shaped runs were not made in ${whichRun(r, 'swarm')}: ${error}` : `> The ${key} section failed in ${whichRun(r, sectionOf(key))}: ${error}`, '')

  if (r.swarm != null) {
    const s = r.swarm
    md.push('## Swarm against an HTTPS origin', '', source('swarm'), '',
      'One daemon of N (the publisher) is given a release whose package holds one large random file; the time runs from its admission on the publisher (blocks imported, gossip starts) until the last other daemon logged `release-staged` (every block fetched and checked, the package checked against the record and unpacked). Bytes come from the daemons\' metrics: `upgossip_bytes_total` (the publisher\'s block, releases and sync traffic; beats left out) and `upgossip_block_bytes_total` (block payloads). The baseline serves the same bundle from a separate node:https process (a certificate made at run time with ' + s.certificate + ') to N − 1 client processes released together; each writes the bundle to disk, fsyncs and checks its sha-256.', '',
      table(['peers', 'package', 'swarm', 'HTTPS', 'time ÷ HTTPS', 'publisher sent ÷ package', 'received ÷ (N−1) × package', 'CPU: swarm daemons', 'CPU: HTTPS origin + clients', 'publish call', 'announce'],
        s.runs.map(x => [x.peers, mib(x.packageBytes), seconds(x.swarmMs, 2), seconds(x.httpsMs, 2), x.timeVsHttps, x.publisherEgressRatio, x.duplicateRatio, seconds(x.swarmCpuMs), seconds(x.httpsCpuMs), seconds(x.publishMs, 2), seconds(x.announceMs, 2)])), '')
    const sizes = [...new Set(s.runs.map(x => x.packageBytes))]
    if (new Set(s.runs.map(x => x.peers)).size > 1) {
      md.push(svg('swarm-time.svg', lineChart({
        title: 'Publish → every peer holds the package',
        x: 'peers',
        y: 'seconds',
        series: sizes.flatMap(size => [
          { name: `swarm ${mib(size)}`, points: s.runs.filter(x => x.packageBytes === size).map(x => [x.peers, x.swarmMs / 1000] as [number, number]) },
          { name: `HTTPS ${mib(size)}`, dashed: true, points: s.runs.filter(x => x.packageBytes === size).map(x => [x.peers, x.httpsMs / 1000] as [number, number]) }
        ])
      })), '')
    } else {
      md.push(svg('swarm-time.svg', barChart({ title: `Publish → every peer holds the package (N = ${s.runs[0]?.peers ?? '?'})`, y: 'seconds', categories: s.runs.map(x => mib(x.packageBytes)), series: [{ name: 'swarm', values: s.runs.map(x => x.swarmMs / 1000) }, { name: 'HTTPS origin', values: s.runs.map(x => x.httpsMs / 1000) }] })), '')
    }
    md.push(svg('swarm-egress.svg', barChart({
      title: 'What the publisher sent, × package',
      y: '× package',
      categories: s.runs.map(x => `${x.peers} · ${mib(x.packageBytes)}`),
      series: [{ name: 'swarm publisher', values: s.runs.map(x => x.publisherEgressRatio ?? 0) }, { name: 'HTTPS origin', values: s.runs.map(x => x.httpsOriginSentBytes / x.packageBytes) }],
      reference: { value: 1.5, label: 'target 1.5' }
    })), '')
    if (s.delta != null) {
      const d = s.delta
      md.push(`**A release that changes one small file.** On ${d.peers} daemons holding a ${mib(d.packageBytes)} package, a release whose only change is a ${d.changedFileBytes}-byte file (and the manifest's version) moved **${d.bytesPerPeer} block bytes per peer**: ${((d.fractionOfPackage ?? 0) * 100).toFixed(4)} % of the package — the changed file, the manifest and the directory node; blocks already held are never fetched again. It took ${seconds(d.ms, 2) ?? '–'} to reach every peer.`, '')
    }
    md.push(...whereTheCpuGoes(s.runs))
    if (s.idle.length > 0) md.push(`Idle daemons in the seconds before the first publish (the daemon's defaults: status checked every 5 s, an unchanged one beaten every 20 s, and in networks of more than 10 peers every (peers ÷ 0.5) s, \`idleBeatRate\`): ${s.idle.map(i => `${i.peers} peers — ${i.cpuPercent ?? '?'} % of a CPU each, ${i.rssMB ?? '?'} MB RSS`).join('; ')}.`, '')
    if (s.shaped != null && s.shaped.runs.length > 0) md.push(...shapedSection(s.shaped, cpus('swarm')))
    if (s.alternatives != null && s.alternatives.length > 0) md.push(...alternativesSection(s.alternatives, s.runs))
    md.push('How a package moves between the daemons is in [wire.md](wire.md#block-exchange); `test/unit/swarm.test.ts` runs the same code on an in-memory swarm. `upgossip_block_requests_total` counts the requests each daemon answered.', '')
    md.push('**What the time is made of.** ' + s.runs.map(x => {
      const busy = x.swarmCpuMs / (cpus('swarm') * x.swarmMs)
      return `${x.peers} peers, ${mib(x.packageBytes)}: the daemons used ${seconds(x.swarmCpuMs)} of CPU in ${seconds(x.swarmMs)} (${Math.round(100 * busy)} % of the machine's ${cpus('swarm')} CPUs), ${(x.swarmCpuMs / 1000 / ((x.peers - 1) * x.packageBytes / 1048576)).toFixed(2)} CPU-s per MiB delivered; the origin and its clients ${seconds(x.httpsCpuMs)}, ${(x.httpsCpuMs / 1000 / ((x.peers - 1) * x.packageBytes / 1048576)).toFixed(3)} CPU-s per MiB.`
    }).join(' ') + ` Where that CPU goes (profiles): [${ANALYSIS_PAGE}](${ANALYSIS_PAGE}#where-the-swarms-cpu-goes).`, '')
  }

  if (r.announce != null) {
    const a = r.announce
    md.push('## Announcement against a plain gossip message', '', source('announce'), '',
      `A probe node (a libp2p node built by \`src/net\` with the daemons' own settings) joins through one daemon and publishes, in turns, a signed release of a tiny package (${a.releaseMessageBytes} bytes on the releases topic) and a status beat padded to ${a.plainMessageBytes} bytes (on the status topic). Every daemon subscribes to both topics and forwards both; it records when it took each in: \`release-admitted\` in its event log, the probe's \`seen\` time in \`GET /status\`. The daemons' topics are the only ones they forward, so a message on a topic of the probe's own would reach none of them: the beat is the plain message, and its cost per hop is a schema check in memory. Each probe goes out on a quiet network: after a release probe every daemon fetches and stages its tiny package and beats its new state, so the next probe waits until all have staged it, then 2 s; and the probe node's beats announce a 10-minute idle interval, so it stays in every view between probes (a beat from a forgotten peer is a newcomer's, and every daemon answers a newcomer with a beat of its own).`, '',
      table(['peers', 'release → last daemon (median of probes)', 'beat → last daemon', 'ratio', 'release → median daemon', 'beat → median daemon'], (a.byPeers ?? [a]).map(x => [x.peers, `${x.releaseMs} ms`, `${x.plainMs} ms`, x.ratio, x.peers === a.peers ? `${a.releaseMedianPeerMs} ms` : null, x.peers === a.peers ? `${a.plainMedianPeerMs} ms` : null])), '',
      ...probeSpread(a), '')
  }

  if (r.shim != null) {
    const sh = r.shim
    md.push('## Shim overhead', '', source('shim'), '',
      'Four daemons run a three-version app (scripts/bench/bench-app.ts). A and D stay on protocol 1, B runs 2, C runs 3; A\'s app calls D (same version), B (one simulation object: A\'s future SO for 2) and C (two: A\'s future SOs for 2 and 3). The calls are made by a loop inside A\'s app — its own `node.call` — started by one control API request, so HTTP is not in the figures; latency is measured per call in the app. The three targets take turns in rounds.', '',
      table(['SO hops', 'request', 'in flight', 'p50', 'p99', 'req/s', 'MiB/s'], sh.rows.map(x => [x.hops, x.kind === 'null' ? 'null' : '1 MiB upload', x.inflight, `${x.latency.p50Ms} ms`, `${x.latency.p99Ms} ms`, x.requestsPerSecond, x.mibPerSecond])), '',
      ...(sh.baseline == null
        ? []
        : ['Without upgossip\'s logic, in the same rounds: the baseline (' + sh.baseline.method + ') and the floor (' + (sh.floor?.method ?? '') + ').', '',
            table(['path', 'in flight', 'p50', 'p99', 'req/s'], [...sh.baseline.rows.map(x => ['baseline: plain TCP', x.inflight, `${x.latency.p50Ms} ms`, `${x.latency.p99Ms} ms`, x.requestsPerSecond]), ...(sh.floor?.rows ?? []).map(x => ['floor: IPC + libp2p stream', x.inflight, `${x.latency.p50Ms} ms`, `${x.latency.p99Ms} ms`, x.requestsPerSecond])]), '',
            `Same version against the baseline: p50 × ${sh.baselineRatio ?? '–'} at one in flight, × ${sh.baselineRatioLoaded ?? '–'} at ${Math.max(...sh.baseline.rows.map(x => x.inflight))}; throughput × ${sh.baselineThroughputRatio ?? '–'}. Against the floor: p50 × ${sh.floor?.latencyRatio ?? '–'}, throughput × ${sh.floor?.throughputRatio ?? '–'}.`, '']),
      `One hop against the same version: p50 × ${sh.latencyRatio ?? '–'}, throughput × ${sh.throughputRatio ?? '–'} (null requests at ${Math.max(...sh.rows.map(x => x.inflight))} in flight), 1 MiB uploads × ${sh.bulkThroughputRatio ?? '–'}. Two hops: p50 × ${sh.twoHop.latencyRatio ?? '–'}, throughput × ${sh.twoHop.throughputRatio ?? '–'}, uploads × ${sh.twoHop.bulkThroughputRatio ?? '–'}. The same null request through \`POST /call\` from outside (HTTP, then the same path): p50 ${sh.controlApi.latency.p50Ms} ms, p99 ${sh.controlApi.latency.p99Ms} ms.`, '')
    md.push(svg('shim-latency.svg', barChart({ title: 'Null request p50 by SO hops', y: 'ms', categories: ['same version', 'one hop', 'two hops'], series: [...new Set(sh.rows.filter(x => x.kind === 'null').map(x => x.inflight))].map(n => ({ name: `${n} in flight`, values: [0, 1, 2].map(h => sh.rows.find(x => x.kind === 'null' && x.inflight === n && x.hops === h)?.latency.p50Ms ?? 0) })) })), '')
  }

  if (r.process != null) md.push(...processSection(r.process, source('process')))

  if (r.rollout != null) {
    const ro = r.rollout
    md.push('## Rollout disruption', '', source('rollout'), '',
      `The testnet's own runner (\`src/testnet\`): ${ro.peers} daemons on the demo app's v1, a client per peer writing and reading back keys through \`POST /call\` (one request in flight per peer, every answer checked), a quiet stretch, then v2 (its manifest: \`rolling\`, one peer at a time), then v3 (\`canary\`, a quarter first, 5 s soak). Requests count in the phase in which they were sent.`, '',
      table(['phase', 'time', 'requests', 'failed', 'p50', 'p99', 'switch (mean, max)', 'most at once'], [
        ['before', null, ro.before.sent, ro.before.failed, `${ro.before.p50Ms} ms`, `${ro.before.p99Ms} ms`, null, null],
        ...[ro.rolling, ro.canary].map(x => [`${x.release}: ${x.rule}`, seconds(x.rolloutMs), x.load.sent, x.load.failed, `${x.load.p50Ms} ms`, `${x.load.p99Ms} ms`, `${x.switchMeanMs} ms, ${x.switchMaxMs} ms`, x.maxConcurrent])
      ]), '',
      `Failed requests over the whole run: **${ro.failedRequests}** of ${ro.requests}. p99 during the rolling rollout ÷ before: **${ro.p99Ratio ?? '–'}**.`, '')
    if (ro.simulated != null) {
      md.push(`The simulator (below) run on the same rollouts, with this run's timings (beat 1 s, settle 1.5 s, the measured switch time, and publish → first switch as the fetch time; median of ${ro.simulated.seeds} seeds):`, '',
        table(['release', 'rules', 'real', 'predicted', 'predicted ÷ real', 'most at once, real', 'predicted'], ro.simulated.runs.map(x => [x.release, x.rules.map(y => y.rule).join(', '), seconds(x.realMs), seconds(x.predictedMs), x.ratio, x.realPeak, x.predictedPeak])), '')
    }
  }

  if (r.footprint != null) {
    const f = r.footprint
    md.push('## Footprint', '', source('footprint'), '',
      table(['figure', 'value'], [
        ['idle daemon RSS (median; its app not included)', `${f.idleRssMB ?? '–'} MB`],
        ['of which its own (USS: not shared with other processes)', `${f.idleUssMB ?? '–'} MB`],
        ['idle daemon RSS with `NODE_OPTIONS=--max-semi-space-size=1`', `${f.idleRssSmallYoungGenMB ?? '–'} MB`],
        ['idle daemon CPU', `${f.idleCpuPercent ?? '–'} % of one CPU (${f.idlePeers} peers, the daemon's default beats, over ${f.idleSeconds} s${f.settleMs == null ? '' : ` after ${f.settleMs / 1000} s to settle`})`],
        ...(f.idleByPeers ?? []).slice(1).map(i => [`idle daemon CPU, ${i.peers} peers`, `${i.cpuPercent ?? '–'} % of one CPU (over ${i.seconds} s; RSS ${i.rssMB ?? '–'} MB)`]),
        ['the demo app\'s process (RSS)', `${f.appRssMB ?? '–'} MB`],
        ['start → control API up', `${f.startToControlMs} ms`],
        ['start → the app answers a request', `${f.startToReadyMs} ms`],
        ['`upgossip --help`', `${f.helpMs} ms`]
      ]), '', FOOTPRINT_NOTES, '')
  }

  if (r.simulation != null) {
    md.push('## Scale by simulation', '', source('simulation'), '',
      'The real schedule engine (`decide`, `claimWins` and the rules of `src/schedule`) against a simulated clock: each peer learns of the release after its gossip distance in a random mesh, stages it a fetch time later, asks the engine once a tick, claims a slot where a rule limits how many switch at once, and sees the others through beats that arrive after a gossip delay. `npm run simulate -- --peers 10000` prints the same table; the model and its limits are in [scripts/README.md](../scripts/README.md).', '',
      table(['policy', 'peers', 'rollout', 'most switching at once', 'slot limit', 'claims backed off', 'engine calls', 'simulated in'], r.simulation.map(x => [x.policy, x.peers, seconds(x.rolloutMs), x.peakConcurrent, x.slotLimit, x.backoffs, x.decisions, seconds(x.wallMs)])), '')
    const big = Math.max(...simulations.map(x => x.peers))
    const shown = simulations.filter(x => x.peers === big)
    if (shown.length > 0) {
      md.push(svg('simulation.svg', lineChart({
        title: `Peers switching at once, ${big} peers`,
        x: 'seconds after publish',
        y: 'peers switching',
        series: shown.map(x => ({ name: x.policy, points: x.timeline.map(p => [p.atMs / 1000, p.switching] as [number, number]) }))
      })), '')
    }
    md.push(`What the policies do at scale: [${ANALYSIS_PAGE}](${ANALYSIS_PAGE}#rollouts-at-scale).`, '')
  }
  await fs.mkdir(svgDir, { recursive: true })
  for (const [plot, content] of plots) await fs.writeFile(plot, content)
  await fs.writeFile(file, md.join('\n').replace(/\n{3,}/g, '\n\n'))
  return [file, ...plots.keys()]
}

const FOOTPRINT_NOTES = 'RSS and USS are read from /proc for the daemon process alone, every second of the idle stretch (the median), since they move with the garbage collector; the app runs in its own process (counted separately). The memory figures are of a network of 3 daemons. CPU is the daemon\'s user + system time over the idle stretch (the median daemon), in a network of the size the table names, left to settle after its start, on the daemon\'s default settings (its status checked every 5 s, beaten when it changed and every 20 s when not, longer in networks of more than 10 peers). `node scripts/idle.ts --peers N` measures N idle daemons alone, with profiles on request.'
