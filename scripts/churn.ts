/**
 * `npm run churn` — many small releases in a row, to see whether a daemon's disk and
 * memory level off: one publisher releases N versions of the churn app (each with a
 * transform and simulation objects) to real daemons on loopback, waits until every daemon
 * runs each one, and after every tenth release samples each daemon's bytes on disk by
 * folder and its resident memory. Progress goes to stderr; `--json` prints one object on
 * stdout (its shape: docs/churn.md).
 *
 * @example
 * ```sh
 * npm run churn -- --releases 20
 * npm run -s churn -- --releases 150 --json > churn.json
 * ```
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Testnet } from '#src/testnet/index.js'
import type { DaemonProcess } from '#src/testnet/index.js'
import { churnApp, churnVersion, writeChurnVersion } from './churn/churn-app.ts'
import { sampleDaemon } from './churn/footprint.ts'
import type { ChurnSample } from './churn/footprint.ts'
import { writeReport } from './churn/report.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const HELP = `usage: npm run churn -- --releases N [--peers 3] [--json] [--log-max-bytes BYTES] [--log-files N] [--keep] [--step-timeout SECONDS]
       npm run churn -- --report RUN.json [--out DIR]

One publisher releases N small versions of the churn app in a row (each a new protocol
version with a transform and past and future simulation objects) to real daemons on
loopback, which switch to each one; after every tenth release each daemon's bytes on
disk (blocks, packages, state, logs, total) and its resident memory are sampled.

  --releases N          how many releases to publish (required)
  --peers N             daemons (default 3, at least 2)
  --json                print one JSON object on stdout; progress stays on stderr
  --log-max-bytes B     the daemons' logMaxBytes option (default 65536, the least it takes,
                        so the logs reach their bound within the run; the daemon's own
                        default is 16 MiB)
  --log-files N         the daemons' logFiles option (default 1; the daemon's own is 4):
                        each of events.jsonl and app.log holds at most
                        (N + 1) × logMaxBytes
  --keep                keep the daemons' directory (its path is printed)
  --step-timeout S      the longest one release may take to reach every daemon (default 180)
  --report RUN.json     run nothing: write the charts and the table of a saved run
                        (disk-N.svg, rss-N.svg, table-N.md) into --out (default docs/churn)
  --help                this text`

interface Options {
  releases: number
  peers: number
  json: boolean
  logMaxBytes: number
  logFiles: number
  keep: boolean
  stepTimeoutMs: number
  report?: string
  out: string
}

/** Parse the command line; exits 2 on a usage error, like the CLI. */
function parseArgs (argv: string[]): Options {
  const fail = (message: string): never => {
    process.stderr.write(`churn: ${message}\n${HELP}\n`)
    process.exit(2)
  }
  const int = (a: string, v: string, min: number): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) fail(`${a} takes a whole number of at least ${min}, not ${JSON.stringify(v)}`)
    return n
  }
  const o: Partial<Options> = { peers: 3, json: false, logMaxBytes: 64 * 1024, logFiles: 1, keep: false, stepTimeoutMs: 180_000, out: path.join(ROOT, 'docs', 'churn') }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    const value = (): string => argv[++i] ?? fail(`${a} needs a value`)
    switch (a) {
      case '--releases': o.releases = int(a, value(), 1); break
      case '--peers': o.peers = int(a, value(), 2); break
      case '--json': o.json = true; break
      case '--log-max-bytes': o.logMaxBytes = int(a, value(), 64 * 1024); break
      case '--log-files': o.logFiles = int(a, value(), 1); break
      case '--keep': o.keep = true; break
      case '--step-timeout': o.stepTimeoutMs = int(a, value(), 1) * 1000; break
      case '--report': o.report = value(); break
      case '--out': o.out = value(); break
      case '--help': case '-h': process.stdout.write(HELP + '\n'); process.exit(0); break
      default: fail(`unknown option ${a}`)
    }
  }
  if (o.releases == null && o.report == null) fail('--releases N is required')
  return o as Options
}

/** What `--json` prints. */
export interface ChurnResult {
  releases: number
  samples: ChurnSample[]
  peers: number
  /** The daemons' log options during the run (the logs' share of the disk is their bound). */
  logMaxBytes: number
  logFiles: number
  durationMs: number
  /** Publish → every daemon runs it, per release: median and slowest. */
  switchMs: { p50: number, max: number }
  /** Releases each daemon's history shows an upgrade to committed (N when it switched to every one); read every tenth release, before the bounded event log drops them. */
  switches: Record<string, number>
  /** The data generation each daemon's app state reached (N: every transform ran on it). */
  generations: Record<string, number>
  commit: string
}

function progress (text: string): void {
  process.stderr.write(`[churn] ${text}\n`)
}

const MiB = (n: number): string => (n / 1024 / 1024).toFixed(3)

/** The samples as a table. */
function table (r: ChurnResult): string {
  const head = ['release', 'peer', 'blocks', 'packages', 'state', 'logs', 'records', 'total', 'RSS']
  const rows = r.samples.map(s => [String(s.release), s.peer, MiB(s.disk.blocks), MiB(s.disk.packages), MiB(s.disk.state), MiB(s.disk.logs), MiB(s.disk.records), MiB(s.disk.total), s.rssMB == null ? '-' : s.rssMB.toFixed(1)])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(row => (row[i] as string).length)))
  const line = (cells: string[]): string => cells.map((c, i) => i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)).join('  ')
  return [`${r.releases} releases on ${r.peers} daemons in ${(r.durationMs / 1000).toFixed(0)} s (switch p50 ${r.switchMs.p50} ms, max ${r.switchMs.max} ms); disk in MiB, RSS in MiB; logMaxBytes ${r.logMaxBytes}, logFiles ${r.logFiles}`,
    line(head), ...rows.map(line)].join('\n')
}

async function churn (o: Options): Promise<ChurnResult> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upgossip-churn-'))
  const appDir = path.join(dir, 'churn-app')
  const app = churnApp(appDir + path.sep)
  const net = new Testnet({ peers: o.peers, keep: o.keep, dir, stepTimeoutMs: o.stepTimeoutMs, sink: { write: () => {}, isTTY: false } })
  const began = Date.now()
  const logFiles = o.logFiles
  const commit = commitOf()
  // an interrupted run stops its daemons and removes its directory, as a finished one does
  const interrupted = (): void => {
    progress('interrupted: stopping the daemons')
    net.close().then(async () => { if (!o.keep) await fs.rm(dir, { recursive: true, force: true }) }).finally(() => process.exit(130)).catch(() => {})
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    await net.prepare(1, 1, app)
    // the logs' bound is the option's: small enough here to be reached within the run
    await net.ws.writeConfig({ beatInterval: '1s', peerTimeout: '8s', minConnections: 2, logMaxBytes: o.logMaxBytes, logFiles })
    await writeChurnVersion(appDir, 0)
    progress(`starting ${o.peers} daemons on churn ${churnVersion(0)} in ${dir}`)
    await net.startNetwork(o.peers, await net.release(0), { loaded: () => false })
    // the runner's own view polls every daemon; the churn waits on them itself
    await net.monitor.stop()
    const samples: ChurnSample[] = []
    const took: number[] = []
    const committedTo = new Map<string, Set<string>>(net.peers.map(p => [p.name, new Set()]))
    const readHistories = async (): Promise<void> => {
      for (const p of net.peers) for (const id of await committed(p)) committedTo.get(p.name)?.add(id)
    }
    for (let i = 1; i <= o.releases; i++) {
      await writeChurnVersion(appDir, i)
      const release = await net.release(i)
      const t0 = Date.now()
      await net.publish(release)
      await net.waitVersion(release.version)
      took.push(Date.now() - t0)
      // the workspace's copies are the publisher's, not a daemon's: keep them from piling up
      await fs.rm(release.file, { force: true })
      await fs.rm(net.ws.file('packages', `v${i}`), { recursive: true, force: true })
      if (i % 10 === 0) {
        await readHistories()
        for (const p of net.peers) samples.push(await sampleDaemon(i, p.name, p.init.dataDir, p.pid))
        const mine = samples.slice(-net.peers.length)
        progress(`${i}/${o.releases} ${release.version} on every daemon in ${took.at(-1) ?? 0} ms; ` +
          mine.map(s => `${s.peer} ${MiB(s.disk.total)} MiB disk, ${s.rssMB ?? '-'} MiB RSS`).join('; '))
      } else if (!o.json || i % 5 === 0) {
        progress(`${i}/${o.releases} ${release.version} on every daemon in ${took.at(-1) ?? 0} ms`)
      }
    }
    await readHistories()
    const sorted = [...took].sort((a, b) => a - b)
    return {
      releases: o.releases,
      samples,
      peers: o.peers,
      logMaxBytes: o.logMaxBytes,
      logFiles,
      durationMs: Date.now() - began,
      switchMs: { p50: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0, max: sorted.at(-1) ?? 0 },
      switches: Object.fromEntries([...committedTo].map(([name, ids]) => [name, ids.size])),
      generations: Object.fromEntries(await Promise.all(net.peers.map(async p => [p.name, Number((await p.call({ op: 'generation' }) as { value?: unknown }).value)] as const))),
      commit
    }
  } finally {
    await net.close()
    if (o.keep) progress(`kept running in ${dir}; stop with: kill $(cat ${dir}/pids)`)
    else await fs.rm(dir, { recursive: true, force: true })
  }
}

/** The releases a daemon's history shows a committed upgrade to. */
async function committed (p: DaemonProcess): Promise<string[]> {
  return (await p.history()).filter(e => e.type === 'upgrade-committed').map(e => String(e.to))
}

function commitOf (): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=7', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

const options = parseArgs(process.argv.slice(2))
try {
  if (options.report != null) {
    for (const file of await writeReport(options.report, options.out)) progress(`wrote ${file}`)
    process.exit(0)
  }
  const result = await churn(options)
  if (options.json) process.stdout.write(JSON.stringify(result) + '\n')
  else process.stdout.write(table(result) + '\n')
} catch (err) {
  process.stderr.write(`churn: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
}
