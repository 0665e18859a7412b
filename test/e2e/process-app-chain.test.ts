/**
 * Simulation objects of a process app chained over HTTP, on real daemons: a Python service
 * in protocols 1, 2 and 3 (its HTTP interface changes at every step), peers on each, and
 * the v1 peer, which has 2.0.0 and 3.0.0 staged, talking to the v3 peer both ways through a
 * chain of two hops run by its daemon — 2.0.0's future SO and 3.0.0's — while each pair
 * of neighbours takes one hop. Every hop names itself in the response's `x-so` header.
 */
import fs from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { appProcesses, hasPython, killAppProcesses, proxyOf, proxyPeers, requirePythonInCi, viaProxy } from './support/process-apps.js'
import type { Answer } from './support/process-apps.js'
import { pyChainVersion } from './support/py-chain.js'
import { TestNet, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

requirePythonInCi('process-app-chain.test.ts')

let net: TestNet | undefined

afterEach(async () => {
  const root = net?.root
  await net?.close()
  net = undefined
  if (root == null) return
  // a daemon stopped with SIGTERM leaves no app process behind (a failed case may: ended here)
  const left = await killAppProcesses(root)
  expect(left.map(p => `${p.pid} ${p.cmdline}`), 'app processes left after the daemons stopped').toEqual([])
})

type Protocol = 1 | 2 | 3

/** A write and a read as an app of each protocol makes them (path, method, body) and the value its answer carries. */
const put: Record<Protocol, (key: string, value: string) => [string, string, string]> = {
  1: (k, v) => ['PUT', `/kv/${k}`, v],
  2: (k, v) => ['PUT', `/v2/${k}`, JSON.stringify({ v })],
  3: (k, v) => ['POST', '/v3', JSON.stringify({ cmd: ['set', k, v] })]
}
const get: Record<Protocol, (key: string) => [string, string, string | undefined]> = {
  1: k => ['GET', `/kv/${k}`, undefined],
  2: k => ['GET', `/v2/${k}`, undefined],
  3: k => ['POST', '/v3', JSON.stringify({ cmd: ['get', k] })]
}
const valueOf: Record<Protocol, (body: any) => unknown> = { 1: b => b.value, 2: b => b.result, 3: b => b.ok }

/** A request of `from`'s app to `host` through `from`'s daemon's proxy. */
async function ask (from: Peer, host: string, [method, target, body]: [string, string, string | undefined]): Promise<Answer> {
  return await viaProxy(proxyOf(from), method, `http://${host}${target}`, body, { headers: { 'content-type': 'application/json' } })
}

async function publish (p: Peer, file: string): Promise<void> {
  const res = await p.api('/publish', { method: 'POST', body: await fs.readFile(file) })
  expect(res.status, await res.text()).toBe(200)
}

describe.skipIf(!hasPython)('simulation objects of a process app, chained over HTTP', () => {
  it('a v1 peer and a v3 peer talk both ways through a chain of two hops (2.0.0\'s SOs, then 3.0.0\'s); neighbours through one', async () => {
    net = await TestNet.create()
    // 2.0.0 and 3.0.0 wait for approval: the network stays mixed
    const v1 = await net.releaseFiles(pyChainVersion(1))
    const v2 = await net.releaseFiles(pyChainVersion(2, { schedule: [{ rule: 'approve' }] }))
    const v3 = await net.releaseFiles(pyChainVersion(3, { schedule: [{ rule: 'approve' }] }))
    const p1 = await net.start('p1', ['--install', v1.file])
    const p2 = await net.start('p2', ['--install', v2.file, '--bootstrap', p1.addr])
    const p3 = await net.start('p3', ['--install', v3.file, '--bootstrap', p1.addr])
    const peers = [p1, p2, p3]
    const protocolOf = new Map<Peer, Protocol>([[p1, 1], [p2, 2], [p3, 3]])
    for (const [p, version] of [[p1, '1.0.0'], [p2, '2.0.0'], [p3, '3.0.0']] as const) await p.waitVersion(version)
    // the v1 peer stages 2.0.0 and 3.0.0 and loads their future SOs; the v2 peer stages 3.0.0
    await publish(p1, v2.file)
    await publish(p1, v3.file)
    for (const [p, ids] of [[p1, [v2.id, v3.id]], [p2, [v3.id]]] as const) {
      for (const id of ids) await p.waitStaged(id)
      // the newest staged release is the one that waits for approval; an older one waits on it
      await waitFor(`${p.name} to wait for approval`, async () => {
        const releases = (await p.status()).releases
        const waiting = ids.map(id => releases.find(r => r.id === id)?.waitingOn)
        return waiting.at(-1) === 'approve' && waiting.slice(0, -1).every(w => w === 'newer')
      })
    }
    const hostOf = new Map<Peer, string>()
    for (const p of peers) hostOf.set(p, (await proxyPeers(p)).selfHost)
    await waitFor('every peer to see the others at their versions', async () => {
      for (const p of peers) {
        const listed = (await proxyPeers(p)).peers
        for (const q of peers.filter(q => q !== p)) if (listed.find(e => e.id === q.peerId)?.protocol !== protocolOf.get(q)) return false
      }
      return true
    })

    // every ordered pair: a write and a read, each side in its own protocol
    const hops = new Map<string, string[]>()
    for (const from of peers) {
      for (const to of peers) {
        if (from === to) continue
        const pf = protocolOf.get(from) as Protocol
        const key = `${from.name}-${to.name}`
        const host = hostOf.get(to) as string
        // the first call may come before the shim has heard what the other speaks: retried until it answers
        const wrote = await waitFor(`${key}: the write`, async () => {
          const answer = await ask(from, host, put[pf](key, `from ${from.name}`))
          return answer.status === 200 ? answer : undefined
        }, 30_000, 500)
        expect(valueOf[pf](JSON.parse(wrote.body)), key).toBe(`from ${from.name}`)
        const read = await ask(from, host, get[pf](key))
        expect(read.status, `${key}: ${read.body}`).toBe(200)
        expect(valueOf[pf](JSON.parse(read.body)), key).toBe(`from ${from.name}`)
        hops.set(key, String(read.headers['x-so'] ?? '').split(', ').filter(h => h !== ''))
      }
    }
    // each written value is there, read natively by the peer that holds it
    for (const to of peers) {
      const pt = protocolOf.get(to) as Protocol
      for (const from of peers.filter(p => p !== to)) {
        const read = await ask(to, hostOf.get(to) as string, get[pt](`${from.name}-${to.name}`))
        expect(valueOf[pt](JSON.parse(read.body))).toBe(`from ${from.name}`)
        expect(read.headers['x-so'], 'a peer\'s call to itself is not translated').toBeUndefined()
      }
    }

    // v1 ↔ v3: two hops, both on the v1 peer's daemon (it speaks 1, 2 and 3; the newer version wins the tie)
    expect(hops.get('p1-p3')).toEqual(['v3.future.call', 'v2.future.call'])
    expect(hops.get('p3-p1')).toEqual(['v2.future.serve', 'v3.future.serve'])
    // neighbours: one hop each
    expect(hops.get('p1-p2')).toEqual(['v2.future.call'])
    expect(hops.get('p2-p1')).toEqual(['v2.future.serve'])
    expect(hops.get('p2-p3')).toEqual(['v3.future.call'])
    expect(hops.get('p3-p2')).toEqual(['v3.future.serve'])

    // a request the chain cannot translate is an error for that request only (502 from the SO), and the next one works
    const bad = await ask(p1, hostOf.get(p3) as string, ['DELETE', '/kv/x', undefined])
    expect(bad.status).toBe(502)
    expect(bad.body).toContain('not a protocol 1 request')
    const again = await ask(p1, hostOf.get(p3) as string, get[1]('p1-p3'))
    expect(valueOf[1](JSON.parse(again.body))).toBe('from p1')
    // one app process per peer: the SOs run in the daemons, not beside the apps
    for (const p of peers) expect((await appProcesses(p.dataDir)).map(x => x.pid), p.name).toEqual([(await p.status()).process?.pid])
  })
})
