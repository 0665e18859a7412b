/**
 * A mixed network on real daemons: peers on protocol versions 1, 2 and 3 at once, every
 * pair talking both ways through simulation objects (past chains on newer peers, future
 * SOs of staged releases on older ones), a same-version pair provably untranslated, v3's
 * new operation emulated on a v2 node, and the state right after the old peer catches up.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { kv3Version } from './support/kv3-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

/** `upgossip call` from one peer to another, in the caller's own protocol version. */
async function call (from: Peer, to: Peer, request: unknown): Promise<any> {
  const r = await runCli(['call', '--data', from.dataDir, '--peer', to.peerId, JSON.stringify(request)])
  if (r.code !== 0) throw new Error(`call ${from.name} → ${to.name} failed: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

// each version's way of writing and reading, and of reading the answer
const put = {
  1: (k: string, v: unknown) => ({ op: 'put', key: k, value: v }),
  2: (k: string, v: unknown) => ({ action: 'set', k, v }),
  3: (k: string, v: unknown) => ({ cmd: ['set', k, v] })
} as const
const get = {
  1: (k: string) => ({ op: 'get', key: k }),
  2: (k: string) => ({ action: 'fetch', k }),
  3: (k: string) => ({ cmd: ['get', k] })
} as const
const answer = { 1: (r: any) => r.value, 2: (r: any) => r.result, 3: (r: any) => r.ok } as const

describe('version shim', () => {
  it('peers on three versions at once talk both ways through simulation objects', async () => {
    // v2 and v3 wait for approval, so the network stays mixed until the test says so
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kv3Version(1))
    const v2 = await net.releaseFiles(kv3Version(2, { schedule: [{ rule: 'approve' }] }))
    const v3 = await net.releaseFiles(kv3Version(3, { schedule: [{ rule: 'approve' }] }))
    const p1 = await net.start('p1', ['--install', v1.file])
    const p1b = await net.start('p1b', ['--install', v1.file, '--bootstrap', p1.addr])
    const p2 = await net.start('p2', ['--install', v2.file, '--bootstrap', p1.addr])
    const p3 = await net.start('p3', ['--install', v3.file, '--bootstrap', p1.addr])
    const peers = [p1, p1b, p2, p3]
    const protocolOf = new Map<Peer, 1 | 2 | 3>([[p1, 1], [p1b, 1], [p2, 2], [p3, 3]])
    expect((await runCli(['publish', v2.file, '--data', p2.dataDir])).code).toBe(0)
    expect((await runCli(['publish', v3.file, '--data', p3.dataDir])).code).toBe(0)
    // the v1 peers stage v2 and v3 and load their future SOs: they speak 1, 2 and 3
    for (const p of [p1, p1b]) {
      for (const id of [v2.id, v3.id]) await p.waitStaged(id)
      await waitFor(`${p.name} to wait for approval of v2`, async () => (await p.status()).releases.find(r => r.id === v2.id)?.waitingOn === 'approve')
    }
    await waitFor('every peer to see every other', async () => {
      for (const p of peers) if ((await p.status()).connections < 3) return false
      return true
    })

    // every ordered pair: a write and a read, each side in its own version
    for (const from of peers) {
      for (const to of peers) {
        if (from === to) continue
        const pf = protocolOf.get(from) as 1 | 2 | 3
        const key = `${from.name}->${to.name}`
        expect(answer[pf](await call(from, to, put[pf](key, 7)))).toBe(7)
        expect(answer[pf](await call(from, to, get[pf](key)))).toBe(7)
      }
    }
    // and the written value is there, read by the target in its own version
    for (const to of peers) {
      const pt = protocolOf.get(to) as 1 | 2 | 3
      for (const from of peers.filter(p => p !== to)) expect(answer[pt](await call(to, to, get[pt](`${from.name}->${to.name}`)))).toBe(7)
    }

    // a same-version pair is untranslated: the SOs would round 1.23456 to 1.23
    expect(answer[1](await call(p1, p1b, put[1]('exact', 1.23456)))).toBe(1.23456)
    expect(answer[1](await call(p1b, p1b, get[1]('exact')))).toBe(1.23456)
    expect(answer[1](await call(p1, p3, put[1]('rounded', 1.23456)))).toBe(1.23)
    expect(answer[3](await call(p3, p3, get[3]('rounded')))).toBe(1.23)

    // v3 adds incr: v3's future SO emulates it on the v2 node
    await call(p2, p2, put[2]('counter', 40))
    expect(answer[3](await call(p3, p2, { cmd: ['incr', 'counter', 2] }))).toBe(42)
    expect(answer[2](await call(p2, p2, get[2]('counter')))).toBe(42)

    // an unknown request is an error for that request only
    const bad = await runCli(['call', '--data', p1.dataDir, '--peer', p3.peerId, JSON.stringify({ op: 'nope' })])
    expect(bad.code).toBe(1)
    expect(answer[1](await call(p1, p3, get[1]('p1->p3')))).toBe(7)

    // the v1 peer catches up, step by step, and its state is right afterwards; meanwhile
    // p1b keeps calling it: requests held during each switch reach the next version,
    // translated, and none fails
    await call(p1, p1, put[1]('own', 1.23456))
    let stop = false
    const failures: string[] = []
    const spans: Array<[number, number]> = []
    let served = 0
    const traffic = (async () => {
      // eslint-disable-next-line no-unmodified-loop-condition -- the test body sets `stop` while this loop awaits
      for (let i = 0; i < 1200 && !stop; i++) {
        const started = Date.now()
        try {
          if ((await p1b.callPeer(p1.peerId, put[1](`during-${i}`, i)))?.value === i) served++
          else failures.push(`request ${i}: wrong answer`)
        } catch (err) {
          failures.push(`request ${i}: ${(err as Error).message}`)
        }
        spans.push([started, Date.now()])
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    })()
    for (const id of [v2.id, v3.id]) expect((await runCli(['approve', id, '--data', p1.dataDir])).code).toBe(0)
    await p1.waitVersion('3.0.0', 90_000)
    stop = true
    await traffic
    expect(failures).toEqual([])
    expect(served).toBeGreaterThan(0)
    // and the traffic really crossed the switches: some request was in flight while p1 switched
    const history = JSON.parse((await runCli(['history', '--data', p1.dataDir, '--json'])).stdout) as Array<{ type: string, time: string }>
    const starts = history.filter(e => e.type === 'upgrade-started').map(e => Date.parse(e.time))
    const ends = history.filter(e => e.type === 'upgrade-committed').map(e => Date.parse(e.time))
    expect(starts).toHaveLength(2)
    const windows = starts.map((t, i) => [t, (ends[i] ?? t) + 1000] as const)
    expect(spans.some(([a, b]) => windows.some(([w0, w1]) => a <= w1 && b >= w0))).toBe(true)
    // the requests that arrived while the app was down were held, and counted
    const held = /^upgossip_switch_held_requests_sum\{kind="upgrade"\} (\d+)$/m.exec(await p1.metrics())
    expect(Number(held?.[1]), 'requests held during the two switches').toBeGreaterThan(0)
    expect(answer[3](await call(p1, p1, get[3](`during-${served - 1}`)))).toBe(served - 1)
    for (const from of peers.filter(p => p !== p1)) expect(answer[3](await call(p1, p1, get[3](`${from.name}->p1`)))).toBe(7)
    expect(answer[3](await call(p1, p1, get[3]('own')))).toBe(1.23456)
    // and it now talks to the v1 peer through its past chain
    expect(answer[3](await call(p1, p1b, get[3]('p1->p1b')))).toBe(7)
  })
})
