/**
 * `npm run bench` — upgossip's benchmarks, every figure from real daemon processes on
 * loopback: swarm against an HTTPS origin, announcement latency, shim overhead, process
 * apps through the proxy, rollout disruption, footprint. Progress goes to stderr; `--json` prints one JSON object on
 * stdout. A full run writes docs/benchmarks.md (tables and SVG plots) and
 * docs/benchmarks/run.json; a written run of some sections merges into the saved
 * run.json (scripts/bench/saved-run.ts). It writes nothing else (the analysis of the
 * figures is docs/benchmarks-analysis.md, written by hand).
 *
 * @example
 * ```sh
 * npm run bench -- --quick --json > quick.json
 * npm run bench                      # full: N = 10, 25, 50; 1, 16, 64 MiB; shaped runs; writes the report
 * npm run bench -- --only shim,footprint --quick
 * npm run bench -- --only process --write       # the process figures replace the saved ones; the rest are kept
 * npm run bench -- --quick --only swarm --uplink 40 --shaped-runs 5x4   # root: per-host uplinks
 * ```
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { announce } from './bench/announce.ts'
import type { AnnounceResult } from './bench/announce.ts'
import { makeCertificate } from './bench/certificate.ts'
import { footprint, idleOf } from './bench/footprint.ts'
import { MODES, SECTIONS, swarmSizes } from './bench/modes.ts'
import type { BenchMode, Section } from './bench/modes.ts'
import { againstSwarm, bitswapProtocol, bitswapRun } from './bench/bitswap.ts'
import type { AlternativeRun } from './bench/bitswap.ts'
import { BenchNetwork } from './bench/network.ts'
import type { BenchRelease } from './bench/network.ts'
import { processApps, withTcp } from './bench/process.ts'
import { tcpThroughput } from './bench/process-tcp.ts'
import { writeReport } from './bench/report.ts'
import { SavedRunError, mergeRuns, parseRun, readSavedRun } from './bench/saved-run.ts'
import { swarmResult, targets } from './bench/result.ts'
import type { BenchResult, SwarmResult } from './bench/result.ts'
import { rolloutDisruption } from './bench/rollout.ts'
import { shimOverhead } from './bench/shim.ts'
import { deltaRun, swarmRuns } from './bench/swarm.ts'
import type { DeltaRun, SwarmRun } from './bench/swarm.ts'
import type { Certificate } from './bench/certificate.ts'
import { LoopbackUplinks, ORIGIN_ADDRESS, daemonAddress, parseShapedRuns, parseUplink, uplinkUnavailable } from './bench/uplink.ts'
import { compareWithTestnet } from './sim/compare.ts'
import { simulatePolicies } from './sim/policies.ts'
import type { PolicyRun } from './sim/policies.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEFAULT_OUT = path.join(ROOT, 'docs', 'benchmarks.md')

const HELP = `usage: npm run bench -- [--quick | --full] [--json] [--only SECTION,…] [--write | --no-write | --replace] [--out FILE] [--keep] [--profile DIR] [--verbose] [--note TEXT] [--peers N,…] [--sizes MiB,…] [--no-delta] [--no-alternatives] [--uplink MBIT] [--shaped-runs NxMiB,…]
       npm run bench -- --report RESULT.json [--out FILE]

Benchmarks on real daemon processes on loopback (see scripts/README.md):
  swarm      publish → every peer holds the package, against an HTTPS origin; publisher
             egress, duplicate block bytes; a release that changes one small file; with
             --uplink, the same again with every host's uplink shaped (root and tc)
  announce   publish → every peer admitted the release, against a plain 1 KiB gossip message
  shim       null and 1 MiB requests, same version vs one and two SO hops
  process    an HTTP process app's null request through the proxy and the peer's daemon
             vs the same request between the app ports; one SO hop vs none; a TCP
             app's stream throughput through the tunnel vs a bare libp2p stream
  rollout    failed requests and p99 while N peers upgrade (rolling, then canary), and
             the simulator's prediction of the same rollouts
  footprint  idle daemon RSS and CPU, start-to-ready, upgossip --help
  simulation rolling and canary policies at 1 000 (and, full, 10 000) simulated peers

  --quick        a few minutes: N = 10, a 4 MiB package (default: full, N = 10 and 25 at
                 1, 16, 64 MiB, N = 50 at 1, 16 MiB; shaped runs 10x16,25x16 at 20 Mbit/s)
  --json         print one JSON object on stdout (progress stays on stderr)
  --only LIST    run only these sections
  --write        write docs/benchmarks.md and docs/benchmarks/run.json (a full run does by
                 default); a run of some sections (--only) merges into the saved run.json:
                 the sections it ran replace the saved ones, every other keeps its figures,
                 and the report says which run (command, mode, commit, date) made each
  --replace      write the report and run.json from this run alone, sections it did not
                 run left out (implies --write)
  --no-write     do not write them
  --out FILE     write the report there instead of docs/benchmarks.md, merging into the
                 benchmarks/run.json beside it (without one, this run alone is written)
  --keep         keep the daemons' directories (under the system temp dir)
  --profile DIR  run the swarm's publisher and four other daemons, the shim
                 section's four (and their apps), and the process section's
                 three, with node --cpu-prof, profiles in DIR
                 (summarise with: node scripts/profile-summary.ts DIR/*.cpuprofile)
  --verbose      also show the testnet's live lines during the rollout
  --note TEXT    a line about the conditions of the run, kept in the JSON and the report
  --peers LIST   the swarm's network sizes instead of the mode's (e.g. 10,25)
  --sizes LIST   the swarm's package sizes in MiB instead of the mode's (e.g. 1,16), at
                 every network size
  --no-delta     skip the swarm's release that changes one small file
  --no-alternatives  skip the comparison runs beside each swarm run (@helia/bitswap on as
                 many processes, the same package: swarm.alternatives in the JSON)
  --uplink MBIT  shaped runs: every host (each daemon, the HTTPS origin) gets its own
                 loopback address and an uplink of MBIT Mbit/s, shaped by tc on lo (needs
                 root; lo must have no qdisc of its own); full mode: 20. Without
                 --shaped-runs in quick or tiny mode, the shaped runs are the mode's swarm
  --shaped-runs LIST  the shaped runs, each on a network of its own: PEERSxMiB,… (e.g.
                 10x16,50x16), or none
  --report FILE  run nothing: write the report again from a run's
                 JSON (what --json printed; a written report keeps it, merged, in
                 docs/benchmarks/run.json), e.g. after editing the report's text`

/** Daemons of a swarm network that `--profile` profiles (the first is the publisher). */
const PROFILED_DAEMONS = 5

interface Options {
  mode: BenchMode
  json: boolean
  only: Set<Section>
  write: boolean
  /** Write this run's report alone instead of merging it into the saved run.json. */
  replace: boolean
  out: string
  keep: boolean
  profile?: string
  verbose: boolean
  note?: string
  /** Re-render the report from this result JSON instead of running. */
  report?: string
  /** Run the swarm's delta release (`--no-delta` skips it). */
  delta: boolean
  /** Run @helia/bitswap beside each swarm run (`--no-alternatives` skips it). */
  alternatives: boolean
  /** The command line, for the report. */
  command: string
  /** --uplink or --shaped-runs was given: a machine that cannot shape is a usage error, not a note in the result. */
  shapingAsked: boolean
  /** Why this machine cannot shape uplinks (checked before anything runs): the shaped runs are left out, and the reason is in `errors`. */
  cannotShape?: string
}

/** Parse the command line; exits 2 on a usage error, like the CLI. */
export function parseArgs (argv: string[]): Options {
  const fail = (message: string): never => {
    process.stderr.write(`bench: ${message}\n${HELP}\n`)
    process.exit(2)
  }
  let mode: BenchMode = MODES.full
  let json = false
  let only = new Set<Section>(SECTIONS)
  let write: boolean | undefined
  let replace = false
  let out = DEFAULT_OUT
  let keep = false
  let profile: string | undefined
  let verbose = false
  let note: string | undefined
  let report: string | undefined
  let peers: number[] | undefined
  let sizes: number[] | undefined
  let delta = true
  let alternatives = true
  let uplink: number | undefined
  let shaped: Array<{ peers: number, size: number }> | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    const value = (): string => argv[++i] ?? fail(`${a} needs a value`)
    switch (a) {
      case '--quick': mode = MODES.quick; break
      case '--full': mode = MODES.full; break
      case '--tiny': mode = MODES.tiny; break
      case '--json': json = true; break
      case '--only': {
        const names = value().split(',').filter(Boolean)
        const unknown = names.filter(n => !(SECTIONS as readonly string[]).includes(n))
        if (unknown.length > 0) fail(`unknown section ${unknown.join(', ')} (sections: ${SECTIONS.join(', ')})`)
        only = new Set(names as Section[])
        break
      }
      case '--write': write = true; break
      case '--no-write': write = false; break
      case '--replace': replace = true; break
      case '--out': out = path.resolve(value()); break
      case '--keep': keep = true; break
      case '--no-delta': delta = false; break
      case '--no-alternatives': alternatives = false; break
      case '--profile': profile = path.resolve(value()); break
      case '--verbose': verbose = true; break
      case '--note': note = value(); break
      case '--report': report = path.resolve(value()); break
      case '--peers': {
        const sizes = value().split(',').map(Number)
        if (sizes.some(n => !Number.isInteger(n) || n < 2 || n > 200)) fail('--peers: network sizes from 2 to 200, separated by commas')
        peers = sizes
        break
      }
      case '--sizes': {
        const mib = value().split(',').map(Number)
        if (mib.some(n => !Number.isFinite(n) || n <= 0 || n > 1024)) fail('--sizes: package sizes in MiB, above 0 and at most 1024, separated by commas')
        sizes = mib.map(n => Math.round(n * 1024 * 1024))
        break
      }
      case '--uplink': {
        try { uplink = parseUplink(value()) } catch (err) { fail((err as Error).message) }
        break
      }
      case '--shaped-runs': {
        try { shaped = parseShapedRuns(value()) } catch (err) { fail((err as Error).message) }
        break
      }
      case '--help': case '-h': process.stdout.write(HELP + '\n'); process.exit(0); break
      default: fail(`unknown option ${a}`)
    }
  }
  if (peers != null) mode = { ...mode, swarm: { ...mode.swarm, peers } }
  // sizes given are measured at every network size
  if (sizes != null) mode = { ...mode, swarm: { ...mode.swarm, sizes, sizesByPeers: {} } }
  if (shaped != null && shaped.length > 0 && uplink == null && mode.uplinkMbit == null) fail(`--shaped-runs needs --uplink MBIT in ${mode.name} mode`)
  if (uplink != null) {
    // quick and tiny have no shaped runs of their own: shape the mode's swarm
    const own = mode.shaped.length > 0 ? mode.shaped : mode.swarm.peers.flatMap(n => swarmSizes(mode, n).map(size => ({ peers: n, size })))
    mode = { ...mode, uplinkMbit: uplink, shaped: shaped ?? own }
  } else if (shaped != null) mode = { ...mode, shaped }
  if (replace && write === false) fail('--replace writes the report: it cannot go with --no-write')
  return { mode, json, only, write: write ?? (replace || mode.name === 'full'), replace, out, keep, profile, verbose, note, report, delta, alternatives, command: argv.join(' '), shapingAsked: uplink != null || (shaped != null && shaped.length > 0) }
}

function machine (): BenchResult['machine'] {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadStart: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
    loadEnd: 0
  }
}

function commit (): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== ''
    return dirty ? `${head}+changes` : head
  } catch {
    return null
  }
}

/** Run the benchmarks `o` asks for. */
export async function runBench (o: Options, progress: (line: string) => void, timelines: PolicyRun[] = []): Promise<BenchResult> {
  const started = Date.now()
  const m = o.mode
  const result: BenchResult = {
    benchmark: 'upgossip',
    version: (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    mode: m.name,
    commit: commit(),
    startedAt: new Date(started).toISOString(),
    wallMs: 0,
    machine: machine(),
    note: o.note ?? null,
    command: o.command,
    sections: SECTIONS.filter(x => o.only.has(x)),
    swarm: null,
    announce: null,
    shim: null,
    rollout: null,
    footprint: null,
    simulation: null,
    process: null,
    targets: [],
    errors: {},
    earlierRuns: []
  }
  const failed = (section: Section | 'swarm.shaped' | 'swarm.alternatives' | 'process.tcp', err: unknown): void => {
    const message = (err as Error)?.stack ?? String(err)
    result.errors[section] = (err as Error)?.message ?? String(err)
    progress(`${section} failed: ${message}`)
  }

  // swarm and announce share their networks: N daemons are started once for both
  if (o.only.has('swarm') || o.only.has('announce')) {
    const runs: SwarmRun[] = []
    const idle: SwarmResult['idle'] = []
    const alternatives: AlternativeRun[] = []
    // beside each swarm run, @helia/bitswap on as many processes with the same package; a failure costs only its row
    const alternative = !o.alternatives
      ? undefined
      : async (run: SwarmRun, release: BenchRelease, dir: string): Promise<void> => {
        progress(`  ${bitswapProtocol()}: ${run.peers} processes, the same package…`)
        try {
          alternatives.push(againstSwarm(await bitswapRun({ bundleFile: release.file, packageBytes: release.size, peers: run.peers, dir, progress }), run))
        } catch (err) { failed('swarm.alternatives', err) }
      }
    let delta: DeltaRun | null = null
    const announced: AnnounceResult[] = []
    const cert = await makeCertificate()
    // profiling fifty daemons at once starves the machine: the publisher and four others stand for the rest
    const env = (i: number): Record<string, string> => o.profile == null || i >= PROFILED_DAEMONS ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${o.profile}` }
    const smallest = Math.min(...m.swarm.peers)
    for (const n of m.swarm.peers) {
      progress(`== swarm and announce: ${n} daemons`)
      const net = await BenchNetwork.create(progress)
      try {
        const install = await net.release({ manifest: {} })
        await net.start(n, install, () => [], env)
        if (o.only.has('swarm')) {
          try {
            idle.push(await idleOf(net, m.name === 'full' ? 15_000 : m.name === 'quick' ? 5000 : 1000))
            runs.push(...await swarmRuns(net, swarmSizes(m, n), cert, progress, 1, { alternative }))
            // the one-file change is measured on the smallest network (the bytes per peer do not
            // depend on N, the time it takes at N = 50 does), on the largest package it carries
            if (n === smallest && o.delta) delta = await deltaRun(net, Math.min(m.swarm.deltaSize, Math.max(...swarmSizes(m, n))), progress, 50)
          } catch (err) { failed('swarm', err) }
        }
        if (o.only.has('announce')) {
          try {
            announced.push(await announce(net, m.announce.probes, progress))
          } catch (err) { failed('announce', err) }
        }
      } catch (err) {
        failed(o.only.has('swarm') ? 'swarm' : 'announce', err)
      } finally {
        await net.close(o.keep)
      }
    }
    if (o.only.has('swarm')) {
      result.swarm = swarmResult(runs, delta, idle, cert.how)
      if (o.alternatives) result.swarm.alternatives = alternatives
      if (m.shaped.length > 0 && m.uplinkMbit != null && o.cannotShape != null) {
        result.swarm.shaped = null
        result.errors['swarm.shaped'] = o.cannotShape
      } else if (m.shaped.length > 0 && m.uplinkMbit != null) {
        try {
          result.swarm.shaped = await shapedSwarm(m.shaped, m.uplinkMbit, cert, env, progress, o.keep)
        } catch (err) { failed('swarm.shaped', err) }
      }
    }
    const top = announced.at(-1)
    if (o.only.has('announce') && top != null) result.announce = { ...top, byPeers: announced.map(a => ({ peers: a.peers, ratio: a.ratio, releaseMs: a.releaseMs, plainMs: a.plainMs })) }
  }
  if (o.only.has('shim')) {
    progress('== shim overhead')
    try {
      result.shim = await shimOverhead(m.shim, progress, o.keep, o.profile == null ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${o.profile}` })
    } catch (err) { failed('shim', err) }
  }
  if (o.only.has('process')) {
    progress('== process apps (wire "http")')
    const env = (): Record<string, string> => o.profile == null ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${o.profile}` }
    try {
      result.process = await processApps(m.process, progress, o.keep, env)
    } catch (err) { failed('process', err) }
    if (result.process != null) {
      progress('== process apps (wire "tcp")')
      try {
        result.process = withTcp(result.process, await tcpThroughput({ bytes: m.process.tcpBytes, rounds: m.process.tcpRounds }, progress, o.keep, env))
      } catch (err) {
        failed('process.tcp', err)
        result.process.tcpThroughputNote = 'the TCP measurement failed (errors["process.tcp"])'
      }
    }
  }
  if (o.only.has('rollout')) {
    progress('== rollout disruption')
    try {
      const rollout = await rolloutDisruption(m.rollout, progress, o.verbose)
      result.rollout = { ...rollout, simulated: await compareWithTestnet(rollout) }
    } catch (err) { failed('rollout', err) }
  }
  if (o.only.has('footprint')) {
    progress('== footprint')
    try {
      result.footprint = await footprint(m.footprint, progress)
    } catch (err) { failed('footprint', err) }
  }
  if (o.only.has('simulation')) {
    progress('== simulation at scale')
    try {
      const runs = await simulatePolicies(m.simulation.peers, {}, progress)
      timelines.push(...runs)
      result.simulation = runs.map(({ timeline, ...rest }) => rest)
    } catch (err) { failed('simulation', err) }
  }
  result.targets = targets(result)
  result.machine.loadEnd = Math.round((os.loadavg()[0] ?? 0) * 100) / 100
  result.wallMs = Date.now() - started
  return result
}

/**
 * The shaped runs: every host gets its own loopback address — daemon i 127.0.0.(10 + i)
 * for listening and dialling, the HTTPS origin {@link ORIGIN_ADDRESS} — and an uplink of
 * `mbit` Mbit/s on lo, set up once for every run and removed at the end, also on failure.
 */
async function shapedSwarm (specs: Array<{ peers: number, size: number }>, mbit: number, cert: Certificate, env: (i: number) => Record<string, string>, progress: (line: string) => void, keep: boolean): Promise<NonNullable<SwarmResult['shaped']>> {
  const most = Math.max(...specs.map(x => x.peers))
  const addresses = [ORIGIN_ADDRESS, ...Array.from({ length: most }, (_, i) => daemonAddress(i))]
  progress(`== swarm at a per-host uplink of ${mbit} Mbit/s (tc on lo, ${addresses.length} addresses)`)
  const uplinks = LoopbackUplinks.install({ mbit, addresses })
  try {
    // about 4 s at the rate, at most 20 MB
    const measuredMbit = await uplinks.measure(ORIGIN_ADDRESS, daemonAddress(0), Math.min(20_000_000, Math.round(mbit * 1e6 / 8 * 4)))
    progress(`  measured ${measuredMbit} Mbit/s from one shaped address to another (set: ${mbit})`)
    // the check that the shaping gives the rate set; a machine too busy to reach it makes the times below slower than that uplink would
    if (measuredMbit < 0.5 * mbit || measuredMbit > 1.1 * mbit) progress(`  warning: the measured rate is not the ${mbit} Mbit/s set; the shaped runs' times are not those of that uplink`)
    const atSetup = uplinks.carried()
    const runs: SwarmRun[] = []
    for (const spec of specs) {
      progress(`== shaped swarm: ${spec.peers} daemons`)
      const net = await BenchNetwork.create(progress, undefined, undefined, { addressOf: daemonAddress })
      try {
        const install = await net.release({ manifest: {} })
        await net.start(spec.peers, install, () => [], env)
        runs.push(...await swarmRuns(net, [spec.size], cert, progress, 1, { originHost: ORIGIN_ADDRESS }))
      } finally {
        await net.close(keep)
      }
    }
    const carried = uplinks.carried()
    return { uplinkMbit: mbit, measuredMbit, runs, carriedBytes: Object.fromEntries(addresses.map(a => [a, (carried[a] ?? 0) - (atSetup[a] ?? 0)])) }
  } finally {
    uplinks.remove()
  }
}

/** The targets for people. */
export function summaryText (r: BenchResult): string {
  const lines = [`upgossip bench (${r.mode}), ${(r.wallMs / 1000).toFixed(0)} s, load ${r.machine.loadStart} → ${r.machine.loadEnd} on ${r.machine.cpus} CPUs`]
  for (const t of r.targets) lines.push(`  ${t.met == null ? '-' : t.met ? '✓' : '✗'} ${t.name}: ${t.value ?? 'not measured'} (target ${t.target}${t.applies === 'every mode' ? '' : `, ${t.applies}`})`)
  for (const [section, error] of Object.entries(r.errors)) lines.push(`  ! ${section} failed: ${error}`)
  return lines.join('\n')
}

/**
 * The simulation's timelines for the plot of `result`: those of this run when it ran the
 * simulation, else simulated again (it is seeded: the same figures).
 */
async function simulationTimelines (result: BenchResult, ran: PolicyRun[]): Promise<PolicyRun[]> {
  if (ran.length > 0 || result.simulation == null) return ran
  const sizes = [...new Set(result.simulation.map(x => x.peers))]
  return sizes.length === 0 ? [] : await simulatePolicies(sizes, {})
}

/** The report from a saved result (merged or not); nothing is run, run.json is not written. */
async function rerender (o: Options & { report: string }, progress: (line: string) => void): Promise<void> {
  const result = parseRun(fs.readFileSync(o.report, 'utf8'), o.report)
  const written = await writeReport(result, o.out, await simulationTimelines(result, []))
  progress(`wrote ${written.join(', ')} from ${o.report}`)
}

/** Where the run's JSON is kept: beside the report, in benchmarks/run.json. */
function savedRunFile (report: string): string {
  return path.join(path.dirname(report), 'benchmarks', 'run.json')
}

/**
 * The saved run a partial `--write` merges into, read before anything runs so that a
 * file it cannot merge into stops the bench at once (exit 2) rather than after an hour;
 * null when there is nothing to merge (every section runs, `--replace`, or no saved run).
 */
function savedRunToMerge (o: Options): BenchResult | null {
  if (!o.write || o.replace || SECTIONS.every(s => o.only.has(s))) return null
  return readSavedRun(savedRunFile(o.out))
}

/** When the sections of a merged result were measured, for progress: one line per earlier run. */
function keptText (r: BenchResult): string[] {
  return r.earlierRuns.map(x => `  kept from the ${x.mode} run of ${x.startedAt.slice(0, 16).replace('T', ' ')} UTC${x.commit == null ? '' : ` (${x.commit})`}: ${x.sections.join(', ')}`)
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const parsed = parseArgs(process.argv.slice(2))
  const progress = (line: string): void => { process.stderr.write(line + '\n') }
  // a saved run that cannot be read is refused like a bad option: exit 2, with the reason
  const orRefuse = async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step()
    } catch (err) {
      if (!(err instanceof SavedRunError)) throw err
      progress(`bench: ${err.message}`)
      process.exit(2)
    }
  }
  if (parsed.report != null) {
    const report = parsed.report
    await orRefuse(async () => { await rerender({ ...parsed, report }, progress) })
    process.exit(0)
  }
  const saved = await orRefuse(async () => savedRunToMerge(parsed))
  progress(`upgossip bench: ${parsed.mode.name} mode, sections ${[...parsed.only].join(', ')}`)
  if (saved != null) progress(`  the report: merged into ${savedRunFile(parsed.out)}, which keeps ${SECTIONS.filter(s => !parsed.only.has(s)).join(', ')}`)
  const shaping = parsed.only.has('swarm') && parsed.mode.shaped.length > 0 && parsed.mode.uplinkMbit != null
  const cannotShape = shaping ? uplinkUnavailable() : undefined
  const o: Options = { ...parsed, cannotShape }
  if (cannotShape != null && parsed.shapingAsked) {
    progress(`bench: ${cannotShape}`)
    process.exit(2)
  }
  // a full run on a machine that cannot shape goes on without the shaped runs, and says why
  if (cannotShape != null) progress(`  no shaped runs: ${cannotShape}`)
  // Ctrl-C or SIGTERM stops the daemons started so far and removes their directories
  const interrupt = (signal: string): void => {
    progress(`\n${signal}: stopping the daemons…`)
    LoopbackUplinks.removeAll()
    void BenchNetwork.closeAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', interrupt)
  process.once('SIGTERM', interrupt)
  const timelines: PolicyRun[] = []
  const result = await runBench(o, progress, timelines)
  if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n')
  else process.stdout.write(summaryText(result) + '\n')
  if (o.json) progress(summaryText(result))
  let unwritten = false
  if (o.write) {
    const file = savedRunFile(o.out)
    try {
      const merged = saved == null ? result : mergeRuns(saved, result)
      const written = await writeReport(merged, o.out, await simulationTimelines(merged, timelines))
      // the figures, kept beside the report (npm run bench -- --report renders them again)
      fs.writeFileSync(file, JSON.stringify(merged, null, 2) + '\n')
      progress(`wrote ${[...written, file].join(', ')}`)
      for (const line of keptText(merged)) progress(line)
    } catch (err) {
      // an hour of figures is not lost to a report that could not be written
      const kept = path.join(os.tmpdir(), `upgossip-bench-${result.startedAt.replace(/[:.]/g, '-')}.json`)
      fs.writeFileSync(kept, JSON.stringify(result, null, 2) + '\n')
      progress(`bench: the report was not written: ${(err as Error).message}\n  this run's JSON is in ${kept}`)
      unwritten = true
    }
  }
  process.exitCode = unwritten || Object.keys(result.errors).length > 0 ? 1 : 0
}
