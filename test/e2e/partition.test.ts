/**
 * A network partition between real hosts: two network namespaces joined by a veth pair
 * (root and iproute2 only; skipped with a message otherwise, a failure in CI). Side A runs two daemons,
 * side B two, each listening on its namespace's veth address, bootstrapped across. The
 * link is taken down from side B, a release is published on side A: A upgrades, B does
 * not hear of it; one daemon of B is restarted while cut off (a host rebooted during the
 * partition). The link comes up again: both B daemons catch up (gossip or sync), fetch
 * the package from A and upgrade with their state. Every namespace and link is removed.
 */
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { DaemonStatus } from '../../src/daemon/index.js'
import { kvVersion } from './support/kv-app.js'
import { capable } from './support/capabilities.js'
import { NetnsPair, netnsUnavailable, runIn, spawnIn, stopProcesses } from './support/netns.js'
import { TestNet, waitFor } from './support/testnet.js'

const capableHere = capable('partition.test.ts', netnsUnavailable())

/** A daemon inside a namespace; the CLI reaches it from inside the same namespace. */
interface NsPeer { name: string, ns: string, dir: string, proc: ChildProcess, log: string, peerId: string, addr: string }

const procs: ChildProcess[] = []
let pair: NetnsPair | undefined
let net: TestNet | undefined

afterAll(async () => {
  await stopProcesses(procs)
  pair?.remove()
  await net?.close()
})

async function start (name: string, side: 0 | 1, args: string[]): Promise<NsPeer> {
  const p = pair as NetnsPair
  const n = net as TestNet
  const dir = path.join(n.root, name)
  const proc = spawnIn(p.ns[side], ['daemon', '--data', dir, '--trust', n.trustFile, '--config', n.configFile, '--listen', `/ip4/${p.addr[side]}/tcp/0`, ...args])
  procs.push(proc)
  const peer = { name, ns: p.ns[side], dir, proc, log: '', peerId: '', addr: '' }
  proc.stdout?.on('data', d => { peer.log += String(d) })
  proc.stderr?.on('data', d => { peer.log += String(d) })
  const control = await waitFor(`${name} to start`, async () => {
    if (proc.exitCode != null) throw new Error(`${name} exited: ${peer.log}`)
    return JSON.parse(await fs.readFile(path.join(dir, 'control.json'), 'utf8')) as { peerId: string, multiaddrs: string[] }
  }, 30_000, 200)
  peer.peerId = control.peerId
  peer.addr = control.multiaddrs[0] as string
  return peer
}

async function status (p: NsPeer): Promise<DaemonStatus> {
  const r = await runIn(p.ns, ['status', '--data', p.dir, '--json'])
  if (r.code !== 0) throw new Error(`status of ${p.name}: ${r.stderr}`)
  return JSON.parse(r.stdout) as DaemonStatus
}

async function call (p: NsPeer, request: unknown): Promise<unknown> {
  const r = await runIn(p.ns, ['call', '--data', p.dir, JSON.stringify(request)])
  if (r.code !== 0) throw new Error(`call on ${p.name}: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

async function runs (p: NsPeer, version: string): Promise<boolean> {
  const s = await status(p)
  return s.version === version && s.state === 'running'
}

describe.skipIf(!capableHere)('a network partition between namespaces', () => {
  it('a release published while the link is down reaches only its side; once the link is up the other side catches up and upgrades', async () => {
    pair = NetnsPair.create()
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2'))
    const a1 = await start('a1', 0, ['--install', v1.file])
    const [a2, b1, b2] = await Promise.all([
      start('a2', 0, ['--install', v1.file, '--bootstrap', a1.addr]),
      start('b1', 1, ['--install', v1.file, '--bootstrap', a1.addr]),
      start('b2', 1, ['--install', v1.file, '--bootstrap', a1.addr])
    ])
    const sideB = [b1, b2]
    for (const b of sideB) {
      await waitFor(`${b.name} to see both peers of side A`, async () => {
        const s = await status(b)
        return s.version === '1.0.0' && s.connections >= 1 && [a1, a2].every(a => s.network.some(n => n.peerId === a.peerId))
      }, 30_000, 500)
      expect(await call(b, { op: 'put', key: 'k', value: b.name })).toMatchObject({ ok: true })
    }

    pair.linkDown(1)
    const published = await runIn(a1.ns, ['publish', v2.file, '--data', a1.dir])
    expect(published.code, published.stderr).toBe(0)
    // b2's host reboots while cut off: it comes back with no connection, and its bootstrap peer is out of reach
    await stopProcesses([b2.proc])
    const b2again = await start('b2', 1, ['--bootstrap', a1.addr])
    await waitFor('side A to run 2.0.0', async () => await runs(a1, '2.0.0') && await runs(a2, '2.0.0'), 30_000, 500)
    // side B heard nothing, and keeps running (and serving) 1.0.0
    for (const b of [b1, b2again]) {
      const cut = await status(b)
      expect(cut).toMatchObject({ version: '1.0.0', state: 'running' })
      expect(cut.releases.map(r => r.id)).not.toContain(v2.id)
      expect(await call(b, { op: 'get', key: 'k' })).toEqual({ value: b.name, version: '1.0.0' })
    }

    pair.linkUp(1)
    const up = Date.now()
    for (const b of [b1, b2again]) {
      await waitFor(`${b.name} to catch up and run 2.0.0`, async () => await runs(b, '2.0.0'), 45_000, 500)
      const caughtUp = Date.now() - up
      expect(await call(b, { op: 'get', key: 'k' })).toEqual({ value: b.name, version: '2.0.0' })
      // it learned of the release from side A after the link came back, by gossip or by sync
      const events = (await fs.readFile(path.join(b.dir, 'events.jsonl'), 'utf8')).split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { type: string, id?: string, via?: string })
      const admitted = events.find(e => e.type === 'release-admitted' && e.id === v2.id)
      expect(admitted?.via).toMatch(new RegExp(`^(gossip from|sync with) (${a1.peerId}|${a2.peerId})$`))
      console.log(`partition: ${b.name} admitted 2.0.0 via ${admitted?.via ?? '?'}; ran it ${caughtUp} ms after the link came up`)
    }
  })

  it('removes every namespace and link it made', async () => {
    await stopProcesses(procs)
    pair?.remove()
    expect(pair?.leftovers()).toEqual([])
  })
})
