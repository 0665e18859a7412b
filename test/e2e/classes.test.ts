/**
 * Two classes of node on real daemons: a `store` app and a `client` app that calls it
 * (`node.call(peer, request, { app: 'store' })`, in the protocol its manifest's `calls`
 * names). The client keeps working through the store's past simulation object while the
 * store rolls out a new protocol; the client's next release waits on
 * `{ rule: 'after', app: 'store', version: '>=2.0.0' }` and follows only once every store
 * runs 2.0.0. Calls to a peer of the wrong class, or to a class the release names no
 * protocol for, fail with named errors; a release calling a class nobody trusts is refused.
 * A store rolled back under clients already on the new protocol serves them through its
 * future SO, and a late joiner of each class installs the newest and talks across classes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { COPY, STORE_2, STORE_FUTURE, STORE_PAST, client, manifest, relay, startStoreAndClient } from './support/store-client.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

describe('several classes of node', () => {
  it('a client calls the store across classes and versions, and upgrades only after every store has', async () => {
    net = await TestNet.create()
    const { a, b } = await startStoreAndClient(net)
    await a.waitVersion('1.0.0')
    await b.waitVersion('1.0.0')
    await waitFor('b to see a store', async () => (await relay(b, { get: 'x' })).store === a.peerId)

    // across classes: the client's request reaches the store in store's protocol 1
    expect(await relay(b, { put: ['x', 'one'] })).toEqual({ store: a.peerId, answer: { value: 'one' }, client: '1.0.0' })
    expect((await relay(b, { get: 'x' })).answer).toEqual({ value: 'one' })
    // named errors: a peer of the wrong class; a class the release names no protocol for
    expect(await relay(b, { raw: { peer: b.peerId, app: 'store', request: {} } })).toMatchObject({ error: 'WrongAppError' })
    expect(await relay(b, { raw: { peer: a.peerId, app: 'queue', request: {} } })).toMatchObject({ error: 'WrongAppError', message: expect.stringContaining('runs store') })

    // client 2.0.0 calls store in protocol 2 and waits for every store to run >=2.0.0
    const c2 = await net.releaseFiles({ 'upgossip.json': manifest({ app: 'client', version: '2.0.0', protocol: 1, calls: { store: 2 }, schedule: [{ rule: 'after', app: 'store', version: '>=2.0.0', fraction: 1 }, { rule: 'approve' }] }), 'server.js': client(2) })
    expect((await runCli(['publish', c2.file, '--data', b.dataDir])).code).toBe(0)
    const waiting = await waitFor('b to hold client 2.0.0 for the store', async () => {
      const r = (await b.status()).releases.find(e => e.id === c2.id)
      return r?.state === 'waiting' && /peers of store/.test(JSON.stringify(r)) ? r : undefined
    })
    expect(JSON.stringify(waiting)).toContain('0 of 1 peers of store run a version in >=2.0.0')
    expect((await b.status()).version).toBe('1.0.0')

    // store 2.0.0: a new protocol, with a past SO for the clients still calling in 1
    const s2 = await net.releaseFiles({ 'upgossip.json': manifest({ app: 'store', version: '2.0.0', protocol: 2, simulation: { past: 'so/past.js' } }), 'server.js': STORE_2, 'so/past.js': STORE_PAST })
    expect((await runCli(['publish', s2.file, '--data', a.dataDir])).code).toBe(0)
    await a.waitVersion('2.0.0')
    // the 1.0.0 client still calls store in protocol 1: the store's past SO translates
    expect(await relay(b, { get: 'x' })).toEqual({ store: a.peerId, answer: { value: 'one' }, client: '1.0.0' })
    expect((await relay(b, { put: ['z', 'three'] })).answer).toEqual({ value: 'three' })
    // the store rule holds now: what b waits on is its operator's approval
    await waitFor('b to wait for the approval only', async () => /approve/.test(JSON.stringify((await b.status()).releases.find(e => e.id === c2.id))))
    expect((await b.status()).version).toBe('1.0.0')
    expect((await runCli(['approve', c2.id, '--data', b.dataDir])).code).toBe(0)
    // then the client follows, and speaks store's protocol 2 natively
    await b.waitVersion('2.0.0')
    expect(await relay(b, { get: 'z' })).toEqual({ store: a.peerId, answer: { ok: true, v: 'three' }, client: '2.0.0' })
    expect((await relay(b, { put: ['y', 'two'] })).answer).toEqual({ ok: true, v: 'two' })
  })
})

describe('a store rolled back under clients of the new version', () => {
  it('keeps serving them through its future SO; a late joiner of each class installs the newest and talks across classes', async () => {
    net = await TestNet.create()
    const { a, b } = await startStoreAndClient(net)
    await b.waitVersion('1.0.0')
    await waitFor('b to see a store', async () => (await relay(b, { get: 'x' })).store === a.peerId)
    expect((await relay(b, { put: ['x', 'one'] })).answer).toEqual({ value: 'one' })

    // a release calling a class this network's peers do not trust is refused, by name
    const queue = await net.releaseFiles({ 'upgossip.json': manifest({ app: 'client', version: '1.5.0', protocol: 1, calls: { store: 1, queue: 1 } }), 'server.js': client(1) })
    const refused = await runCli(['publish', queue.file, '--data', b.dataDir])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/calls "queue", not in this peer's trust policy.*\[UntrustedCallError\]/)

    // store 2.0.0 with a past SO (for 1.0.0 clients) and a future SO (for 2.0.0 clients, should a store run 1.0.0)
    const s2 = await net.releaseFiles({
      'upgossip.json': manifest({ app: 'store', version: '2.0.0', protocol: 2, simulation: { past: 'so/past.js', future: 'so/future.js' }, transform: { up: 'copy.js', down: 'copy.js' } }),
      'server.js': STORE_2,
      'so/past.js': STORE_PAST,
      'so/future.js': STORE_FUTURE,
      'copy.js': COPY
    })
    const c2 = await net.releaseFiles({ 'upgossip.json': manifest({ app: 'client', version: '2.0.0', protocol: 1, calls: { store: 2 }, schedule: [{ rule: 'after', app: 'store', version: '>=2.0.0', fraction: 1 }] }), 'server.js': client(2) })
    expect((await runCli(['publish', s2.file, '--data', a.dataDir])).code).toBe(0)
    expect((await runCli(['publish', c2.file, '--data', b.dataDir])).code).toBe(0)
    await a.waitVersion('2.0.0')
    await b.waitVersion('2.0.0')
    expect(await relay(b, { put: ['y', 'two'] })).toEqual({ store: a.peerId, answer: { ok: true, v: 'two' }, client: '2.0.0' })

    // the store's operator goes back to 1.0.0; the client stays on 2.0.0 and still calls in protocol 2
    const rolledBack = await runCli(['rollback', '--data', a.dataDir])
    expect(rolledBack.code, rolledBack.stderr).toBe(0)
    await a.waitVersion('1.0.0')
    expect((await a.status()).releases.find(r => r.id === s2.id)?.state).toBe('rolled-back')
    expect((await b.status()).version).toBe('2.0.0')
    const afterRollback = await waitFor('b\'s protocol-2 call to be answered by the store on 1.0.0', async () => {
      const r = await relay(b, { get: 'y' })
      return r.answer != null ? r : undefined
    })
    expect(afterRollback).toEqual({ store: a.peerId, answer: { ok: true, v: 'two' }, client: '2.0.0' })
    expect((await relay(b, { put: ['z', 'three'] })).answer).toEqual({ ok: true, v: 'three' })
    expect((await relay(b, { get: 'x' })).answer).toEqual({ ok: true, v: 'one' })

    // late joiners, one of each class, each joining through a peer of the other class
    const d = await net.start('d', ['--app', 'store', '--bootstrap', b.addr])
    const e = await net.start('e', ['--app', 'client', '--bootstrap', a.addr])
    await d.waitVersion('2.0.0')
    await e.waitVersion('2.0.0')
    // e calls each store in protocol 2: d natively, a (on 1.0.0) through 2.0.0's future SO
    await waitFor('e to see both stores', async () => (await e.status()).network.filter(p => p.app === 'store').length === 2)
    expect(await relay(e, { raw: { peer: a.peerId, app: 'store', request: { cmd: 'get', k: 'z' } } })).toEqual({ ok: { ok: true, v: 'three' } })
    expect(await relay(e, { raw: { peer: d.peerId, app: 'store', request: { cmd: 'set', k: 'w', v: 'four' } } })).toEqual({ ok: { ok: true, v: 'four' } })
    // and b, the client that stayed through the rollback, reaches the newcomer too
    expect(await relay(b, { raw: { peer: d.peerId, app: 'store', request: { cmd: 'get', k: 'w' } } })).toEqual({ ok: { ok: true, v: 'four' } })

    // status groups the view by class, this peer's own first
    await waitFor('e to see every peer', async () => (await e.status()).network.length === 3)
    const status = await runCli(['status', '--data', e.dataDir])
    expect(status.code, status.stderr).toBe(0)
    const peers = status.stdout.slice(status.stdout.indexOf('\npeers\n'))
    expect(peers).toMatch(/\n {2}client: 2 peers with this one — 2\.0\.0 ×2\n {4}\S+ +client 2\.0\.0/)
    expect(peers).toMatch(/\n {2}store: 2 peers — 1\.0\.0 ×1, 2\.0\.0 ×1\n {4}\S+ +store [12]\.0\.0/)
  })
})
