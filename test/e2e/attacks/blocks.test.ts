/**
 * Hostile block sources. A peer that serves corrupted blocks (a real daemon with the test
 * fault UPGOSSIP_FAULT=serve-corrupt-blocks) does not stop the others from completing:
 * every block is checked against its CID, and the liar is dropped as a source. Peers
 * written for the test that claim to hold every block and then send an endless stream,
 * an oversized frame, or nothing at all are each caught: the first two are dropped at
 * once, the staller sits out once its request timed out (with another holder idle, its
 * blocks are asked of that one after 2 s: test/unit/package-fetch.test.ts). A request for
 * more CIDs than the protocol allows is refused unanswered; a request that may wait is
 * answered when a block arrives.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import * as lp from 'it-length-prefixed'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, describe, expect, it } from 'vitest'
import { BLOCKS_PROTOCOL, BLOCKS_WAIT_PROTOCOL, MAX_GET_CIDS, MAX_HAVE_CIDS, MAX_HAVE_WAIT_MS, createPeerNode, noNetMetrics, readFrame, readFrames } from '../../../src/net/index.js'
import { bundlePackageBlocks, encodeReleasesTopicMessage, readBundle } from '../../../src/release/index.js'
import type { BasePeerNode } from '../../../src/net/index.js'
import { TestNet, runCli, waitFor } from '../support/testnet.js'

let net: TestNet | undefined
let hostile: BasePeerNode[] = []

afterEach(async () => {
  await Promise.all(hostile.map(async h => { await h.stop() }))
  hostile = []
  await net?.close()
  net = undefined
})

type Mode = 'endless' | 'oversized' | 'stall'

/** A libp2p node that claims every block and then misbehaves on `get` as `mode` says. */
async function hostileBlockServer (mode: Mode): Promise<BasePeerNode> {
  const node = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  hostile.push(node)
  await node.handle(BLOCKS_PROTOCOL, ({ stream }) => {
    void (async () => {
      const request = dagCbor.decode<{ have?: unknown[], get?: unknown[] }>(await readFrame(stream, 1024 * 1024))
      if (request.have != null) {
        await stream.sink(lp.encode([dagCbor.encode({ have: request.have.map(() => true) })]))
        return
      }
      const asked = request.get ?? []
      if (mode === 'stall') return // keep the stream open and say nothing
      if (mode === 'oversized') {
        // a frame that claims 64 MiB, then streams junk for as long as it is read
        await stream.sink((async function * () {
          yield Uint8Array.from([0x80, 0x80, 0x80, 0x20])
          for (let i = 0; i < 64; i++) yield randomBytes(64 * 1024)
        })())
        return
      }
      // endless: well-formed answers that never stop (bounded here only so the test ends)
      await stream.sink(lp.encode((function * () {
        for (let i = 0; i < 100_000; i++) yield dagCbor.encode({ cid: asked[i % asked.length], missing: true })
      })()))
    })().catch(() => {})
  })
  return node
}

describe('hostile block sources', () => {
  it('each of three peers that claim every block and then stream endlessly, send an oversized frame or stall is caught; the fetch then completes from an honest peer', async () => {
    net = await TestNet.create({ minConnections: 1 })
    const v1 = await net.release('1.0.0')
    const v2 = await net.release('2.0.0', { 'data.bin': randomBytes(1_200_000) })
    // the victim runs 1.0.0 alone; the only peers it knows claim every block and misbehave
    const victim = await net.start('victim', ['--install', v1.file])
    await victim.waitVersion('1.0.0')
    const modes: Mode[] = ['endless', 'oversized', 'stall']
    const servers = await Promise.all(modes.map(async m => await hostileBlockServer(m)))
    for (const s of servers) await s.dial(multiaddr(victim.addr))
    await waitFor('the victim to be connected to all three', async () => (await victim.status()).connections >= 3)
    // the signed 2.0.0 reaches it by sync from a peer that holds no block: until an honest
    // holder comes, every block is asked of the three, so each of them is asked, and caught
    const signed = (await readBundle(await fs.readFile(v2.file))).signed
    const herald = await createPeerNode({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      services: { sync: { network: 'default', metrics: noNetMetrics, log: () => {}, releasesFor: () => [encodeReleasesTopicMessage({ type: 'release', signed })] } }
    })
    hostile.push(herald)
    await herald.dial(multiaddr(victim.addr))

    const events = async (): Promise<string> => await fs.readFile(path.join(victim.dataDir, 'events.jsonl'), 'utf8')
    const about = (text: string, s: BasePeerNode): string[] => text.split('\n').filter(l => l.includes(`peer ${s.peerId.toString()} `))
    const [endless, oversized, stall] = servers as [BasePeerNode, BasePeerNode, BasePeerNode]
    const caught = [
      [endless, /more blocks than asked for; it is no longer a source for this package/],
      [oversized, /larger than \d+ bytes; it is no longer a source for this package/],
      // a stall could be an honest slow peer: once its request timed out it sits out a while, and is not asked round after round
      [stall, /get request timed out; asking others for 15 s/]
    ] as const
    // the first two are dropped at their first answer; the staller's request times out after 20 s
    await waitFor('the victim to catch all three', async () => {
      const text = await events()
      return caught.every(([server, said]) => about(text, server).some(l => said.test(l)))
    }, 60_000)
    // each was caught for what it did, and nothing else was said of it
    const text = await events()
    for (const [server, said] of caught) {
      const lines = about(text, server)
      expect(lines.length).toBeGreaterThan(0)
      for (const line of lines) expect(said.test(line), line).toBe(true)
    }
    expect(victim.exited).toBeUndefined()
    expect((await victim.status()).releases.find(r => r.id === v2.id)?.state).toBe('fetching')

    // an honest holder comes: the fetch completes from it
    const honest = await net.start('honest', ['--install', v2.file, '--bootstrap', victim.addr])
    await victim.waitStaged(v2.id, 90_000)
    expect(await victim.metric('upgossip_blocks_total', { result: 'fetched' })).toBeGreaterThan(0)
    // the dropped two were not asked again; the staller sat out (it is asked again only after its 15 s, at most once more before its next 30 s)
    const after = await events()
    for (const server of [endless, oversized]) expect(about(after, server)).toHaveLength(1)
    expect(about(after, stall).length).toBeLessThanOrEqual(2)
    expect(victim.exited).toBeUndefined()
    expect(honest.exited).toBeUndefined()
  })
})

describe('corrupted blocks', () => {
  it('peers fetching from a liar still complete, from honest peers', async () => {
    net = await TestNet.create({ minConnections: 3 })
    const v1 = await net.release('1.0.0')
    const v2 = await net.release('2.0.0', { 'data.bin': randomBytes(1_200_000) })
    const honest = await net.start('honest', ['--install', v1.file])
    const liar = await net.start('liar', ['--app', 'kv', '--bootstrap', honest.addr], { UPGOSSIP_FAULT: 'serve-corrupt-blocks' })
    expect((await runCli(['publish', v2.file, '--data', honest.dataDir])).code).toBe(0)
    await liar.waitStaged(v2.id)
    // the newcomers know only the liar at first
    const newcomers = [await net.start('n1', ['--app', 'kv', '--bootstrap', liar.addr]), await net.start('n2', ['--app', 'kv', '--bootstrap', liar.addr])]
    await Promise.all(newcomers.map(async p => { await p.waitStaged(v2.id) }))
    let refused = 0
    for (const p of newcomers) refused += await p.metric('upgossip_blocks_total', { result: 'refused' })
    expect(refused).toBeGreaterThan(0)
    expect(await liar.metric('upgossip_blocks_total', { result: 'served' })).toBeGreaterThan(0)
    for (const p of [honest, liar, ...newcomers]) expect(p.exited).toBeUndefined()
  })
})

describe('block request bounds', () => {
  /** One request on a fresh stream; the answer's frames, or the error that ended it. */
  async function ask (node: BasePeerNode, addr: string, request: unknown, protocol = BLOCKS_PROTOCOL): Promise<unknown[] | Error> {
    try {
      const stream = await node.dialProtocol(multiaddr(addr), protocol)
      await stream.sink(lp.encode([dagCbor.encode(request)]))
      const frames: unknown[] = []
      for await (const frame of readFrames(stream, 2 * 1024 * 1024)) frames.push(dagCbor.decode(frame))
      return frames
    } catch (err) {
      return err as Error
    }
  }

  it('a have request of 1024 CIDs and a get of 32 are answered; 1025 and 33 are refused unanswered', async () => {
    expect([MAX_HAVE_CIDS, MAX_GET_CIDS]).toEqual([1024, 32])
    net = await TestNet.create()
    const a = await net.start('a')
    const node = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    hostile.push(node)
    // blocks nobody holds: every answer is "no" or "missing", one per CID asked
    const cids = await Promise.all(Array.from({ length: MAX_HAVE_CIDS + 1 }, async (_, i) => CID.createV1(raw.code, await sha256.digest(Uint8Array.of(i >> 8, i & 255)))))

    const have = await ask(node, a.addr, { have: cids.slice(0, MAX_HAVE_CIDS) })
    expect(have).toEqual([{ have: Array.from({ length: MAX_HAVE_CIDS }, () => false) }])
    const get = await ask(node, a.addr, { get: cids.slice(0, MAX_GET_CIDS) })
    expect(get).toHaveLength(MAX_GET_CIDS)
    expect((get as Array<{ missing?: boolean }>).every(f => f.missing === true)).toBe(true)

    for (const request of [{ have: cids }, { get: cids.slice(0, MAX_GET_CIDS + 1) }]) {
      const answer = await ask(node, a.addr, request)
      // the stream is aborted: an error, or at most an end with nothing in it
      expect(answer instanceof Error || answer.length === 0, JSON.stringify(answer).slice(0, 200)).toBe(true)
    }
    await waitFor('a to log both refusals', async () => {
      const events = await fs.readFile(path.join(a.dataDir, 'events.jsonl'), 'utf8')
      return events.includes(`block request refused: expected a list of at most ${MAX_HAVE_CIDS} CIDs`) && events.includes(`block request refused: expected a list of at most ${MAX_GET_CIDS} CIDs`)
    })
    // the peer still serves
    expect(await ask(node, a.addr, { have: cids.slice(0, 1) })).toEqual([{ have: [false] }])
    expect(a.exited).toBeUndefined()
  })
  it('a have that may wait (blocks 1.1.0) is answered when a block arrives, or when its wait is up; 4 wait per peer; a bad wait is refused unanswered', async () => {
    expect(MAX_HAVE_WAIT_MS).toBe(10_000)
    net = await TestNet.create()
    const v1 = await net.release('1.0.0', { 'data.bin': randomBytes(300_000) })
    const bytes = await fs.readFile(v1.file)
    const { cids } = await bundlePackageBlocks(await readBundle(bytes))
    // an isolated peer that holds nothing yet
    const c = await net.start('c', ['--app', 'kv'])
    const node = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    hostile.push(node)
    const never = CID.createV1(raw.code, await sha256.digest(Uint8Array.of(1, 2, 3)))

    const waits = async (): Promise<number> => await c.metric('upgossip_block_requests_total', { kind: 'wait' })
    const settled = new Set<string>()
    const tracked = async <T>(name: string, answer: Promise<T>): Promise<T> => await answer.finally(() => { settled.add(name) })
    // a second asker's request for a block that never arrives, waiting at c before the rest begins
    const other = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    hostile.push(other)
    const sentinel = tracked('sentinel', ask(other, c.addr, { have: [never], wait: MAX_HAVE_WAIT_MS }, BLOCKS_WAIT_PROTOCOL))
    await waitFor('c to hold the first waiting request', async () => await waits() >= 1)

    // a peer may keep 4 requests waiting: of five at once, one is answered at once (nothing held yet), four wait
    const five = Array.from({ length: 5 }, async (_, i) => await tracked(`five-${i}`, ask(node, c.addr, { have: cids, wait: MAX_HAVE_WAIT_MS }, BLOCKS_WAIT_PROTOCOL)))
    const first = await Promise.race(five)
    expect(first).toEqual([{ have: cids.map(() => false) }])
    expect([...settled].filter(n => n.startsWith('five-'))).toHaveLength(1)

    // blocks arrive (a publish through c's control API): the four waiting are answered then …
    const published = await c.api('/publish', { method: 'POST', body: bytes })
    expect(published.status, await published.text()).toBeLessThan(300)
    const answers = await Promise.all(five)
    expect(answers.filter(a => (a as Array<{ have: boolean[] }>)[0]?.have.some(Boolean) === true)).toHaveLength(4)
    // … before the request that waited from before them, for a block that never came, whose
    // wait is up only later: the four were woken by the arrival, not by their own wait
    expect(settled.has('sentinel')).toBe(false)
    expect(await sentinel).toEqual([{ have: [false] }])

    // "wait" only on 1.1.0, only with "have", a whole number of ms up to the bound
    for (const [request, protocol] of [
      [{ have: [never], wait: 10 }, BLOCKS_PROTOCOL],
      [{ get: [never], wait: 10 }, BLOCKS_WAIT_PROTOCOL],
      [{ have: [never], wait: MAX_HAVE_WAIT_MS + 1 }, BLOCKS_WAIT_PROTOCOL],
      [{ have: [never], wait: -1 }, BLOCKS_WAIT_PROTOCOL],
      [{ have: [never], wait: 1.5 }, BLOCKS_WAIT_PROTOCOL],
      [{ have: [never], wait: 'soon' }, BLOCKS_WAIT_PROTOCOL]
    ] as const) {
      const refused = await ask(node, c.addr, request, protocol)
      expect(refused instanceof Error || refused.length === 0, `${protocol} ${JSON.stringify(request)}: ${JSON.stringify(refused).slice(0, 200)}`).toBe(true)
    }
    await waitFor('c to log the refusals', async () => (await fs.readFile(path.join(c.dataDir, 'events.jsonl'), 'utf8')).includes('must be a whole number of milliseconds from 0 to 10000'))
    // 1.1.0 without "wait" is 1.0.0's request
    expect(await ask(node, c.addr, { have: [never] }, BLOCKS_WAIT_PROTOCOL)).toEqual([{ have: [false] }])
    expect(c.exited).toBeUndefined()
  })
})
