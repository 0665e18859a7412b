/**
 * `npm run chaos -- --minutes N --seed S [--peers N] [--json] [--keep] [--loopback]`: real
 * daemons run the demo app (kv) under client writes through a rolling upgrade (2.0.0), a
 * canary upgrade (3.0.0) and the revocation of 3.0.0, while a seeded nemesis kills daemons
 * and apps, crashes switches, pauses processes, jumps clocks and — in network namespaces,
 * as root — cuts peers off, slows their links and fills their disks. Then everything heals
 * and a checker reads back every acknowledged write and checks that every peer runs 2.0.0.
 * Exit 0 when nothing was lost and the network converged, 1 otherwise, 2 on a usage error.
 * docs/chaos.md says more.
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Workspace, pollUntil, sleep } from '#src/testnet/index.js'
import type { TestnetRelease } from '#src/testnet/workspace.js'
import { awaitConvergence, readAll } from './chaos/checker.ts'
import { Clients } from './chaos/clients.ts'
import { Cluster } from './chaos/cluster.ts'
import { LoopbackHosts, NamespaceHosts, namespacesUnavailable } from './chaos/hosts.ts'
import type { Hosts } from './chaos/hosts.ts'
import { Nemesis } from './chaos/nemesis.ts'
import { LOOPBACK_KINDS, makePlan } from './chaos/plan.ts'
import type { Milestone } from './chaos/plan.ts'
import { chaosReport, formatChaosReport } from './chaos/report.ts'

const HELP = `usage: npm run chaos -- [--minutes N] [--seed S] [--peers N] [--json] [--keep] [--loopback] [--converge-within SECONDS]

  --minutes N    how long the nemesis strikes while clients write (default 2)
  --seed S       the plan's seed (an integer, default 7): the same seed replays the same plan
  --peers N      daemons (default 4, at least 3)
  --json         print the report as JSON on stdout (progress stays on stderr)
  --keep         keep the workspace and the daemons' logs (kept anyway when the run fails)
  --loopback     every daemon on loopback even as root (process and clock faults only)
  --converge-within SECONDS   how long healing may take (default 180)
  --plan         print the plan this seed gives on this machine (JSON) and exit

Exit 0: no acknowledged write lost and every peer on the release it should run; 1 otherwise.`

function usage (message: string): never {
  process.stderr.write(`chaos: ${message}\n${HELP}\n`)
  process.exit(2)
}

let opts
try {
  opts = parseArgs({
    options: {
      minutes: { type: 'string', default: '2' },
      seed: { type: 'string', default: '7' },
      peers: { type: 'string', default: '4' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      loopback: { type: 'boolean', default: false },
      'converge-within': { type: 'string', default: '180' },
      plan: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    }
  }).values
} catch (err) {
  usage((err as Error).message)
}
if (opts.help) {
  process.stdout.write(HELP + '\n')
  process.exit(0)
}
const minutes = Number(opts.minutes)
const seed = Number(opts.seed)
const peers = Number(opts.peers)
const convergeMs = Number(opts['converge-within']) * 1000
if (!(minutes > 0 && minutes <= 24 * 60)) usage(`--minutes ${opts.minutes} is not a number of minutes`)
if (!Number.isInteger(seed)) usage(`--seed ${opts.seed} is not an integer`)
if (!Number.isInteger(peers) || peers < 3 || peers > 12) usage(`--peers ${opts.peers}: between 3 and 12`)
if (!(convergeMs > 0)) usage(`--converge-within ${opts['converge-within']} is not a number of seconds`)

if (opts.plan) {
  const reason = opts.loopback ? '--loopback' : namespacesUnavailable()
  process.stdout.write(JSON.stringify(makePlan({ seed, peers, minutes, kinds: reason == null ? NamespaceHosts.kindsHere() : LOOPBACK_KINDS }), null, 2) + '\n')
  process.exit(0)
}

const began = Date.now()
const elapsed = (): number => Date.now() - began
const note = (line: string): void => { process.stderr.write(`chaos: ${line}\n`) }

const ws = await Workspace.create()
const unavailable = opts.loopback ? '--loopback' : namespacesUnavailable()
let hosts: Hosts | undefined
let cluster: Cluster | undefined
let cleaned = false

/** Stop every daemon, undo every namespace, link and mount, and remove the workspace unless kept. */
async function cleanup (keep: boolean): Promise<void> {
  if (cleaned) return
  cleaned = true
  await cluster?.stop().catch(() => {})
  await hosts?.remove().catch(() => {})
  if (!keep) await ws.remove()
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    note(`${signal}: cleaning up`)
    void cleanup(opts.keep).finally(() => process.exit(130))
  })
}

try {
  hosts = unavailable == null ? await NamespaceHosts.create(ws.root, peers) : new LoopbackHosts(ws.root, unavailable)
  const plan = makePlan({ seed, peers, minutes, kinds: hosts.kinds })
  note(`${hosts.mode} mode; the plan (seed ${seed}): ${plan.strikes.length} strikes over ${plan.windowMs / 1000} s`)
  for (const s of plan.strikes) note(`  plan ${(s.at / 1000).toFixed(1).padStart(6)} s  ${s.kind.padEnd(16)} ${s.target} for ${(s.holdMs / 1000).toFixed(1)} s${s.detail == null ? '' : ` (${s.detail})`}`)
  for (const n of hosts.notes) note(n)

  const trust = await ws.writeTrust(1, 1)
  const config = await ws.writeConfig({ beatInterval: '1s', peerTimeout: '8s', minConnections: peers - 1, fetchRetry: '2s' })
  const releases = new Map<number, TestnetRelease>()
  for (const major of [1, 2, 3]) releases.set(major, await ws.release(major))
  const v1 = releases.get(1) as TestnetRelease
  cluster = new Cluster(ws, hosts, { trust, config })
  const c = cluster

  note(`starting ${peers} daemons on kv 1.0.0`)
  await c.add(0, v1.file)
  await Promise.all(Array.from({ length: peers - 1 }, async (_, i) => await c.add(i + 1, v1.file)))
  const ready = await pollUntil('every peer to run 1.0.0 and see the others', async () => {
    const all = await Promise.all(c.peers.map(async p => await p.proc.status()))
    return all.every(s => s.version === '1.0.0' && s.state === 'running' && s.network.length >= peers - 1)
  }, 120_000, 500)
  if (ready != null) throw new Error(ready)

  const nemesis = new Nemesis({ cluster: c, hosts, elapsed, note })
  const clients = new Clients({ cluster: c, elapsed, tag: randomBytes(4).toString('hex') })
  clients.start()
  const done: Milestone[] = []
  const milestone = async (m: Milestone): Promise<void> => {
    const release = releases.get(m.major) as TestnetRelease
    const target = `kv@${release.version}`
    // through the first live peer that takes it (a peer may be down or cut off just then)
    for (let round = 0; round < 20; round++) {
      for (const p of c.live()) {
        try {
          if (m.action === 'publish') await p.proc.api('POST', '/publish', release.bytes, 20_000)
          else await p.proc.api('POST', '/revoke', await ws.revocation(release, `chaos seed ${seed}`), 20_000)
          nemesis.record({ kind: m.action, target, planned: m.at, detail: `through ${p.slot.name}` })
          done.push(m)
          return
        } catch {}
      }
      await sleep(1000)
    }
    nemesis.record({ kind: 'nemesis-error', target, detail: `${m.action} found no peer that took it` })
  }

  note(`chaos for ${minutes} min: clients write, the nemesis strikes`)
  const windowStart = Date.now()
  const timeline = [...plan.milestones.map(m => ({ at: m.at, go: () => milestone(m) })), ...plan.strikes.map(s => ({ at: s.at, go: async () => { nemesis.strike(s) } }))].sort((a, b) => a.at - b.at)
  const pending: Array<Promise<void>> = []
  for (const step of timeline) {
    const wait = windowStart + step.at - Date.now()
    if (wait > 0) await sleep(wait)
    pending.push(step.go())
  }
  const left = windowStart + plan.windowMs - Date.now()
  if (left > 0) await sleep(left)
  await Promise.all(pending)
  note('healing: every fault ends, every daemon up')
  await nemesis.healAll()
  await clients.stop()

  const revoked = done.some(m => m.action === 'revoke')
  const newest = Math.max(1, ...done.filter(m => m.action === 'publish').map(m => m.major))
  const expected = `${revoked && newest === 3 ? 2 : newest}.0.0`
  note(`waiting up to ${convergeMs / 1000} s for every peer to run ${expected}`)
  const convergence = await awaitConvergence(c, expected, convergeMs)
  note(`reading back ${clients.acked.length} acknowledged writes`)
  const lost = await readAll(c, clients.acked)
  const failedRun = lost.length > 0 || !convergence.converged
  const keep = opts.keep || failedRun
  const report = chaosReport({
    plan,
    mode: hosts.mode,
    notes: hosts.notes,
    durationMs: elapsed(),
    counts: nemesis.counts,
    events: nemesis.events,
    acked: clients.acked,
    attempted: clients.attempted,
    failed: clients.failed,
    lost,
    convergence,
    ...(keep ? { logs: c.logDir } : {})
  })
  await cleanup(keep)
  process.stderr.write(formatChaosReport(report) + '\n')
  if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  process.exitCode = failedRun ? 1 : 0
} catch (err) {
  note(`the run failed: ${(err as Error).stack ?? String(err)}`)
  await cleanup(true)
  note(`workspace kept: ${ws.root}`)
  process.exitCode = 1
}
