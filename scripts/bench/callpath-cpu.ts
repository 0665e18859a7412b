/**
 * CPU per same-version null call, process by process: two daemons run the `bench` app
 * (protocol 1), A's app calls B's `count` times (`inflight` at a time, the shim section's
 * loop), and the CPU time each of the four processes used during the loop (from
 * `/proc/<pid>/stat`) is divided by the calls. Beside it, the shim section's floor (the
 * same echo through IPC and one libp2p stream, no upgossip logic) measured the same way.
 * Linux only (reads /proc). Runs dist/: `npm run build` first.
 *
 * Usage: node scripts/bench/callpath-cpu.ts [--count N] [--inflight N] [--rounds N] [--profile DIR]
 * (`--profile`: every process of both paths runs with `--cpu-prof` into DIR; summarise with
 * `node scripts/profile-summary.ts FILE --top 40`)
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { DaemonProcess } from '#src/testnet/index.js'
import { benchAppVersion } from './bench-app.ts'
import { BenchNetwork } from './network.ts'

const args = process.argv.slice(2)
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const count = opt('--count', 5000)
const inflight = opt('--inflight', 1)
const rounds = opt('--rounds', 3)
const profileAt = args.indexOf('--profile')
const env: Record<string, string> = profileAt < 0 ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.resolve(args[profileAt + 1] as string)}` }
const TICK_US = 1e6 / 100 // USER_HZ on Linux

/** CPU µs (user + system) a process has used so far. */
function cpuUs (pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_US
}

/** The child processes of `pid`. */
function childrenOf (pid: number): number[] {
  const out: number[] = []
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    const text = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
    if (text !== '') out.push(...text.split(' ').map(Number))
  }
  return out
}

const straceAt = args.indexOf('--strace')
const straceDir = straceAt < 0 ? undefined : path.resolve(args[straceAt + 1] as string)

async function measure (name: string, pids: Record<string, number>, run: () => Promise<unknown>): Promise<void> {
  // --strace DIR: the system calls of each process during the loop (strace -c), one file each
  const tracers = straceDir == null ? [] : Object.entries(pids).map(([k, pid]) => spawn('strace', ['-c', '-f', '-p', String(pid), '-o', path.join(straceDir, `${name.split(' ')[0] as string}-${k.replace(' ', '-')}.txt`)], { stdio: 'ignore' }))
  if (tracers.length > 0) await new Promise(resolve => setTimeout(resolve, 1000))
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuUs(pid)]))
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]
  const t0 = performance.now()
  await run()
  const wallMs = performance.now() - t0
  for (const t of tracers) t.kill('SIGINT')
  await Promise.all(tracers.map(async t => await new Promise(resolve => t.once('exit', resolve))))
  const per = Object.entries(pids).map(([k, pid]) => `${k} ${((cpuUs(pid) - (before[k] as number)) / count).toFixed(1)}`)
  const total = Object.entries(pids).reduce((s, [k, pid]) => s + cpuUs(pid) - (before[k] as number), 0) / count
  process.stdout.write(`${name}: µs CPU per call: ${per.join(', ')}; total ${total.toFixed(1)}; ${(count / wallMs * 1000).toFixed(0)} calls/s; load ${load}\n`)
}

const FLOOR = fileURLToPath(new URL('./shim-floor-process.ts', import.meta.url))

const net = await BenchNetwork.create(line => { process.stderr.write(line + '\n') }, ['kv', 'bench'], { callTimeout: '20m' })
try {
  const v1 = benchAppVersion(1)
  const r1 = await net.release({ base: null, files: v1.files, manifest: v1.manifest })
  await net.start(2, r1, () => [], env)
  const [a, b] = net.peers as [DaemonProcess, DaemonProcess]
  const loop = async (n: number): Promise<unknown> => await a.call({ bench: { target: b.peerId, count: n, inflight, bytes: 0 } }, { timeoutMs: 600_000 })
  await loop(2000)
  const appOf = (d: DaemonProcess): number => {
    const kids = childrenOf(d.pid as number)
    if (kids.length !== 1) throw new Error(`daemon ${String(d.pid)} has ${kids.length} children`)
    return kids[0] as number
  }
  const pids = { 'daemon A': a.pid as number, 'app A': appOf(a), 'daemon B': b.pid as number, 'app B': appOf(b) }

  // the floor: two node processes, each with its app
  const procs = ['floor-caller', 'floor-callee'].map(n => spawn(process.execPath, [FLOOR, 'node', net.ws.file(`${n}.key`)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } }))
  const [caller, callee] = procs as [typeof procs[0], typeof procs[0]]
  const calleeLines = readline.createInterface({ input: callee.stdout })[Symbol.asyncIterator]()
  const addr = (JSON.parse((await calleeLines.next()).value as string) as { addr: string }).addr
  const lines = readline.createInterface({ input: caller.stdout })[Symbol.asyncIterator]()
  await lines.next()
  caller.stdin.write(JSON.stringify({ dial: addr }) + '\n')
  await lines.next()
  const floorLoop = async (n: number): Promise<unknown> => {
    caller.stdin.write(JSON.stringify({ loop: { count: n, inflight } }) + '\n')
    return await lines.next()
  }
  await floorLoop(2000)
  const floorPids = { 'node A': caller.pid as number, 'app A': childrenOf(caller.pid as number)[0] as number, 'node B': callee.pid as number, 'app B': childrenOf(callee.pid as number)[0] as number }
  try {
    for (let r = 0; r < rounds; r++) {
      await measure(`upgossip (${count} calls, ${inflight} in flight)`, pids, async () => await loop(count))
      await measure(`floor    (${count} calls, ${inflight} in flight)`, floorPids, async () => await floorLoop(count))
    }
  } finally {
    for (const p of procs) p.stdin.end()
  }
} finally {
  await net.close()
}
