/**
 * The swarm against @helia/bitswap (issue 19: an honest look at the IPFS block protocol):
 * after each swarm run, N processes (bitswap-peer-process.ts) each run a libp2p node with
 * the daemons' transports and @helia/bitswap over a blockstore on disk. The first imports
 * the package blocks of the same release bundle; the others, told the package root, fetch
 * the whole DAG, check every block against its hash and write it to disk. Measured: the
 * fetch command to the last process done, the CPU of all N processes (/proc), and the bytes
 * on their connections. The result goes in `swarm.alternatives[]`, never `swarm.runs[]`.
 *
 * @example
 * ```ts
 * const alt = await bitswapRun({ bundleFile, packageBytes, peers: 10, dir, progress })
 * // → { protocol: '@helia/bitswap 2.2.0', peers: 10, sizeMiB: 4.01, seconds: 3.2, cpuSeconds: 9.1, … }
 * ```
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { seededRandom } from '../prng.ts'
import { cpuSeconds } from './footprint.ts'
import type { Progress } from './network.ts'
import { mib, ratio, round } from './stats.ts'
import type { SwarmRun } from './swarm.ts'

const PEER = fileURLToPath(new URL('bitswap-peer-process.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const MiB = 1048576

/** The longest a fetch may take (the daemons' swarm has 600 s). */
const FETCH_TIMEOUT_MS = 600_000

/** How many earlier processes each one dials, as a daemon keeps `minConnections` (3 in the bench's networks). */
export const DIALS_PER_PEER = 3

/** The protocol and version compared, as the result names it: `@helia/bitswap 2.2.0`. */
export function bitswapProtocol (): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', '@helia', 'bitswap', 'package.json'), 'utf8')) as { version: string }
  return `@helia/bitswap ${pkg.version}`
}

/** One comparison run of another block protocol on the network and package of a swarm run. */
export interface AlternativeRun {
  /** The protocol and its version, e.g. `@helia/bitswap 2.2.0`. */
  protocol: string
  peers: number
  /** The package (every block of its DAG), in MiB; `packageBytes` exactly. */
  sizeMiB: number
  packageBytes: number
  /** Blocks of the package DAG each fetcher fetched. */
  blocks: number
  /** Helia's defaults, or what the run changed (`BENCH_BITSWAP_RECEIVE_TIMEOUT_MS`). Absent in runs made before it was kept. */
  settings?: string
  /** How the processes were connected, in words, and the connections the publisher had. */
  topology: string
  publisherConnections: number
  /**
   * Times a fetcher got no block for 10 s and sent its whole want-list again to every
   * connected peer (bitswap 2.2.0 drops a message it failed to write and has no rebroadcast).
   */
  stalls: number
  /**
   * Times a fetcher's `notify` (sending a block it just stored to the peers that want it)
   * failed: in Helia that rejects the `blockstore.get` that fetched the block; here the
   * fetch goes on. Absent in runs made before it was counted.
   */
  failedSends?: number
  /** Fetchers that gave up, holding part of the package (no block for 70 s in spite of rescues); `seconds` is then the last finished one's time. Absent in runs made before it was counted. */
  unfinished?: number
  /** Why fetchers failed, where bitswap's fetch threw rather than gave up (each such fetcher is also `unfinished`). Absent when none did. */
  fetchErrors?: string[]
  /** The fetch command until the last fetcher held every block (checked, on disk). */
  seconds: number
  /** CPU of every process (the publisher's too) over that time, from /proc. */
  cpuSeconds: number
  /** Bytes the fetchers held at the end: (N − 1) × package when every one finished. Absent in runs made before it was kept. */
  deliveredBytes?: number
  /** cpuSeconds ÷ MiB delivered (`deliveredBytes`). */
  cpuPerMiB: number | null
  /** Bytes the publisher's connections carried out ÷ package (framing and want-lists included). */
  publisherEgressRatio: number | null
  /** Bytes every fetcher's connections carried in ÷ ((N − 1) × package): above 1, duplicates and overhead. */
  duplicateRatio: number | null
  /** Against our swarm's run of the same N and package, and the HTTPS origin's: time, and CPU per MiB delivered. */
  timeVsSwarm: number | null
  cpuVsSwarm: number | null
  timeVsHttps: number | null
  cpuVsHttps: number | null
}

/** What a peer process prints. */
interface PeerMessage {
  addr?: string
  peerId?: string
  root?: string
  blocks?: number
  ready?: boolean
  done?: boolean
  bytes?: number
  endAt?: number
  stalls?: number
  failedSends?: number
  stalled?: boolean
  /** The fetch threw (the fetcher holds part of the package). */
  failed?: string
  error?: string
  counters?: { bytesIn: number, bytesOut: number, connections: number }
}

/** A peer process and its messages, each awaited by the key it must carry. */
class PeerProcess {
  readonly child: ChildProcess
  private readonly backlog: PeerMessage[] = []
  private readonly waiting: Array<{ key: keyof PeerMessage, resolve: (m: PeerMessage) => void, reject: (err: Error) => void }> = []
  private exited: Error | null = null

  constructor (args: string[]) {
    this.child = spawn(process.execPath, [PEER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', line => {
      const message = JSON.parse(line) as PeerMessage
      const i = this.waiting.findIndex(w => message[w.key] != null || message.error != null)
      if (i < 0) this.backlog.push(message)
      else this.waiting.splice(i, 1)[0]?.resolve(message)
    })
    this.child.once('exit', code => {
      this.exited = new Error(`a bitswap peer exited with ${String(code)}`)
      for (const w of this.waiting.splice(0)) w.reject(this.exited)
    })
  }

  get pid (): number { return this.child.pid as number }

  /** The next message that carries `key` (or an error), within `timeoutMs`. */
  async next (key: keyof PeerMessage, timeoutMs = 120_000): Promise<PeerMessage> {
    const i = this.backlog.findIndex(m => m[key] != null || m.error != null)
    let timer: NodeJS.Timeout | undefined
    const message = i < 0
      ? await new Promise<PeerMessage>((resolve, reject) => {
        if (this.exited != null) return reject(this.exited)
        const waiter = { key, resolve, reject }
        this.waiting.push(waiter)
        timer = setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1)
          reject(new Error(`a bitswap peer sent no "${key}" within ${timeoutMs / 1000} s`))
        }, timeoutMs)
      }).finally(() => { clearTimeout(timer) })
      : this.backlog.splice(i, 1)[0] as PeerMessage
    if (message.error != null) throw new Error(`a bitswap peer failed: ${message.error}`)
    return message
  }

  send (command: Record<string, unknown>): void {
    this.child.stdin?.write(JSON.stringify(command) + '\n')
  }

  async stop (): Promise<void> {
    if (this.child.exitCode != null) return
    const exited = new Promise(resolve => this.child.once('exit', resolve))
    this.child.stdin?.end()
    const timer = setTimeout(() => { this.child.kill() }, 10_000)
    await exited
    clearTimeout(timer)
  }
}

/**
 * Who dials whom: process i dials `dialsPerPeer` distinct earlier ones at random (all of
 * them while there are fewer), as a daemon bootstraps from one and keeps a minimum of
 * connections; seeded, so every run has the same graph.
 */
export function dialPlan (peers: number, dialsPerPeer = DIALS_PER_PEER, seed = 19): number[][] {
  const random = seededRandom(seed)
  return Array.from({ length: peers }, (_, i) => {
    const earlier = Array.from({ length: i }, (_, k) => k)
    for (let k = earlier.length - 1; k > 0; k--) {
      const j = Math.floor(random() * (k + 1))
      const t = earlier[k] as number
      earlier[k] = earlier[j] as number
      earlier[j] = t
    }
    return earlier.slice(0, dialsPerPeer).sort((a, b) => a - b)
  })
}

/** Run @helia/bitswap on `peers` processes for the package of `bundleFile`. */
export async function bitswapRun (opts: { bundleFile: string, packageBytes: number, peers: number, dir: string, progress: Progress }): Promise<Omit<AlternativeRun, 'timeVsSwarm' | 'cpuVsSwarm' | 'timeVsHttps' | 'cpuVsHttps'>> {
  const protocol = bitswapProtocol()
  fs.rmSync(opts.dir, { recursive: true, force: true })
  fs.mkdirSync(opts.dir, { recursive: true })
  const procs: PeerProcess[] = []
  try {
    for (let i = 0; i < opts.peers; i++) procs.push(new PeerProcess(i === 0 ? [path.join(opts.dir, 'p0'), opts.bundleFile] : [path.join(opts.dir, `p${i}`)]))
    const started = await Promise.all(procs.map(async p => await p.next('addr')))
    const root = started[0]?.root
    if (root == null) throw new Error('the bitswap publisher named no package root')
    const addrOf = (i: number): string => {
      const s = started[i] as PeerMessage
      const addr = s.addr ?? ''
      return addr.includes('/p2p/') ? addr : `${addr}/p2p/${s.peerId ?? ''}`
    }
    const plan = dialPlan(opts.peers)
    const degree = plan.map((dials, i) => dials.length + plan.filter(d => d.includes(i)).length)
    procs.forEach((p, i) => { p.send({ dial: (plan[i] as number[]).map(addrOf), peers: degree[i] }) })
    await Promise.all(procs.map(async p => await p.next('ready')))

    const counters = async (): Promise<Array<NonNullable<PeerMessage['counters']>>> => await Promise.all(procs.map(async p => {
      p.send({ counters: true })
      return (await p.next('counters')).counters as NonNullable<PeerMessage['counters']>
    }))
    const cpu = (): number => procs.reduce((sum, p) => sum + (cpuSeconds(p.pid) ?? 0), 0)
    const before = await counters()
    const cpuBefore = cpu()
    const goAt = Date.now()
    const fetchers = procs.slice(1)
    for (const p of fetchers) p.send({ fetch: root })
    const done = await Promise.all(fetchers.map(async p => await p.next('done', FETCH_TIMEOUT_MS)))
    const cpuUsed = cpu() - cpuBefore
    const after = await counters()
    // a fetcher that gave up (no block for 70 s in spite of rescues) or whose fetch threw is counted, not fatal: it is the finding
    const fetchErrors = done.flatMap(d => d.failed == null ? [] : [d.failed])
    const finished = done.filter(d => d.done === true)
    if (finished.length === 0) throw new Error(`no bitswap fetcher finished: they hold ${done.map(d => d.bytes).join(', ')} bytes of a ${opts.packageBytes}-byte package`)
    const wrong = finished.find(d => d.bytes !== opts.packageBytes)
    if (wrong != null) throw new Error(`a bitswap fetcher finished with ${wrong.bytes ?? 0} bytes of a ${opts.packageBytes}-byte package`)
    const delivered = (opts.peers - 1) * opts.packageBytes
    const held = done.reduce((sum, d) => sum + (d.bytes ?? 0), 0)
    const received = after.slice(1).reduce((sum, c, i) => sum + c.bytesIn - (before[i + 1]?.bytesIn ?? 0), 0)
    const seconds = (Math.max(...finished.map(d => d.endAt ?? goAt)) - goAt) / 1000
    const run = {
      protocol,
      peers: opts.peers,
      sizeMiB: round(opts.packageBytes / MiB, 2),
      packageBytes: opts.packageBytes,
      blocks: finished[0]?.blocks ?? 0,
      unfinished: done.length - finished.length,
      ...(fetchErrors.length > 0 ? { fetchErrors } : {}),
      settings: process.env.BENCH_BITSWAP_RECEIVE_TIMEOUT_MS == null ? 'defaults' : `messageReceiveTimeout ${process.env.BENCH_BITSWAP_RECEIVE_TIMEOUT_MS} ms`,
      topology: `each process dialled ${DIALS_PER_PEER} earlier ones at random (all while fewer): ${plan.flat().length} connections`,
      publisherConnections: degree[0] ?? 0,
      stalls: done.reduce((sum, d) => sum + (d.stalls ?? 0), 0),
      failedSends: done.reduce((sum, d) => sum + (d.failedSends ?? 0), 0),
      seconds: round(seconds, 2),
      cpuSeconds: round(cpuUsed, 2),
      deliveredBytes: held,
      cpuPerMiB: ratio(cpuUsed, held / MiB, 4),
      publisherEgressRatio: ratio((after[0]?.bytesOut ?? 0) - (before[0]?.bytesOut ?? 0), opts.packageBytes),
      duplicateRatio: ratio(received, delivered)
    }
    opts.progress(`    ${protocol}: ${run.seconds} s, ${run.cpuSeconds} CPU-s (${run.cpuPerMiB ?? '–'} per MiB delivered); publisher sent ${run.publisherEgressRatio ?? '–'}× the package (${run.publisherConnections} connections), ${run.unfinished === 0 ? 'every fetcher finished' : `${run.unfinished} fetchers did not finish${fetchErrors.length > 0 ? ` (${fetchErrors.length} failed: ${[...new Set(fetchErrors)].join('; ')})` : ''}`}, fetchers received ${run.duplicateRatio ?? '–'}× (N−1) packages; ${run.blocks} blocks of ${mib(opts.packageBytes)}; ${run.stalls} stalls rescued, ${run.failedSends} failed sends`)
    return run
  } finally {
    await Promise.all(procs.map(async p => { await p.stop() }))
    fs.rmSync(opts.dir, { recursive: true, force: true })
  }
}

/** An alternative's run against our swarm's run of the same N and package (and that run's HTTPS origin). */
export function againstSwarm (alt: Omit<AlternativeRun, 'timeVsSwarm' | 'cpuVsSwarm' | 'timeVsHttps' | 'cpuVsHttps'>, swarm: SwarmRun): AlternativeRun {
  // CPU per byte delivered: a run in which fetchers gave up delivered less than the swarm
  const wanted = (swarm.peers - 1) * swarm.packageBytes
  const delivered = alt.deliveredBytes ?? wanted
  return {
    ...alt,
    // a run in which some fetchers gave up has no time to compare
    timeVsSwarm: (alt.unfinished ?? 0) > 0 ? null : ratio(alt.seconds * 1000, swarm.swarmMs),
    cpuVsSwarm: ratio(alt.cpuSeconds / delivered, swarm.swarmCpuMs / 1000 / wanted),
    timeVsHttps: (alt.unfinished ?? 0) > 0 ? null : ratio(alt.seconds * 1000, swarm.httpsMs),
    cpuVsHttps: ratio(alt.cpuSeconds / delivered, swarm.httpsCpuMs / 1000 / wanted)
  }
}

/** The report's table "Against @helia/bitswap": its head and a row per alternative run. */
export function alternativesTable (alternatives: AlternativeRun[], runs: SwarmRun[]): { head: string[], rows: Array<Array<string | number | null>> } {
  const perMiB = (cpuMs: number, x: { peers: number, packageBytes: number }): string => (cpuMs / 1000 / ((x.peers - 1) * x.packageBytes / MiB)).toFixed(3)
  return {
    head: ['peers', 'package', 'protocol', 'time', 'our swarm', 'HTTPS', 'time ÷ swarm', 'time ÷ HTTPS', 'CPU', 'CPU-s per MiB delivered: bitswap, swarm, HTTPS', 'per MiB ÷ swarm', 'per MiB ÷ HTTPS', 'publisher sent ÷ package', 'received ÷ (N−1) × package', 'stalls'],
    rows: alternatives.map(a => {
      const s = runs.find(x => x.peers === a.peers && x.packageBytes === a.packageBytes)
      return [a.peers, mib(a.packageBytes), a.protocol, (a.unfinished ?? 0) > 0 ? `did not finish: ${a.peers - 1 - (a.unfinished ?? 0)} of ${a.peers - 1} fetchers in ${a.seconds.toFixed(2)} s` : `${a.seconds.toFixed(2)} s`, s == null ? null : `${(s.swarmMs / 1000).toFixed(2)} s`, s == null ? null : `${(s.httpsMs / 1000).toFixed(2)} s`, a.timeVsSwarm, a.timeVsHttps, `${a.cpuSeconds.toFixed(1)} s`, `${a.cpuPerMiB ?? '–'}, ${s == null ? '–' : perMiB(s.swarmCpuMs, s)}, ${s == null ? '–' : perMiB(s.httpsCpuMs, s)}`, a.cpuVsSwarm, a.cpuVsHttps, a.publisherEgressRatio, a.duplicateRatio, a.stalls]
    })
  }
}
