/**
 * What idle daemons cost: N daemons of the demo app on loopback, nothing published; after
 * a settling time, their CPU (user and system, from /proc), RSS and connections over a
 * measured stretch. With `--profile DIR` every daemon runs under `node --cpu-prof` and is
 * stopped right after the stretch, so the stretch is the end of each profile:
 *
 *   node scripts/idle.ts --peers 25 --profile /tmp/idle
 *   node scripts/profile-summary.ts /tmp/idle/*.cpuprofile --last 30 --merge
 *
 * Usage: node scripts/idle.ts [--peers N] [--settle SECONDS] [--seconds SECONDS]
 *        [--beat MS] [--idle-beat MS] [--profile DIR] [--json]
 */
import fs from 'node:fs'
import path from 'node:path'
import { BenchNetwork, sleep } from './bench/network.ts'
import { median, round } from './bench/stats.ts'
import { cpuTimes, rssMB } from './bench/footprint.ts'

const HELP = `usage: node scripts/idle.ts [--peers N] [--settle SECONDS] [--seconds SECONDS] [--beat MS] [--idle-beat MS] [--profile DIR] [--json]

Starts N daemons (default 25) on 127.0.0.1, lets them settle (default 20 s), then measures
their CPU (user and system time from /proc), RSS and connections for --seconds (default 30).
--beat sets the daemons' beat interval (default: the daemon's own, 5 s), --idle-beat their
idle beat interval (idleBeatInterval; default: the daemon's own). With --profile DIR
the daemons run under node --cpu-prof and stop right after the measured stretch; summarise
that stretch with: node scripts/profile-summary.ts DIR/*.cpuprofile --last SECONDS --merge`

async function main (argv: string[]): Promise<void> {
  let peers = 25
  let settle = 20
  let seconds = 30
  let beat: number | undefined
  let idleBeat: number | undefined
  let profile: string | undefined
  let json = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    const value = (): number => {
      const n = Number(argv[++i])
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${a} needs a positive number`)
      return n
    }
    switch (a) {
      case '--peers': peers = value(); break
      case '--settle': settle = value(); break
      case '--seconds': seconds = value(); break
      case '--beat': beat = value(); break
      case '--idle-beat': idleBeat = value(); break
      case '--profile': profile = path.resolve(argv[++i] ?? '.'); break
      case '--json': json = true; break
      case '--help': case '-h': process.stdout.write(HELP + '\n'); return
      default: throw new Error(`unknown option ${a}`)
    }
  }
  const progress = (line: string): void => { process.stderr.write(line + '\n') }
  const net = await BenchNetwork.create(progress, ['kv'], { ...(beat == null ? {} : { beatInterval: `${beat}ms` }), ...(idleBeat == null ? {} : { idleBeatInterval: `${idleBeat}ms` }) })
  process.once('SIGINT', () => { void net.close().then(() => process.exit(130)) })
  try {
    if (profile != null) fs.mkdirSync(profile, { recursive: true })
    const install = await net.release({ manifest: {} })
    await net.start(peers, install, () => [], profile == null ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profile}` })
    progress(`settling ${settle} s…`)
    await sleep(settle * 1000)
    const pids = net.peers.map(p => p.pid as number)
    const metricsBefore = await allMetrics(net)
    const before = pids.map(cpuTimes)
    progress(`measuring ${seconds} s…`)
    const rss: number[][] = pids.map(() => [])
    const t0 = performance.now()
    while (performance.now() - t0 < seconds * 1000) {
      await sleep(1000)
      pids.forEach((pid, i) => { const r = rssMB(pid); if (r != null) rss[i]?.push(r) })
    }
    const wall = (performance.now() - t0) / 1000
    const after = pids.map(cpuTimes)
    const traffic = trafficOf(metricsBefore, await allMetrics(net), wall)
    const statuses = await Promise.all(net.peers.map(async p => await p.status().catch(() => null)))
    const per = pids.map((_, i) => {
      const a = before[i]
      const b = after[i]
      return {
        user: a == null || b == null ? NaN : 100 * (b.user - a.user) / wall,
        system: a == null || b == null ? NaN : 100 * (b.system - a.system) / wall,
        connections: statuses[i]?.connections ?? NaN,
        rssMB: median(rss[i] ?? [])
      }
    })
    const result = {
      peers,
      beatMs: beat ?? null,
      idleBeatMs: idleBeat ?? null,
      seconds: round(wall, 1),
      cpuPercent: { median: round(median(per.map(p => p.user + p.system)), 2), user: round(median(per.map(p => p.user)), 2), system: round(median(per.map(p => p.system)), 2), max: round(Math.max(...per.map(p => p.user + p.system)), 2) },
      cpusTotal: round(per.reduce((s, p) => s + p.user + p.system, 0) / 100, 2),
      connections: { median: median(per.map(p => p.connections)), max: Math.max(...per.map(p => p.connections)) },
      rssMB: round(median(per.map(p => p.rssMB)), 1),
      perDaemonPerSecond: traffic
    }
    if (json) process.stdout.write(JSON.stringify(result) + '\n')
    else {
      process.stdout.write(`${peers} idle daemons over ${result.seconds} s: ${result.cpuPercent.median} % of a CPU each (user ${result.cpuPercent.user}, system ${result.cpuPercent.system}; max ${result.cpuPercent.max}), ${result.cpusTotal} CPUs in all; ${result.connections.median} connections each (max ${result.connections.max}); RSS ${result.rssMB} MB\n`)
      process.stdout.write(`per daemon and second: ${Object.entries(traffic).map(([k, v]) => `${k} ${v}`).join(', ')}\n`)
    }
  } finally {
    await net.close()
  }
}

/** Every daemon's metrics by series (name and labels); null for a daemon that did not answer. */
async function allMetrics (net: BenchNetwork): Promise<Array<Map<string, number> | null>> {
  return await Promise.all(net.peers.map(async p => {
    try {
      return new Map((await net.metrics(p)).map(s => [`${s.name}${JSON.stringify(s.labels)}`, s.value]))
    } catch {
      return null
    }
  }))
}

/**
 * What an idle daemon handles, per daemon and second: gossip messages taken in by topic and
 * verdict (copies dropped before validation are not counted), bytes by protocol or topic,
 * syncs; over the daemons whose metrics were read both times (a busy daemon may not answer).
 */
function trafficOf (before: Array<Map<string, number> | null>, after: Array<Map<string, number> | null>, seconds: number): Record<string, number> {
  const sum: Record<string, number> = {}
  let daemons = 0
  before.forEach((b, i) => {
    const a = after[i]
    if (b == null || a == null) return
    daemons++
    for (const [key, value] of a) {
      const match = /^(upgossip_gossip_messages_total|upgossip_bytes_total|upgossip_syncs_total)(\{.*\})$/.exec(key)
      if (match == null) continue
      const labels = JSON.parse(match[2] as string) as Record<string, string>
      const name = match[1] === 'upgossip_bytes_total' ? `bytes ${labels.direction ?? ''} ${labels.protocol ?? ''}` : match[1] === 'upgossip_syncs_total' ? `syncs ${labels.result ?? ''}` : `${(labels.topic ?? '')} ${labels.result ?? ''}`
      sum[name] = (sum[name] ?? 0) + value - (b.get(key) ?? 0)
    }
  })
  return Object.fromEntries(Object.entries(sum).filter(([, v]) => v !== 0).map(([k, v]) => [k, round(v / Math.max(1, daemons) / seconds, 3)]))
}

main(process.argv.slice(2)).catch(err => {
  process.stderr.write(`idle: ${(err as Error).message}\n`)
  process.exit(1)
})
