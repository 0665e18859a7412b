/**
 * Process apps: what the proxy and the shim cost an HTTP app that knows nothing of
 * upgossip. Three daemons run the `procbench` app (scripts/bench/process-app.ts, a tiny
 * Node.js `http` server run as a process app): A and B stay on protocol 1 (a local policy
 * waits for an approval that never comes), C moves to 2, whose past SO passes messages
 * through unchanged. A loop inside A's app makes null requests (GET, an 11-byte answer),
 * one in flight, to four targets in turn, request by request:
 *
 * - `direct`: B's app port on loopback, no upgossip (the baseline);
 * - `sameVersion`: A's proxy → daemon A → libp2p → daemon B → B's app port, and back;
 * - `soHop`: the same to C, served through C's past SO (C speaks protocol 1 through it);
 * - `ownProxy`: A's proxy → daemon A → A's own app port (the proxy and the daemon's HTTP
 *   request to an app, without libp2p: where the time goes).
 *
 * Figures are measured in A's app, so the bench's own HTTP is not in them. Then each path
 * alone: the CPU time of each of the six processes per request (from /proc).
 */
import fsSync from 'node:fs'
import fs from 'node:fs/promises'
import http from 'node:http'
import { peerHost } from '#src/net/index.js'
import type { DaemonProcess } from '#src/testnet/index.js'
import { cpuSeconds } from './footprint.ts'
import { metricSum } from './prometheus.ts'
import { processAppVersion } from './process-app.ts'
import { BenchNetwork, sleep } from './network.ts'
import type { Progress } from './network.ts'
import { ioCalls } from './process-tcp.ts'
import type { ProcessTcpResult } from './process-tcp.ts'
import { quantile, ratio, round, sortedCopy, summarize } from './stats.ts'

/** Latencies of one path, in ms. */
export interface ProcessLatency {
  count: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  meanMs: number
  maxMs: number
}

/** The processes of the section, as CPU is reported for them. */
export type ProcessRole = 'appA' | 'daemonA' | 'daemonB' | 'appB' | 'daemonC' | 'appC'

/** CPU of each process while one path alone was measured. */
export interface ProcessCpu {
  /** Requests made on this path alone while CPU was counted. */
  requests: number
  /** Wall time per request over that stretch (one in flight). */
  wallMsPerRequest: number
  /** CPU ms per request (user + system, from /proc; 10 ms ticks) of each process, and all of them. */
  msPerRequest: Record<ProcessRole | 'total', number>
  /**
   * Read and write system calls per request of each process (`syscr`, `syscw` of
   * /proc/PID/io): each socket write is a wake-up of another process, and the counts do
   * not drift with the machine's load as CPU time does. Null where /proc/PID/io is missing.
   */
  syscallsPerRequest: Record<ProcessRole, { reads: number, writes: number }> | null
}

/** The process section's figures. */
export interface ProcessResult {
  /** Same-version request through the proxies and daemons p50 ÷ the direct request's p50. */
  latencyRatio: number | null
  /** One SO hop p50 ÷ the same-version (untranslated) p50. */
  soHopRatio: number | null
  /** wire "tcp": stream throughput through the tunnel ÷ a bare libp2p stream (median MiB/s of each); null when not measured. */
  tcpThroughputRatio: number | null
  /** Why `tcpThroughputRatio` is null, when it is. */
  tcpThroughputNote: string | null
  /** The app measured: its server and the node that ran it. */
  app: string
  /** Requests measured per path (after the warm-up). */
  requests: number
  /** Requests per path made first and not counted. */
  warmup: number
  direct: ProcessLatency
  sameVersion: ProcessLatency
  soHop: ProcessLatency
  ownProxy: ProcessLatency
  /** CPU per request by process, each path measured alone after the latencies; null where /proc is missing. */
  cpu: Record<PathName, ProcessCpu> | null
  method: string
  /** wire "tcp": the tunnel, a bare libp2p stream and plain loopback TCP (process-tcp.ts); null when not measured. */
  tcp: ProcessTcpResult | null
}

const METHOD = 'a loop inside app A (Node.js http, a keep-alive agent) makes null GETs, one in flight, to four paths in turn request by request: direct = B\'s app port on loopback; sameVersion = A\'s proxy → daemon A → libp2p → daemon B → B\'s app (protocol 1 both sides); soHop = the same to C, which runs protocol 2 and serves protocol 1 through a past SO that passes messages through; ownProxy = A\'s proxy → daemon A → A\'s own app; latency per request measured in the app'

const TCP_NOTE = 'the TCP measurement did not run'

/** Loops the measured requests are split into (progress between them). */
const ROUNDS = 5

/** The paths measured. */
export type PathName = 'direct' | 'sameVersion' | 'soHop' | 'ownProxy'

interface Target { name: PathName, via: 'proxy' | 'direct', url: string }

/** POST JSON to an app's port and read the JSON answer (node:http: a loop may take minutes, past fetch's header timeout). */
async function postJson<T> (port: number, path: string, body: unknown, timeoutMs = 900_000): Promise<T> {
  const bytes = Buffer.from(JSON.stringify(body))
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': String(bytes.byteLength) }, agent: false, timeout: timeoutMs }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        if (res.statusCode !== 200) reject(new Error(`the app answered ${res.statusCode ?? '?'}: ${text.slice(0, 500)}`))
        else resolve(JSON.parse(text) as T)
      })
      res.on('error', reject)
    })
    req.once('timeout', () => { req.destroy(new Error(`the app's loop took longer than ${timeoutMs} ms`)) })
    req.on('error', reject)
    req.end(bytes)
  })
}

/** Latencies summarised, with p90. */
function summary (latencies: number[]): ProcessLatency {
  const s = summarize(latencies)
  return { count: s.count, p50Ms: s.p50Ms, p90Ms: round(quantile(sortedCopy(latencies), 0.9), 3), p99Ms: s.p99Ms, meanMs: s.meanMs, maxMs: s.maxMs }
}

async function appProcess (peer: DaemonProcess): Promise<{ pid: number, port: number }> {
  const proc = (await peer.status()).process
  if (proc == null) throw new Error(`${peer.name} runs no process app`)
  return proc
}

/**
 * Each path alone, `count` requests: the CPU every process used per request. Latencies
 * are measured with the paths in turn (drift spreads over all of them); CPU cannot be
 * told apart that way, so it is counted in a stretch of its own per path.
 */
async function cpuByPath (aPort: number, targets: Target[], count: number, pids: Record<ProcessRole, number | undefined>, progress: Progress): Promise<Record<PathName, ProcessCpu> | null> {
  const roles = Object.keys(pids) as ProcessRole[]
  const now = (): Record<ProcessRole, number | null> => Object.fromEntries(roles.map(r => [r, pids[r] == null ? null : cpuSeconds(pids[r])])) as Record<ProcessRole, number | null>
  if (Object.values(now()).some(v => v == null)) return null
  const out: Partial<Record<PathName, ProcessCpu>> = {}
  const calls = (): Array<{ reads: number, writes: number } | null> => roles.map(r => ioCalls(pids[r]))
  for (const t of targets) {
    const before = now()
    const callsBefore = calls()
    const started = performance.now()
    await postJson(aPort, '/loop', { targets: [t], count })
    const wallMs = performance.now() - started
    const after = now()
    const callsAfter = calls()
    const msPerRequest = Object.fromEntries(roles.map(r => [r, round(((after[r] ?? 0) - (before[r] ?? 0)) * 1000 / count, 3)])) as Record<ProcessRole, number>
    const total = round(roles.reduce((sum, r) => sum + msPerRequest[r], 0), 3)
    const syscalls = callsBefore.some(c => c == null) || callsAfter.some(c => c == null)
      ? null
      : Object.fromEntries(roles.map((r, i) => {
        const [b, a] = [callsBefore[i], callsAfter[i]] as [{ reads: number, writes: number }, { reads: number, writes: number }]
        return [r, { reads: round((a.reads - b.reads) / count, 2), writes: round((a.writes - b.writes) / count, 2) }]
      })) as Record<ProcessRole, { reads: number, writes: number }>
    out[t.name] = { requests: count, wallMsPerRequest: round(wallMs / count, 3), msPerRequest: { ...msPerRequest, total }, syscallsPerRequest: syscalls }
    progress(`  process: CPU per request, ${t.name} alone: ${roles.map(r => `${r} ${msPerRequest[r]}`).join(', ')} (total ${total} ms; ${round(wallMs / count, 3)} ms wall)`)
    if (syscalls != null) progress(`  process: read/write syscalls per request, ${t.name} alone: ${roles.map(r => `${r} ${syscalls[r].reads}/${syscalls[r].writes}`).join(', ')}`)
  }
  return out as Record<PathName, ProcessCpu>
}

/** Build the three-daemon network, measure, stop it. */
export async function processApps (opts: { requests: number, warmup: number }, progress: Progress, keep = false, env: (i: number) => Record<string, string> = () => ({})): Promise<ProcessResult> {
  const net = await BenchNetwork.create(progress, ['procbench'])
  try {
    const v1 = processAppVersion(1)
    const v2 = processAppVersion(2)
    const r1 = await net.release({ base: null, files: v1.files, manifest: v1.manifest })
    const policy = net.ws.file('hold-policy.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'approve' }] }))
    // A, B hold protocol 1; C takes 2
    await net.start(3, r1, i => i < 2 ? ['--policy', policy] : [], env)
    const [a, b, c] = net.peers as [DaemonProcess, DaemonProcess, DaemonProcess]
    progress('  process: C to protocol 2 (a past SO that passes messages through)…')
    const r2 = await net.release({ base: null, files: v2.files, manifest: v2.manifest })
    await a.api('POST', '/publish', r2.bytes)
    await net.waitUntil('C to run 2.0.0', async () => { const s = await c.status(); return s.version === '2.0.0' && s.state === 'running' }, 120_000)
    // A and B hold 2.0.0 without switching; identify has told A what C speaks now
    await net.waitRelease(r2, ['staged', 'waiting', 'active'], net.peers, 60_000)
    await sleep(2000)

    const [appA, appB, appC] = [await appProcess(a), await appProcess(b), await appProcess(c)]
    const [aPort, bPort] = [appA.port, appB.port]
    const targets: Target[] = [
      { name: 'direct', via: 'direct', url: `http://127.0.0.1:${bPort}/null` },
      { name: 'sameVersion', via: 'proxy', url: `http://${peerHost(b.peerId)}/null` },
      { name: 'soHop', via: 'proxy', url: `http://${peerHost(c.peerId)}/null` },
      { name: 'ownProxy', via: 'proxy', url: `http://${peerHost(a.peerId)}/null` }
    ]
    type Answer = { latencies: Record<PathName, number[]> }
    await postJson<Answer>(aPort, '/loop', { targets, count: opts.warmup })
    const got: Record<PathName, number[]> = { direct: [], sameVersion: [], soHop: [], ownProxy: [] }
    const rounds = Math.max(1, Math.min(ROUNDS, opts.requests))
    for (let r = 0; r < rounds; r++) {
      const count = Math.floor(opts.requests / rounds) + (r < opts.requests % rounds ? 1 : 0)
      const answer = await postJson<Answer>(aPort, '/loop', { targets, count })
      for (const t of targets) got[t.name].push(...answer.latencies[t.name])
      const done = got.direct.length
      progress(`  process: ${done}/${opts.requests} per path; p50 so far: ${targets.map(t => `${t.name} ${round(quantile(sortedCopy(got[t.name]), 0.5), 3)} ms`).join(', ')}`)
    }
    const cpu = await cpuByPath(aPort, targets, Math.max(1, Math.round(opts.requests / 2)), { appA: appA.pid, daemonA: a.pid, daemonB: b.pid, appB: appB.pid, daemonC: c.pid, appC: appC.pid }, progress)
    // the SO hop is one only if C served protocol 1 (through its past SO), never its own 2
    const served = await net.metrics(c)
    const v1In = metricSum(served, 'upgossip_bytes_total', { protocol: '/upgossip/app/procbench/1', direction: 'in' })
    const v2In = metricSum(served, 'upgossip_bytes_total', { protocol: '/upgossip/app/procbench/2', direction: 'in' })
    if (v1In === 0 || v2In > 0) throw new Error(`A's requests to C were not translated by C's past SO (C took in ${v1In} bytes on protocol 1, ${v2In} on 2)`)

    const direct = summary(got.direct)
    const sameVersion = summary(got.sameVersion)
    const soHop = summary(got.soHop)
    return {
      latencyRatio: ratio(sameVersion.p50Ms, direct.p50Ms, 2),
      soHopRatio: ratio(soHop.p50Ms, sameVersion.p50Ms, 2),
      tcpThroughputRatio: null,
      tcpThroughputNote: TCP_NOTE,
      app: `a Node.js http server (${process.version}, the bench's own node) run as a process app`,
      requests: opts.requests,
      warmup: opts.warmup,
      direct,
      sameVersion,
      soHop,
      ownProxy: summary(got.ownProxy),
      cpu,
      method: METHOD,
      tcp: null
    }
  } finally {
    await net.close(keep)
    const left = outlived(net.ws.root)
    if (left.length > 0) progress(`  process: ${left.length} app process(es) outlived their daemons, killed: ${left.join(', ')}`)
  }
}

/**
 * Processes still running in the network's directory once its daemons stopped: app
 * processes a daemon lost track of (a daemon's bug: a process app started twice, say).
 * Each is killed, so that no run leaves servers behind on the machine, and named.
 */
function outlived (root: string): number[] {
  let entries: string[]
  try {
    entries = fsSync.readdirSync('/proc').filter(e => /^\d+$/.test(e))
  } catch {
    return []
  }
  const killed: number[] = []
  for (const e of entries) {
    try {
      if (!fsSync.readlinkSync(`/proc/${e}/cwd`).startsWith(root + '/')) continue
      process.kill(Number(e), 'SIGKILL')
      killed.push(Number(e))
    } catch {}
  }
  return killed
}

/** The HTTP figures with the TCP ones. */
export function withTcp (p: ProcessResult, tcp: ProcessTcpResult): ProcessResult {
  return { ...p, tcpThroughputRatio: ratio(tcp.tunnel.mibPerSecond, tcp.libp2p.mibPerSecond, 2), tcpThroughputNote: null, tcp }
}
