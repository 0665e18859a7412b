/**
 * Footprint: what one daemon costs. Start-to-ready is timed from the spawn of
 * `upgossip daemon --install …` until its control API answers (control.json), and until
 * its app answers a request; idle RSS and CPU come from /proc for the daemon process and,
 * separately, its app's process, while a small network sits idle (beats only); the CLI's
 * `--help` is timed as a process from spawn to exit.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { DaemonProcess, UPGOSSIP_BIN } from '#src/testnet/index.js'
import { BenchNetwork, sleep } from './network.ts'
import type { Progress } from './network.ts'
import { median, round } from './stats.ts'

/** Clock ticks per second of /proc/<pid>/stat (Linux: 100). */
const CLK_TCK = 100

/** Resident memory of a process in MB (from /proc), or null where /proc is missing. */
export function rssMB (pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match == null ? null : round(Number(match[1]) / 1024, 1)
  } catch {
    return null
  }
}

/** Memory of a process no other process shares (USS: private clean + private dirty), in MB, or null. */
export function ussMB (pid: number): number | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
    const kb = ['Private_Clean', 'Private_Dirty'].map(k => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN))
    return kb.some(Number.isNaN) ? null : round((kb[0] as number + (kb[1] as number)) / 1024, 1)
  } catch {
    return null
  }
}

/** CPU seconds a process has used in user and in system mode (from /proc), or null. */
export function cpuTimes (pid: number): { user: number, system: number } | null {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return { user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK }
  } catch {
    return null
  }
}

/** CPU seconds a process has used (user + system), or null. */
export function cpuSeconds (pid: number): number | null {
  const t = cpuTimes(pid)
  return t == null ? null : t.user + t.system
}

/** The child processes of `pid` (the daemon's app), from /proc. */
export function childrenOf (pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** The footprint figures. */
export interface FootprintResult {
  /** Median idle RSS of a daemon process (its app not included). */
  idleRssMB: number | null
  /** Of which not shared with other processes (USS; the node executable's pages are shared). */
  idleUssMB: number | null
  /** Idle RSS with a smaller V8 young generation (`NODE_OPTIONS=--max-semi-space-size=1`). */
  idleRssSmallYoungGenMB: number | null
  /** Median idle RSS of a daemon's app process (the demo app). */
  appRssMB: number | null
  /** Median idle CPU of a daemon process, % of one core. */
  idleCpuPercent: number | null
  /** Peers in the network `idleCpuPercent` was measured on. */
  idlePeers: number
  idleSeconds: number
  /** Every network whose idle CPU was measured (the first gives `idleCpuPercent`), each after `settleMs`; the memory figures come from a network of 3 (absent in runs before it). */
  idleByPeers?: IdleNetwork[]
  settleMs?: number
  /** Spawn → control API up (control.json written). */
  startToControlMs: number
  /** Spawn → the app answered a request. */
  startToReadyMs: number
  /** `upgossip --help`, spawn → exit (median). */
  helpMs: number
}

async function timeHelp (): Promise<number> {
  const t = performance.now()
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [UPGOSSIP_BIN, '--help'], { stdio: 'ignore' })
    child.on('exit', code => { code === 0 ? resolve() : reject(new Error(`upgossip --help exited with ${String(code)}`)) })
  })
  return performance.now() - t
}

/** Daemons of the idle network whose memory is measured (RSS grows with each connection, and the memory target was set on 3). */
const MEMORY_PEERS = 3

/** An idle network's figures: the median daemon's CPU (% of one core) and RSS. */
export interface IdleNetwork {
  peers: number
  seconds: number
  cpuPercent: number | null
  rssMB: number | null
}

/** Measure. */
export async function footprint (opts: { idleMs: number, helpRuns: number, starts: number, idlePeers?: number[], settleMs?: number }, progress: Progress): Promise<FootprintResult> {
  const help: number[] = []
  for (let i = 0; i < opts.helpRuns; i++) help.push(await timeHelp())
  const net = await BenchNetwork.create(progress)
  try {
    const install = await net.release({ manifest: {} })
    // start-to-ready of a lone daemon, each time in a fresh directory
    const control: number[] = []
    const ready: number[] = []
    for (let i = 0; i < opts.starts; i++) {
      const t = performance.now()
      const d = await DaemonProcess.start({
        name: `lone-${i}`,
        dataDir: net.ws.file(`lone-${i}`),
        logFile: net.ws.file('logs', `lone-${i}.log`),
        args: ['--trust', net.trustFile, '--config', net.configFile, '--listen', '/ip4/127.0.0.1/tcp/0', '--install', install.file]
      })
      control.push(performance.now() - t)
      while (true) {
        try {
          await d.call({ op: 'get', key: 'x' }, { protocol: 1, timeoutMs: 5000 })
          break
        } catch {
          await sleep(20)
        }
      }
      ready.push(performance.now() - t)
      await d.stop()
    }
    progress(`  footprint: start to control API ${Math.round(median(control))} ms, to a served request ${Math.round(median(ready))} ms; --help ${Math.round(median(help))} ms`)
    // memory on a small network, as it always was measured (each connection adds to it)
    const peers = MEMORY_PEERS
    await net.start(peers, install)
    await sleep(3000)
    const memory = await idleOf(net, opts.idleMs)
    const appRss = net.peers.flatMap(p => childrenOf(p.pid as number)).map(rssMB).filter((x): x is number => x != null)
    const uss = net.peers.map(p => ussMB(p.pid as number)).filter((x): x is number => x != null)
    await Promise.all(net.peers.splice(0).map(async p => { await p.stop() }))
    // the same, with V8's young generation kept small (an option of node, not of upgossip)
    const tuned = await BenchNetwork.create(progress)
    let tunedRss: number | null = null
    try {
      await tuned.start(peers, await tuned.release({ manifest: {} }), () => [], { NODE_OPTIONS: '--max-semi-space-size=1' })
      await sleep(3000)
      tunedRss = (await idleOf(tuned, Math.min(opts.idleMs, 20_000))).rssMB
    } finally {
      await tuned.close()
    }
    // CPU on networks of the sizes the targets name, each left to settle after its start
    const settleMs = opts.settleMs ?? 15_000
    const idleByPeers: IdleNetwork[] = []
    for (const n of opts.idlePeers ?? [10]) {
      const idleNet = await BenchNetwork.create(progress)
      try {
        await idleNet.start(n, await idleNet.release({ manifest: {} }))
        await sleep(settleMs)
        idleByPeers.push(await idleOf(idleNet, opts.idleMs))
        progress(`  footprint: ${n} idle daemons, ${idleByPeers.at(-1)?.cpuPercent ?? '?'} % of a CPU each`)
      } finally {
        await idleNet.close()
      }
    }
    const idle = idleByPeers[0] ?? memory
    const result: FootprintResult = {
      idleRssMB: memory.rssMB,
      idleUssMB: uss.length === 0 ? null : median(uss),
      idleRssSmallYoungGenMB: tunedRss,
      appRssMB: appRss.length === 0 ? null : median(appRss),
      idleCpuPercent: idle.cpuPercent,
      idlePeers: idle.peers,
      idleSeconds: idle.seconds,
      idleByPeers,
      settleMs,
      startToControlMs: Math.round(median(control)),
      startToReadyMs: Math.round(median(ready)),
      helpMs: Math.round(median(help))
    }
    progress(`  footprint: idle daemon ${result.idleRssMB ?? '?'} MB RSS, ${result.idleUssMB ?? '?'} MB its own (its app ${result.appRssMB ?? '?'} MB) in a ${peers}-peer network, ${result.idleCpuPercent ?? '?'} % CPU in a ${result.idlePeers}-peer one; ${result.idleRssSmallYoungGenMB ?? '?'} MB RSS with --max-semi-space-size=1`)
    return result
  } finally {
    await net.close()
  }
}

/** Idle CPU and RSS of every daemon of a running network, measured over `ms`. */
/**
 * Idle CPU and RSS of every daemon of a running network, over `ms`. RSS moves with the
 * garbage collector: it is sampled every second, each daemon's median taken, then the
 * median over the daemons.
 */
export async function idleOf (net: BenchNetwork, ms: number): Promise<{ peers: number, seconds: number, cpuPercent: number | null, rssMB: number | null }> {
  const pids = net.peers.map(p => p.pid as number)
  const before = pids.map(cpuSeconds)
  const samples: number[][] = pids.map(() => [])
  const t0 = performance.now()
  while (performance.now() - t0 < ms) {
    await sleep(Math.min(1000, Math.max(0, ms - (performance.now() - t0))))
    pids.forEach((pid, i) => { const r = rssMB(pid); if (r != null) samples[i]?.push(r) })
  }
  const seconds = (performance.now() - t0) / 1000
  const cpu = pids.map((pid, i) => { const a = before[i]; const b = cpuSeconds(pid); return a == null || b == null ? NaN : 100 * (b - a) / seconds })
  const rss = samples.filter(x => x.length > 0).map(median)
  return { peers: pids.length, seconds: round(seconds, 1), cpuPercent: cpu.some(Number.isNaN) ? null : round(median(cpu), 2), rssMB: rss.length === 0 ? null : median(rss) }
}
