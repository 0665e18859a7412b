/**
 * The testnet's scenarios: each starts the network, drives releases through it while the
 * load runs, checks its own point, and returns the version every peer must end on.
 */
import fs from 'node:fs/promises'
import { ControlCallError, sleep } from './daemon-process.js'
import { MemorySampler, mostGrowth } from './memory.js'
import type { DaemonProcess } from './daemon-process.js'
import { classes } from './classes.js'
import { polyglot } from './polyglot.js'
import { mostAtOnce, waitRelease } from './scenario-kit.js'
import type { Scenario } from './scenario-kit.js'
import type { Testnet } from './testnet.js'
import { upgradeTimes } from './testnet.js'
import type { TestnetRelease } from './workspace.js'

export type { Scenario } from './scenario-kit.js'

const CANARY = { rule: 'canary', fraction: 0.25, soak: '5s' }
const SOAK_MS = 5000

/** Release `major` built again until `avoid` is not one of its canaries (ranks depend on the release id). */
async function releaseSparing (net: Testnet, major: number, avoid: DaemonProcess): Promise<TestnetRelease> {
  for (let i = 0; ; i++) {
    const release = await net.release(major)
    if (!net.canaries(release, CANARY.fraction).includes(avoid) || i >= 20) return release
    await sleep(5)
  }
}

/** Check that the canaries of `release` switched first and the others only after the soak. */
async function checkCanariesFirst (net: Testnet, release: TestnetRelease, canaries: DaemonProcess[]): Promise<void> {
  await net.checkThat(`canaries switched to ${release.version} first, the rest after the ${SOAK_MS / 1000} s soak`, async () => {
    const histories = await net.histories()
    const committed = canaries.map(c => upgradeTimes(histories.get(c) ?? [], release.id).committed)
    if (committed.some(t => t == null)) throw new Error(`a canary (${canaries.map(c => c.name).join(', ')}) has no committed upgrade to ${release.version}`)
    const lastCanary = Math.max(...committed as number[])
    const early: string[] = []
    for (const [peer, events] of histories) {
      if (canaries.includes(peer)) continue
      const started = upgradeTimes(events, release.id).started
      // the soak counts from the canary's beat after its commit: allow one beat of slack
      if (started == null || started < lastCanary + SOAK_MS - 1000) early.push(`${peer.name} started ${started == null ? 'never' : `${started - lastCanary} ms after the last canary`}`)
    }
    if (early.length > 0) throw new Error(early.join('; '))
    return `canaries ${canaries.map(c => c.name).join(', ')}; the other ${histories.size - canaries.length} started ≥ ${SOAK_MS / 1000} s after them`
  })
}

const rolling: Scenario = {
  name: 'rolling',
  summary: 'v1 → v2 one peer at a time (rolling), then v2 → v3 canaries first; the last peer waits for approval so old and new talk across versions',
  async run (net) {
    const n = net.options.peers
    const policy = net.ws.file('approve-policy.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'approve' }] }))
    await net.startNetwork(n, await net.release(1), i => i === n - 1 ? ['--policy', policy, '--label', 'role=holdout'] : [])
    const holdout = net.peer(`peer-${n}`)
    const others = net.peers.filter(p => p !== holdout)

    const v2 = await net.release(2)
    await net.publish(v2)
    await net.waitVersion('2.0.0', others)
    await waitRelease(net, holdout, v2, ['waiting'], 'approve')
    await net.checkThat('a v1 peer and v2 peers read each other (past and future SOs)', async () => {
      return [await net.readAcross(holdout, 1, others[0] as DaemonProcess), await net.readAcross(others[0] as DaemonProcess, 2, holdout)].join('; ')
    })
    net.monitor.note('approve', `approve ${v2.version} on ${holdout.name}`)
    await holdout.api('POST', `/approve/${v2.id}`)
    await net.waitVersion('2.0.0')
    const most = mostAtOnce(await net.histories(), v2)
    net.check('rolling: at most one peer switched to 2.0.0 at a time', most === 1, `${most} at most at once`)

    const v3 = await releaseSparing(net, 3, holdout)
    const canaries = net.canaries(v3, CANARY.fraction)
    await net.publish(v3)
    await net.waitVersion('3.0.0', canaries)
    await net.checkThat("v3's new operation (incr) works on a v2 peer through v3's future SO", async () => {
      const canary = canaries[0] as DaemonProcess
      const a = await canary.call({ cmd: ['incr', 'counter', 5] }, { peer: holdout.peerId })
      const b = await holdout.call({ cmd: ['incr', 'counter', 2] }, { protocol: 3 })
      const c = await holdout.call({ action: 'fetch', k: 'counter' })
      if (JSON.stringify([a, b, c]) !== JSON.stringify([{ ok: 5 }, { ok: 7 }, { result: 7 }])) throw new Error(`got ${JSON.stringify([a, b, c])}`)
      return `${canary.name} (v3) incr on ${holdout.name} (v2) → 5, a local v3 incr → 7, v2 fetch → 7; ${await net.readAcross(holdout, 2, canary)}`
    })
    await waitRelease(net, holdout, v3, ['waiting'])
    net.monitor.note('approve', `approve ${v3.version} on ${holdout.name}`)
    await holdout.api('POST', `/approve/${v3.id}`)
    await net.waitVersion('3.0.0')
    await checkCanariesFirst(net, v3, canaries)
    return '3.0.0'
  }
}

const canary: Scenario = {
  name: 'canary',
  summary: 'v1 → v2 with a canary rule: the lowest-ranked quarter switches, soaks 5 s, then everyone else',
  async run (net) {
    await net.startNetwork(net.options.peers, await net.release(1))
    const v2 = await net.release(2, { schedule: [CANARY] })
    const canaries = net.canaries(v2, CANARY.fraction)
    net.monitor.note('canaries', `canaries for 2.0.0: ${canaries.map(c => c.name).join(', ')}`)
    await net.publish(v2)
    await net.waitVersion('2.0.0')
    await checkCanariesFirst(net, v2, canaries)
    return '2.0.0'
  }
}

const broken: Scenario = {
  name: 'broken',
  summary: 'v3 → a broken v4 whose transform fails on the canary: it rolls back, the rollout halts, every peer keeps serving',
  async run (net) {
    await net.startNetwork(net.options.peers, await net.release(3))
    // let the load write its keys (with slashes, which v4's transform chokes on)
    await sleep(1000)
    const v4 = await net.release(4)
    const canaries = net.canaries(v4, CANARY.fraction)
    const rest = net.peers.filter(p => !canaries.includes(p))
    await net.publish(v4)
    for (const c of canaries) await waitRelease(net, c, v4, ['rolled-back', 'failed'])
    await net.waitVersion('3.0.0')
    await net.checkThat('the broken release failed on its canary and rolled back', async () => {
      const reasons = []
      for (const c of canaries) reasons.push(`${c.name}: ${(await c.status()).releases.find(r => r.id === v4.id)?.reason ?? 'no reason given'}`)
      return reasons.join('; ')
    })
    for (const p of rest) await waitRelease(net, p, v4, ['waiting'], 'halt-on-failures')
    // past the soak, when the canary rule alone would have let them go
    await sleep(SOAK_MS + 2000)
    await net.checkThat('the rollout halted: no other peer tried 4.0.0', async () => {
      const histories = await net.histories()
      const tried = rest.filter(p => upgradeTimes(histories.get(p) ?? [], v4.id).started != null)
      if (tried.length > 0) throw new Error(`${tried.map(p => p.name).join(', ')} started 4.0.0`)
      const states = await Promise.all(rest.map(async p => (await p.status()).releases.find(r => r.id === v4.id)))
      const notHalted = rest.filter((_, i) => states[i]?.waitingOn !== 'halt-on-failures')
      if (notHalted.length > 0) throw new Error(`${notHalted.map(p => p.name).join(', ')} not waiting on halt-on-failures`)
      return `${rest.length} peers wait on halt-on-failures`
    })
    return '3.0.0'
  }
}

const partition: Scenario = {
  name: 'partition',
  summary: 'a peer is stopped while v2 and v3 are published; started again, it catches up step by step',
  async run (net) {
    const n = net.options.peers
    await net.startNetwork(n, await net.release(1))
    const away = net.peer(`peer-${n}`)
    const others = net.peers.filter(p => p !== away)
    await net.load.pause(away)
    net.monitor.note('stop', `stop ${away.name}`)
    await away.stop()
    const v2 = await net.release(2)
    await net.publish(v2)
    await net.waitVersion('2.0.0', others)
    const v3 = await net.release(3)
    await net.publish(v3)
    await net.waitVersion('3.0.0', others)
    net.monitor.note('restart', `start ${away.name} again`)
    const back = await net.startPeer(away.name, [])
    await net.waitVersion('3.0.0', [back])
    net.load.add(back)
    await net.checkThat(`${away.name} caught up through 2.0.0 to 3.0.0`, async () => {
      const history = await back.history() as Array<{ time: string, type: string, to?: string }>
      const t2 = upgradeTimes(history, v2.id).committed
      const t3 = upgradeTimes(history, v3.id).committed
      if (t2 == null || t3 == null || t2 > t3) throw new Error(`history: ${history.map(e => e.type).join(', ')}`)
      return `committed 2.0.0, then 3.0.0 ${t3 - t2} ms later`
    })
    return '3.0.0'
  }
}

const lateJoin: Scenario = {
  name: 'late-join',
  summary: 'after v1 → v2, a new peer joins with --app kv and no code, and installs the newest release',
  async run (net) {
    const n = net.options.peers
    await net.startNetwork(n, await net.release(1))
    const v2 = await net.release(2)
    await net.publish(v2)
    await net.waitVersion('2.0.0')
    net.monitor.note('join', `peer-${n + 1} joins with --app kv`)
    const late = await net.startPeer(`peer-${n + 1}`, ['--app', 'kv'])
    await net.waitVersion('2.0.0', [late])
    await net.seed(late)
    net.load.add(late)
    await net.checkThat('the late joiner installed the newest release directly', async () => {
      // the event log is written just after the state that status reports: wait for it
      let history: Array<{ type: string, id?: string, message?: string }> = []
      await net.waitUntil(`${late.name}'s history to show the install`, async () => {
        history = await late.history() as typeof history
        return history.some(e => e.type === 'installed')
      })
      const upgrades = history.filter(e => e.type.startsWith('upgrade-'))
      const installed = history.filter(e => e.type === 'installed')
      if (installed.length !== 1 || installed[0]?.id !== v2.id || upgrades.length > 0) throw new Error(`history: ${history.map(e => e.type).join(', ')}`)
      return installed[0]?.message ?? ''
    })
    return '2.0.0'
  }
}

const threshold: Scenario = {
  name: 'threshold',
  summary: 'trust needs 2 of 3 publishers: v2 signed by one is refused, co-signed by a second it rolls out',
  trust: [3, 2],
  async run (net) {
    await net.startNetwork(net.options.peers, await net.release(1, {}, [0, 1]))
    const once = await net.release(2, {}, [0])
    await net.checkThat('a release signed by 1 of 3 publishers is refused', async () => {
      try {
        await net.publish(once)
      } catch (err) {
        if (err instanceof ControlCallError && err.remote === 'ThresholdNotMetError') return `${err.remote}: ${err.message.replace(/^peer-1: POST \/publish: /, '')}`
        throw err
      }
      throw new Error('peer-1 accepted it')
    })
    await sleep(3000)
    await net.checkThat('no peer took the under-signed release', async () => {
      for (const p of net.peers) {
        const s = await p.status()
        const r = s.releases.find(x => x.id === once.id)
        if (s.version !== '1.0.0' || (r != null && r.state !== 'refused')) throw new Error(`${p.name} runs ${s.version ?? 'none'}${r == null ? '' : `, 2.0.0 is ${r.state}`}`)
      }
      return `all ${net.peers.length} still run 1.0.0 after 3 s`
    })
    const twice = await once.coSigned(net.ws.keys[1] as NonNullable<typeof net.ws.keys[1]>)
    await net.publish(twice)
    await net.waitVersion('2.0.0')
    await net.checkThat('co-signed by a second publisher, it rolls out', async () => {
      const r = (await (net.peers.at(-1) as DaemonProcess).status()).releases.find(x => x.id === twice.id)
      return `${r?.signers ?? 0} signatures on ${(net.peers.at(-1) as DaemonProcess).name}; same release id ${twice.id.slice(-8)}`
    })
    return '2.0.0'
  }
}

const revoke: Scenario = {
  name: 'revoke',
  summary: 'v1 → v2, then v2 is revoked: every peer rolls back to v1 and keeps what was written on v2',
  async run (net) {
    await net.startNetwork(net.options.peers, await net.release(1))
    const v2 = await net.release(2)
    await net.publish(v2)
    await net.waitVersion('2.0.0')
    const written = new Map<DaemonProcess, string>()
    for (const p of net.peers) {
      const value = `written on 2.0.0 by ${p.name}`
      await p.call(net.codec.put(`during-v2-${p.name}`, value), { protocol: net.codec.protocol })
      written.set(p, value)
    }
    net.monitor.note('revoke', `revoke kv ${v2.version}`)
    await (net.peers[0] as DaemonProcess).api('POST', '/revoke', await net.ws.revocation(v2, 'testnet: revoke scenario'))
    await net.waitVersion('1.0.0')
    await net.checkThat('the revoked release is revoked on every peer', async () => {
      for (const p of net.peers) {
        const r = (await p.status()).releases.find(x => x.id === v2.id)
        if (r?.state !== 'revoked') throw new Error(`${p.name}: 2.0.0 is ${r?.state ?? 'unknown'}`)
      }
      return `${net.peers.length} peers back on 1.0.0`
    })
    await net.checkThat('writes made on 2.0.0 survive the rollback (down transform)', async () => {
      for (const [p, value] of written) {
        const got = net.codec.value(await p.call(net.codec.get(`during-v2-${p.name}`), { protocol: net.codec.protocol }))
        if (got !== value) throw new Error(`${p.name}: got ${JSON.stringify(got)}`)
      }
      return `${written.size} keys read back on 1.0.0`
    })
    return '1.0.0'
  }
}

/** Most growth of one daemon's mean RSS from the second quarter of a soak to its last that still counts as flat. */
const SOAK_GROWTH_LIMIT_PCT = 15

const soak: Scenario = {
  name: 'soak',
  summary: 'for --minutes: 1.0.0 → 2.0.i → revoked → back to 1.0.0, again and again under load, sampling daemon memory',
  async run (net) {
    const minutes = net.options.soakMinutes ?? 10
    await net.startNetwork(net.options.peers, await net.release(1))
    // every 5 s, or often enough for 16 samples in a short soak
    const sampler = new MemorySampler(() => net.peers, () => net.elapsed(), Math.max(500, Math.min(5000, Math.floor(minutes * 60_000 / 16))))
    sampler.start()
    const deadline = Date.now() + minutes * 60_000
    let cycles = 0
    try {
      // bounded: at most one cycle per few seconds, and never more than 10,000
      while (Date.now() < deadline && cycles < 10_000) {
        cycles++
        const release = await net.release(2, { version: `2.0.${cycles}` })
        await net.publish(release)
        await net.waitVersion(release.version)
        net.monitor.note('revoke', `cycle ${cycles}: revoke kv ${release.version}`)
        await (net.peers[0] as DaemonProcess).api('POST', '/revoke', await net.ws.revocation(release, `soak cycle ${cycles}`))
        await net.waitVersion('1.0.0')
      }
    } finally {
      net.memory = sampler.stop()
    }
    net.check(`soak: ${cycles} cycles of upgrade and revocation in ${minutes} min`, cycles >= 1, `${cycles} × (1.0.0 → 2.0.i → revoked → 1.0.0) on ${net.peers.length} peers`)
    const m = net.memory
    // each daemon on its own: the mean over all of them would hide one that grows among flat ones
    const worst = mostGrowth(m)
    net.check('soak: daemon memory shows no growth trend', m.samples.length >= 8 && worst != null && worst.growthPct <= SOAK_GROWTH_LIMIT_PCT,
      m.samples.length < 8 || worst == null
        ? `only ${m.samples.length} memory samples (run longer)`
        : `mean RSS ${m.earlyMb} MiB after warm-up, ${m.lateMb} MiB at the end (${m.growthPct} %); most growth: ${worst.name} ${worst.earlyMb} → ${worst.lateMb} MiB (${worst.growthPct} %, limit ${SOAK_GROWTH_LIMIT_PCT} % per daemon)`)
    return '1.0.0'
  }
}

/** Every scenario, by name; `rolling` is the default. */
export const SCENARIOS: Record<string, Scenario> = Object.fromEntries([rolling, canary, broken, partition, lateJoin, threshold, revoke, polyglot, classes, soak].map(s => [s.name, s]))
