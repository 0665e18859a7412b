/**
 * Per-host uplinks on loopback. On one machine over loopback an HTTPS origin has no
 * uplink for its clients to share, so a comparison with the swarm measures only CPU. Here
 * every host — each daemon and the origin — gets its own loopback address and the same
 * uplink: an HTB qdisc on `lo` with one class per source address at the rate (ceil = rate,
 * a queue of packets: see {@link leafQueue}) and a default class that is, for everything else (the
 * control API on 127.0.0.1, the clients' requests), effectively unlimited. Needs root and
 * `tc` (iproute2); IPv4 only.
 *
 * @example
 * ```ts
 * const uplinks = LoopbackUplinks.install({ mbit: 40, addresses: [ORIGIN_ADDRESS, daemonAddress(0)] })
 * try {
 *   console.log(await uplinks.measure(ORIGIN_ADDRESS, daemonAddress(0)))   // ≈ 40
 * } finally {
 *   uplinks.remove()
 * }
 * ```
 */
import { execFileSync } from 'node:child_process'
import net from 'node:net'

/** Shaping cannot be set up here (no tc, not root, or lo already has a qdisc of someone else's). */
export class UplinkUnavailableError extends Error {
  override name = 'UplinkUnavailableError'
}

/** The HTTPS origin's address when uplinks are shaped. */
export const ORIGIN_ADDRESS = '127.0.0.2'

/** Daemon `i`'s address (listen and dial) when uplinks are shaped: 127.0.0.(10 + i). */
export function daemonAddress (i: number): string {
  if (!Number.isInteger(i) || i < 0 || i > 240) throw new RangeError(`no shaped loopback address for daemon ${i} (at most 241 daemons)`)
  return `127.0.0.${10 + i}`
}

/** One shaped run: a network of `peers` daemons, a package of `size` bytes. */
export interface ShapedRunSpec {
  peers: number
  size: number
}

/** Parse `--shaped-runs NxMiB,…` (e.g. `10x16,50x16`; `none` for no shaped runs); throws a message for people. */
export function parseShapedRuns (text: string): ShapedRunSpec[] {
  if (text === 'none') return []
  return text.split(',').filter(Boolean).map(item => {
    const m = /^(\d+)x(\d+(?:\.\d+)?)$/.exec(item)
    const peers = Number(m?.[1])
    const mib = Number(m?.[2])
    if (m == null || peers < 2 || peers > 200 || !(mib > 0) || mib > 1024) throw new Error(`--shaped-runs: ${item} is not PEERSxMiB (2 to 200 peers, a size above 0 and at most 1024 MiB), e.g. 10x16,50x16`)
    return { peers, size: Math.round(mib * 1024 * 1024) }
  })
}

/** Parse `--uplink MBIT`; throws a message for people. */
export function parseUplink (text: string): number {
  const mbit = Number(text)
  if (!Number.isFinite(mbit) || mbit <= 0 || mbit > 10_000) throw new Error(`--uplink ${text}: a rate in Mbit/s, above 0 and at most 10000`)
  return mbit
}

/**
 * Why `tc qdisc show dev lo` (its output) says lo is not ours to shape, or undefined when
 * lo has its default (`noqueue`). A qdisc we did not put there is never deleted for the user.
 */
export function loQdiscRefusal (shown: string): string | undefined {
  const root = shown.split('\n').find(line => / root /.test(line + ' '))
  if (root == null || /^qdisc noqueue /.test(root.trim())) return undefined
  return `lo already has a root qdisc (${root.trim()}); it is not the bench's to change. If it is left over from an interrupted bench run, remove it with: tc qdisc del dev lo root`
}

function tc (args: string[]): string {
  try {
    return execFileSync('tc', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') throw new UplinkUnavailableError('shaping uplinks needs tc (iproute2), which is not on the PATH; install iproute2, or run without shaped runs (--shaped-runs none)')
    const why = (e.stderr ?? e.message).trim()
    if (/Operation not permitted|EPERM/i.test(why)) throw new UplinkUnavailableError(`shaping uplinks needs root (CAP_NET_ADMIN) to change lo's qdisc: tc ${args.join(' ')}: ${why}; run the bench as root, or without shaped runs (--shaped-runs none)`)
    throw new UplinkUnavailableError(`tc ${args.join(' ')}: ${why}`)
  }
}

/** Why uplinks cannot be shaped on this machine now, or undefined when they can (nothing is changed). */
export function uplinkUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'shaping uplinks needs root (tc on lo); run the bench as root, or without shaped runs (--shaped-runs none)'
  try {
    return loQdiscRefusal(tc(['qdisc', 'show', 'dev', 'lo']))
  } catch (err) {
    return (err as Error).message
  }
}

/** The HTB class of the `i`-th shaped address. */
function classOf (i: number): string {
  return `1:${(0x100 + i).toString(16)}`
}

/**
 * The bytes each of `addresses` (shaped in this order) sent through its class, from what
 * `tc -s class show dev lo` printed (`shown`); 0 for an address whose class is not there.
 */
export function carriedBytes (shown: string, addresses: string[]): Record<string, number> {
  const sent = new Map<string, number>()
  let classid: string | undefined
  for (const line of shown.split('\n')) {
    const heading = /^class htb (\S+) /.exec(line)
    if (heading != null) {
      classid = heading[1]
      continue
    }
    const counted = /^\s*Sent (\d+) bytes/.exec(line)
    if (counted != null && classid != null) {
      sent.set(classid, Number(counted[1]))
      classid = undefined
    }
  }
  return Object.fromEntries(addresses.map((address, i) => [address, sent.get(classOf(i)) ?? 0]))
}

/** A packet on lo is up to 64 KiB (GSO), plus headers: every class must let one through whole. */
const QUANTUM = 65536 + 1024
const BURST = 2 * QUANTUM

/**
 * The queue of each shaped class, as `tc qdisc add … parent CLASS` arguments: a FIFO of
 * max(64, 3 × (hosts − 1)) packets — three per connection the host can have open to the others.
 *
 * Why in packets, not a real uplink's 200 ms of bytes: on lo a packet is up to 64 KiB, so
 * 200 ms at 20 Mbit/s holds seven packets, where a real uplink with 1,500-byte packets holds
 * over 300. With seven, twenty-four flows from one host lose packets so often that their
 * TCP can only time out and back off, for minutes: the HTTPS clients of a 25-host run
 * waited until the bench hung. Measured with scripts/uplink-queue.ts (24 clients of 4 MiB
 * from one host at 20 Mbit/s): with `bfifo 200ms` and with `pfifo 32` a client received
 * nothing for 120 s; with `pfifo 64` all were done in 41.2 and 41.4 s (two runs) against 40.3 s at the rate. Three packets per flow let a flow recover a lost packet by
 * fast retransmit. The price is a longer queue: at 20 Mbit/s, 64 full packets wait 1.7 s.
 * (fq_codel would keep flows apart without it, but this kernel has only the FIFOs, htb, tbf,
 * red and choke.)
 */
export function leafQueue (hosts: number): string[] {
  return ['pfifo', 'limit', String(Math.max(64, 3 * (hosts - 1)))]
}

/** Shaped uplinks installed on lo: removed by {@link LoopbackUplinks.remove}, at exit, or by {@link LoopbackUplinks.removeAll}. */
export class LoopbackUplinks {
  readonly mbit: number
  readonly addresses: string[]
  private removed = false
  /** Whether our root qdisc went on: only then is the one on lo ours to delete. */
  private rootAdded = false

  private static readonly installed = new Set<LoopbackUplinks>()

  private constructor (mbit: number, addresses: string[]) {
    this.mbit = mbit
    this.addresses = addresses
  }

  /** Shape the egress of each of `addresses` (IPv4 on lo) to `mbit` Mbit/s, each class queued by `queue` (default {@link leafQueue}); refuses when lo is not free. */
  static install (opts: { mbit: number, addresses: string[], queue?: string[] }): LoopbackUplinks {
    const refusal = loQdiscRefusal(tc(['qdisc', 'show', 'dev', 'lo']))
    if (refusal != null) throw new UplinkUnavailableError(refusal)
    const uplinks = new LoopbackUplinks(opts.mbit, opts.addresses)
    LoopbackUplinks.installed.add(uplinks)
    try {
      tc(['qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '1'])
      uplinks.rootAdded = true
      // everything not from a shaped address: the control API, the HTTPS clients' requests
      tc(['class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '100gbit', 'quantum', '200000'])
      opts.addresses.forEach((address, i) => {
        if (net.isIPv4(address) !== true) throw new UplinkUnavailableError(`${address}: only IPv4 addresses are shaped`)
        const classid = classOf(i)
        const rate = `${opts.mbit}mbit`
        tc(['class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', classid, 'htb', 'rate', rate, 'ceil', rate, 'burst', String(BURST), 'cburst', String(BURST), 'quantum', String(QUANTUM)])
        tc(['qdisc', 'add', 'dev', 'lo', 'parent', classid, ...(opts.queue ?? leafQueue(opts.addresses.length))])
        tc(['filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'src', `${address}/32`, 'flowid', classid])
      })
    } catch (err) {
      uplinks.remove()
      throw err
    }
    return uplinks
  }

  /** Remove every uplink still installed (on Ctrl-C; at exit). */
  static removeAll (): void {
    for (const u of [...LoopbackUplinks.installed]) u.remove()
  }

  /** Remove the qdisc from lo; safe to call twice. */
  remove (): void {
    if (this.removed) return
    this.removed = true
    LoopbackUplinks.installed.delete(this)
    if (!this.rootAdded) return
    try {
      // only ours: a qdisc someone put there after us is theirs
      if (/^qdisc htb 1: root/m.test(tc(['qdisc', 'show', 'dev', 'lo']))) tc(['qdisc', 'del', 'dev', 'lo', 'root'])
    } catch (err) {
      process.stderr.write(`bench: could not remove the uplinks from lo (${(err as Error).message}); remove them with: tc qdisc del dev lo root\n`)
    }
  }

  /** Bytes each shaped address has sent through its uplink so far, by address ({@link carriedBytes}). */
  carried (): Record<string, number> {
    return carriedBytes(tc(['-s', 'class', 'show', 'dev', 'lo']), this.addresses)
  }

  /**
   * Move `bytes` over TCP from `from` (a shaped address) to `to` and return the receiver's
   * throughput in Mbit/s: the check that the rate set is the rate a connection gets
   * (lo sends 64 KiB packets, which a shaper must count whole).
   */
  async measure (from: string, to: string, bytes = 20_000_000): Promise<number> {
    return await measureThroughput(from, to, bytes)
  }
}

/** The throughput of one TCP connection from `from` to `to` carrying `bytes`, in Mbit/s (from the first byte received to the last). */
export async function measureThroughput (from: string, to: string, bytes: number, timeoutMs = 120_000): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, to, resolve) })
  const port = (server.address() as net.AddressInfo).port
  let timer: NodeJS.Timeout | undefined
  try {
    const received = new Promise<number>((resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`measuring the uplink: ${bytes} bytes did not arrive within ${timeoutMs / 1000} s`)) }, timeoutMs)
      server.once('connection', socket => {
        let got = 0
        let first = 0
        socket.on('data', (chunk: Buffer) => {
          if (got === 0) first = performance.now()
          got += chunk.length
        })
        socket.on('end', () => {
          const seconds = (performance.now() - first) / 1000
          resolve(Math.round(got * 8 / seconds / 1e4) / 100)
        })
        socket.on('error', reject)
      })
    })
    // a failed connect or write throws below: this one must not reject unheard meanwhile
    received.catch(() => {})
    const socket = net.connect({ host: to, port, localAddress: from })
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    const chunk = Buffer.alloc(1 << 20)
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      if (!socket.write(sent + chunk.length <= bytes ? chunk : chunk.subarray(0, bytes - sent))) await new Promise(resolve => socket.once('drain', resolve))
    }
    socket.end()
    return await received
  } finally {
    clearTimeout(timer)
    server.close()
  }
}

// a crash or an exit before the bench removed its uplinks must not leave lo shaped
process.once('exit', () => { LoopbackUplinks.removeAll() })
