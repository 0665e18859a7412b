/**
 * Process apps with wire "tcp": stream throughput through the tunnel against the
 * transport's own limit. Two daemons run `procbench-tcp` (a sink: told how many bytes
 * follow, it answers their count once all are in). The bench
 * process sends `bytes` in 64 KiB writes, with backpressure, on three paths in turn:
 *
 * - `tunnel`: `CONNECT <B's host>:1` through A's proxy → daemon A → a libp2p stream →
 *   daemon B → B's app port;
 * - `libp2p`: a bare libp2p stream between two nodes made by `src/net` with the daemons'
 *   stack (TCP, noise, yamux), the bench's and one in a process of its own
 *   (libp2p-sink-process.ts): what the transport moves here, with nothing of upgossip;
 * - `loopback`: straight to B's app port over TCP on 127.0.0.1.
 *
 * CPU time of the sender (this process), the daemons, B's app and the sink is counted
 * around every run: CPU per MiB by process and path.
 *
 * A run's time is from the first byte written (the connection or stream already open)
 * until the sink's count came back, checked against what was sent. (The libp2p sink
 * reads to the end of the stream instead: a libp2p stream's half-close is the transport's.)
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { STREAM_PIECE, createPeerNode, loadPeerKey, peerHost } from '#src/net/index.js'
import type { DaemonProcess } from '#src/testnet/index.js'
import { SINK_PROTOCOL } from './libp2p-sink-process.ts'
import { tcpAppVersion } from './process-app.ts'
import { BenchNetwork } from './network.ts'
import type { Progress } from './network.ts'
import { cpuSeconds } from './footprint.ts'
import { median, round } from './stats.ts'

/** The processes CPU is counted for: the bench (the sender), the two daemons, B's app, the libp2p sink. */
export type TcpRole = 'sender' | 'daemonA' | 'daemonB' | 'appB' | 'sink'

/** One path's throughput. */
export interface TcpPath {
  /** Median over the runs, MiB/s. */
  mibPerSecond: number | null
  /** Every run, MiB/s. */
  runs: number[]
  /** CPU ms per MiB sent (user + system, from /proc; the sender from process.cpuUsage) of each process over the runs, and all of them; null where /proc is missing. */
  cpuMsPerMiB: Record<TcpRole | 'total', number> | null
}

/** The TCP figures. */
export interface ProcessTcpResult {
  /** Bytes sent per run. */
  bytes: number
  rounds: number
  tunnel: TcpPath
  libp2p: TcpPath
  loopback: TcpPath
  method: string
}

const METHOD = 'the bench process sends the bytes in 64 KiB writes with backpressure; tunnel = CONNECT <B\'s host>:1 through A\'s proxy → daemon A → libp2p → daemon B → B\'s app (a sink that answers the count); libp2p = a bare stream between two nodes made by src/net (TCP, noise, yamux), one in a process of its own; loopback = TCP straight to B\'s app port; each run timed from the first byte to the count, the paths in turn'

const CHUNK = new Uint8Array(64 * 1024).fill(7)
const SINK = fileURLToPath(new URL('./libp2p-sink-process.ts', import.meta.url))

type PathName = 'tunnel' | 'libp2p' | 'loopback'

/**
 * Send `bytes` on a socket to the sink, with backpressure: their number as a line, then the
 * bytes; resolves with the ms from the first byte until the sink's count came back.
 */
async function sendOver (socket: net.Socket, bytes: number, already = ''): Promise<number> {
  let answer = already
  const counted = new Promise<void>((resolve, reject) => {
    const check = (): void => { if (answer.includes('\n')) resolve() }
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => { answer += d; check() })
    socket.once('close', () => { reject(new Error(`the connection closed before the sink answered (${answer.slice(0, 100)})`)) })
    check()
  })
  counted.catch(() => {})
  const started = performance.now()
  socket.write(`${bytes}\n`)
  for (let sent = 0; sent < bytes; sent += CHUNK.byteLength) {
    if (!socket.write(CHUNK.subarray(0, Math.min(CHUNK.byteLength, bytes - sent)))) await once(socket, 'drain')
  }
  await counted
  const ms = performance.now() - started
  socket.destroy()
  if (Number(answer.trim()) !== bytes) throw new Error(`the sink counted ${answer.trim().slice(0, 100)} bytes of ${bytes}`)
  return ms
}

async function connected (port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await once(socket, 'connect')
  return socket
}

/** `CONNECT host:1` through a daemon's proxy; resolves once the tunnel is open, with what came after the answer's head. */
async function tunnel (proxyUrl: string, host: string): Promise<{ socket: net.Socket, rest: string }> {
  const proxy = new URL(proxyUrl)
  const socket = await connected(Number(proxy.port))
  const auth = Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')
  socket.write(`CONNECT ${host}:1 HTTP/1.1\r\nHost: ${host}:1\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`)
  let head = ''
  while (!head.includes('\r\n\r\n')) {
    const [chunk] = await once(socket, 'data') as [Buffer]
    head += chunk.toString('latin1')
  }
  const end = head.indexOf('\r\n\r\n')
  if (!/^HTTP\/1\.1 200 /.test(head)) throw new Error(`CONNECT answered ${head.slice(0, 300)}`)
  socket.removeAllListeners('data')
  return { socket, rest: head.slice(end + 4) }
}

/** Measure, then stop the two daemons and the sink. */
export async function tcpThroughput (opts: { bytes: number, rounds: number }, progress: Progress, keep = false, env: (i: number) => Record<string, string> = () => ({})): Promise<ProcessTcpResult> {
  const netw = await BenchNetwork.create(progress, ['procbench-tcp'])
  const sink = spawn(process.execPath, [SINK, netw.ws.file('sink.key')], { stdio: ['pipe', 'pipe', 'inherit'] })
  let node: Awaited<ReturnType<typeof createPeerNode>> | undefined
  try {
    const v1 = tcpAppVersion()
    const r1 = await netw.release({ base: null, files: v1.files, manifest: v1.manifest })
    await netw.start(2, r1, () => [], env)
    const [a, b] = netw.peers as [DaemonProcess, DaemonProcess]
    const proxy = a.control.proxy
    if (proxy == null) throw new Error(`${a.name} names no proxy in control.json`)
    const bPort = (await b.status()).process?.port
    if (bPort == null) throw new Error(`${b.name} runs no process app`)
    const [line] = await once(readline.createInterface({ input: sink.stdout }), 'line') as [string]
    const sinkAddr = (JSON.parse(line) as { addr?: string }).addr
    if (sinkAddr == null) throw new Error('the libp2p sink did not say where it listens')
    node = await createPeerNode({ privateKey: await loadPeerKey(netw.ws.file('sender.key')), listen: ['/ip4/127.0.0.1/tcp/0'] })
    const sender = node
    const bHost = peerHost(b.peerId)

    const run: Record<PathName, () => Promise<number>> = {
      tunnel: async () => {
        const { socket, rest } = await tunnel(proxy, bHost)
        return await sendOver(socket, opts.bytes, rest)
      },
      libp2p: async () => {
        const stream = await sender.dialProtocol(multiaddr(sinkAddr), SINK_PROTOCOL)
        const reading = (async () => {
          let text = ''
          for await (const chunk of stream.source) text += Buffer.from(chunk.subarray()).toString()
          return text
        })()
        const started = performance.now()
        // in pieces that fill a noise message each, as the tunnel hands its stream the app's
        // bytes (byte-stream.ts): the transport at its best, not cut into 64 KiB + 12 bytes
        await stream.sink((function * () {
          for (let sent = 0; sent < opts.bytes; sent += STREAM_PIECE) yield CHUNK.subarray(0, Math.min(STREAM_PIECE, opts.bytes - sent))
        })())
        const answer = await reading
        const ms = performance.now() - started
        if (Number(answer.trim()) !== opts.bytes) throw new Error(`the libp2p sink counted ${answer.trim().slice(0, 100)} bytes of ${opts.bytes}`)
        return ms
      },
      loopback: async () => await sendOver(await connected(bPort), opts.bytes)
    }
    const pids: Record<Exclude<TcpRole, 'sender'>, number | undefined> = { daemonA: a.pid, daemonB: b.pid, appB: (await b.status()).process?.pid, sink: sink.pid }
    const roles = ['sender', ...Object.keys(pids)] as TcpRole[]
    const cpuNow = (): Record<TcpRole, number | null> => {
      const own = process.cpuUsage()
      return { sender: (own.user + own.system) / 1e6, ...Object.fromEntries(Object.entries(pids).map(([r, pid]) => [r, pid == null ? null : cpuSeconds(pid)])) } as Record<TcpRole, number | null>
    }
    const cpu: Record<PathName, Record<TcpRole, number> | null> = { tunnel: zero(roles), libp2p: zero(roles), loopback: zero(roles) }
    // socket reads and writes of the daemons and the sink (/proc/PID/io): steadier than CPU time on a loaded machine
    const ioRoles = Object.keys(pids) as Array<Exclude<TcpRole, 'sender'>>
    const ioNow = (): Record<string, { reads: number, writes: number } | null> => Object.fromEntries(ioRoles.map(r => [r, ioCalls(pids[r])]))
    const io: Record<PathName, Record<string, { reads: number, writes: number }>> = { tunnel: {}, libp2p: {}, loopback: {} }
    const names: PathName[] = ['tunnel', 'libp2p', 'loopback']
    // one unmeasured run of each first (connections, JIT, yamux windows)
    for (const name of names) await run[name]()
    const got: Record<PathName, number[]> = { tunnel: [], libp2p: [], loopback: [] }
    for (let r = 0; r < opts.rounds; r++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(r + k) % names.length] as PathName
        const before = cpuNow()
        const ioBefore = ioNow()
        const ms = await run[name]()
        const after = cpuNow()
        const ioAfter = ioNow()
        for (const role of ioRoles) {
          const [x, y] = [ioBefore[role], ioAfter[role]]
          if (x == null || y == null) continue
          const acc = io[name][role] ?? { reads: 0, writes: 0 }
          io[name][role] = { reads: acc.reads + y.reads - x.reads, writes: acc.writes + y.writes - x.writes }
        }
        got[name].push(round(opts.bytes / 1048576 / (ms / 1000), 1))
        const acc = cpu[name]
        for (const role of roles) {
          const [x, y] = [before[role], after[role]]
          if (x == null || y == null || acc == null) cpu[name] = null
          else acc[role] += y - x
        }
      }
      progress(`  process: tcp round ${r + 1}/${opts.rounds}: ${names.map(n => `${n} ${got[n].at(-1) ?? '–'} MiB/s`).join(', ')}`)
    }
    for (const name of names) {
      const c = cpu[name]
      if (c != null) progress(`  process: tcp ${name}, CPU ms per MiB: ${roles.map(r => `${r} ${round(c[r] * 1000 / (opts.bytes * opts.rounds / 1048576), 2)}`).join(', ')}`)
      const calls = io[name]
      if (Object.keys(calls).length > 0) progress(`  process: tcp ${name}, read/write syscalls per MiB: ${Object.entries(calls).map(([r, n]) => `${r} ${round(n.reads / (opts.bytes * opts.rounds / 1048576), 1)}/${round(n.writes / (opts.bytes * opts.rounds / 1048576), 1)}`).join(', ')}`)
    }
    const mib = opts.bytes * opts.rounds / 1048576
    const perMiB = (name: PathName): TcpPath['cpuMsPerMiB'] => {
      const acc = cpu[name]
      if (acc == null) return null
      const out = Object.fromEntries(roles.map(r => [r, round(acc[r] * 1000 / mib, 2)])) as Record<TcpRole, number>
      return { ...out, total: round(roles.reduce((sum, r) => sum + out[r], 0), 2) }
    }
    const path = (name: PathName): TcpPath => ({ mibPerSecond: got[name].length === 0 ? null : round(median(got[name]), 1), runs: got[name], cpuMsPerMiB: perMiB(name) })
    return { bytes: opts.bytes, rounds: opts.rounds, tunnel: path('tunnel'), libp2p: path('libp2p'), loopback: path('loopback'), method: METHOD }
  } finally {
    await node?.stop()
    sink.stdin?.end()
    await netw.close(keep)
  }
}

/** A process's read and write system calls so far (/proc/PID/io), or null. */
export function ioCalls (pid: number | undefined): { reads: number, writes: number } | null {
  if (pid == null) return null
  try {
    const text = fs.readFileSync(`/proc/${pid}/io`, 'utf8')
    const reads = /^syscr:\s*(\d+)/m.exec(text)?.[1]
    const writes = /^syscw:\s*(\d+)/m.exec(text)?.[1]
    return reads == null || writes == null ? null : { reads: Number(reads), writes: Number(writes) }
  } catch {
    return null
  }
}

function zero (roles: TcpRole[]): Record<TcpRole, number> {
  return Object.fromEntries(roles.map(r => [r, 0])) as Record<TcpRole, number>
}
