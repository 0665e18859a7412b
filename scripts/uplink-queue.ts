/**
 * How a shaped host's queue treats many connections at once: the HTTPS baseline alone —
 * one origin on its own shaped loopback address, N client processes — at a rate and with a
 * queue of your choice. The measurement behind `leafQueue` (scripts/bench/uplink.ts):
 *
 *   ip netns add q && ip -n q link set lo up
 *   ip netns exec q node scripts/uplink-queue.ts --queue bfifo:200ms   # a client stalls 120 s
 *   ip netns exec q node scripts/uplink-queue.ts --queue pfifo:64      # about 41 s against 40.3 s
 *   ip netns del q
 *
 * Needs root and tc (it shapes lo like the bench, and removes what it added).
 *
 * Usage: node scripts/uplink-queue.ts [--mbit 20] [--clients 24] [--mib 4] [--queue KIND:SIZE] [--json]
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { makeCertificate } from './bench/certificate.ts'
import { httpsBaseline } from './bench/https-origin.ts'
import { LoopbackUplinks, ORIGIN_ADDRESS, daemonAddress, leafQueue, parseUplink } from './bench/uplink.ts'

const HELP = `usage: node scripts/uplink-queue.ts [--mbit 20] [--clients 24] [--mib 4] [--queue KIND:SIZE] [--json]

Serves a random file of --mib MiB from an HTTPS origin on ${ORIGIN_ADDRESS}, shaped to --mbit
Mbit/s by tc on lo, to --clients client processes at once, and prints the time until the
last holds a checked copy against the time at the rate. --queue sets the shaped class's
queue: pfifo:PACKETS or bfifo:MS (a byte FIFO of MS milliseconds at the rate); default: the
bench's own (${leafQueue(2).join(' ')}). Needs root and tc; run it in a network namespace of
its own to leave the host's lo alone.`

/** `pfifo:64` or `bfifo:200ms` as tc arguments at `mbit`; throws a message for people. */
function parseQueue (text: string, mbit: number): string[] {
  const m = /^(pfifo):(\d+)$|^(bfifo):(\d+)ms$/.exec(text)
  if (m?.[1] != null) return ['pfifo', 'limit', m[2] as string]
  if (m?.[3] != null) return ['bfifo', 'limit', String(Math.round(mbit * 1e6 / 8 * Number(m[4]) / 1000))]
  throw new Error(`--queue ${text}: pfifo:PACKETS or bfifo:MILLISECONDSms, e.g. pfifo:64 or bfifo:200ms`)
}

async function main (argv: string[]): Promise<void> {
  let mbit = 20
  let clients = 24
  let mib = 4
  let queueText: string | undefined
  let json = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v == null) throw new Error(`${arg ?? ''} needs a value`)
      return v
    }
    const count = (name: string, min: number, max: number): number => {
      const n = Number(value())
      if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}: a whole number from ${min} to ${max}`)
      return n
    }
    switch (arg) {
      case '--help': case '-h': console.log(HELP); return
      case '--mbit': mbit = parseUplink(value()); break
      case '--clients': clients = count('--clients', 1, 200); break
      case '--mib': mib = count('--mib', 1, 1024); break
      case '--queue': queueText = value(); break
      case '--json': json = true; break
      default: throw new Error(`unknown option ${arg ?? ''} (see --help)`)
    }
  }
  const queue = queueText == null ? undefined : parseQueue(queueText, mbit)
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upgossip-uplink-queue-'))
  const uplinks = LoopbackUplinks.install({ mbit, addresses: [ORIGIN_ADDRESS, daemonAddress(0)], queue })
  try {
    const file = path.join(dir, 'bundle')
    await fs.writeFile(file, randomBytes(mib * 1048576))
    const r = await httpsBaseline({ file, clients, dir, cert: await makeCertificate(), host: ORIGIN_ADDRESS })
    const atRateMs = Math.round(clients * mib * 1048576 * 8 / (mbit * 1e3))
    const out = { mbit, clients, mib, queue: (queue ?? leafQueue(2)).join(' '), ms: r.ms, atRateMs }
    console.log(json ? JSON.stringify(out) : `${clients} clients of ${mib} MiB at ${mbit} Mbit/s, queue ${out.queue}: ${(r.ms / 1000).toFixed(1)} s (${(atRateMs / 1000).toFixed(1)} s at the rate)`)
  } finally {
    uplinks.remove()
    await fs.rm(dir, { recursive: true, force: true })
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`uplink-queue: ${err.message}`)
  process.exitCode = 1
})
