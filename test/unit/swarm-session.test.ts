/**
 * Blocks 2.0.0 between two peers in memory: what a stream carries (announcements pushed,
 * nothing asked twice) and its defences against a hostile peer written frame by frame —
 * wrong bytes, a block nobody asked for, garbage, limits, silence.
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { decodeBlockFrame, encodeBlockFrame } from '../../src/net/block-frame-codec.js'
import { MAX_GET_CIDS, MAX_WANT_LIST, MAX_WANTS_PER_SECOND } from '../../src/net/block-messages.js'
import { ASK_RATE, WantPacer } from '../../src/net/want-pacer.js'
import type { BlockFrame } from '../../src/net/block-messages.js'
import type { BlockChannel } from '../../src/net/block-session.js'
import { BlockSessions } from '../../src/net/block-sessions.js'
import type { PeerId } from '../../src/net/index.js'
import { UploadShare, noNetMetrics } from '../../src/net/index.js'
import { BlockHashMismatchError, MemoryBlockStore } from '../../src/store/index.js'

/** Two ends of an in-memory stream; `aborted` says why either end reset it. */
function pipe (): { ends: [BlockChannel, BlockChannel], aborted: () => Error | undefined } {
  const inbox: Uint8Array[][] = [[], []]
  const readers: Array<(() => void) | undefined> = [undefined, undefined]
  let aborted: Error | undefined
  const end = (me: 0 | 1): BlockChannel => ({
    write: async frames => {
      if (aborted != null) throw aborted
      // a frame given as pieces arrives as one array, as a stream reads it
      inbox[1 - me]?.push(...frames.map(f => f.subarray()))
      readers[1 - me]?.()
    },
    read: async () => {
      while (true) {
        if (aborted != null) throw aborted
        const next = inbox[me]?.shift()
        if (next != null) return next
        await new Promise<void>(resolve => { readers[me] = resolve })
      }
    },
    abort: err => { aborted ??= err; readers[0]?.(); readers[1]?.() }
  })
  return { ends: [end(0), end(1)], aborted: () => aborted }
}

const peer = (name: string): PeerId => ({ toString: () => name }) as unknown as PeerId
const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
/** A few event-loop turns, until `done` (or give up after 200). */
async function until (done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await tick()
}

async function block (text: string): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

/** An honest peer `me` whose one neighbour is a hand-driven channel: what it sent, and how to send it frames. */
function againstHostile (store = new MemoryBlockStore(), timeouts: { haveTimeoutMs?: number, getTimeoutMs?: number, now?: () => number } = {}): { sessions: BlockSessions, sent: BlockFrame[], send: (frame: BlockFrame | Uint8Array) => Promise<void>, aborted: () => Error | undefined, serve: () => void } {
  const { ends: [mine, theirs], aborted } = pipe()
  const sent: BlockFrame[] = []
  void (async () => {
    for (;;) {
      const bytes = await theirs.read().catch(() => undefined)
      if (bytes == null) return
      sent.push(decodeBlockFrame(bytes))
    }
  })()
  const sessions = new BlockSessions({ store, metrics: noNetMetrics, share: new UploadShare({ connected: () => true }), open: async () => mine, ...timeouts })
  return {
    sessions,
    sent,
    send: async frame => { await theirs.write([frame instanceof Uint8Array ? frame : encodeBlockFrame(frame)]) },
    aborted,
    serve: () => { sessions.accept('hostile', mine) }
  }
}

describe('blocks 2.0.0 between two peers', () => {
  it('a block the peer lacked is announced when it arrives there: asked once, heard of without asking again', async () => {
    const { ends: [a, b] } = pipe()
    const storeA = new MemoryBlockStore()
    const storeB = new MemoryBlockStore()
    const asker = new BlockSessions({ store: storeA, metrics: noNetMetrics, share: new UploadShare({ connected: () => true }), open: async () => a })
    const server = new BlockSessions({ store: storeB, metrics: noNetMetrics, share: new UploadShare({ connected: () => true }), open: async () => b })
    server.accept('a', b)
    const x = await block('x')
    expect(await asker.have(peer('b'), [x.cid])).toEqual([false])
    expect(asker.known(peer('b'), [x.cid])).toEqual([false])
    const waiting = asker.haveWait(peer('b'), [x.cid], 10_000)
    await storeB.put(x.cid, x.bytes)
    server.arrived(x.cid)
    expect(await waiting).toEqual({ have: [true], waited: true })
    expect(asker.known(peer('b'), [x.cid])).toEqual([true])
    const got: string[] = []
    expect(await asker.get(peer('b'), [x.cid], async cid => { got.push(cid.toString()) })).toEqual([])
    expect(got).toEqual([x.cid.toString()])
    asker.stop()
    server.stop()
  })

  it('a block with wrong bytes fails the get with BlockHashMismatchError from the store, and is not stored', async () => {
    const store = new MemoryBlockStore()
    const h = againstHostile(store)
    const x = await block('x')
    const getting = h.sessions.get(peer('hostile'), [x.cid], async (cid, bytes) => { await store.put(cid, bytes) })
    await until(() => h.sent.length > 0)
    expect(h.sent.flatMap(f => f.wantBlock ?? []).map(String)).toEqual([x.cid.toString()])
    await h.send({ block: { cid: x.cid, bytes: new TextEncoder().encode('not x') } })
    await expect(getting).rejects.toBeInstanceOf(BlockHashMismatchError)
    expect(await store.has(x.cid)).toBe(false)
  })

  it('a block nobody asked for, garbage, an unknown message or an oversized list ends the stream with BlockProtocolError, and every request out rejects with it', async () => {
    const x = await block('x')
    const y = await block('y')
    const cases: Array<BlockFrame | Uint8Array> = [
      { block: { cid: y.cid, bytes: y.bytes } },
      Uint8Array.from([0xff, 0x00, 0x13]),
      encodeBlockFrame({}),
      Uint8Array.from([0xa1, 0x63, 0x66, 0x6f, 0x6f, 0x01]), // { foo: 1 }
      encodeBlockFrame({ have: Array.from({ length: 1025 }, () => x.cid) })
    ]
    for (const frame of cases) {
      const h = againstHostile()
      const asking = h.sessions.get(peer('hostile'), [x.cid], async () => {})
      await until(() => h.sent.length > 0)
      await h.send(frame)
      await expect(asking).rejects.toMatchObject({ name: 'BlockProtocolError' })
      expect(h.aborted()?.name).toBe('BlockProtocolError')
    }
  })

  it('serving: more than 32 blocks wanted at once, or wants faster than the rate, reset the stream with BlockProtocolError', async () => {
    const store = new MemoryBlockStore()
    const blocks = await Promise.all(Array.from({ length: MAX_GET_CIDS + 1 }, async (_, i) => await block(`b${i}`)))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    const greedy = againstHostile(store)
    greedy.serve()
    await greedy.send({ wantBlock: blocks.map(b => b.cid) })
    await until(() => greedy.aborted() != null)
    expect(greedy.aborted()?.message).toMatch(/more than 32 blocks/)

    // a clock that stands still: no wants are refilled while the frames are read
    const fast = againstHostile(store, { now: () => 1000 })
    fast.serve()
    for (let i = 0; i < 5 && fast.aborted() == null; i++) await fast.send({ wantHave: Array.from({ length: 1024 }, (_, j) => blocks[j % blocks.length]?.cid as CID) })
    await until(() => fast.aborted() != null)
    expect(fast.aborted()?.message).toMatch(/blocks a second/)
  })

  it('asking: a full want-list toward one peer queues further asks here, sent as answers free room; nothing is dropped, the peer\'s limit is never passed', async () => {
    const h = againstHostile()
    const blocks = await Promise.all(Array.from({ length: MAX_WANT_LIST + 2 }, async (_, i) => await block(`w${i}`)))
    const cids = blocks.map(b => b.cid)
    const named = (): string[] => h.sent.flatMap(f => f.wantHave ?? []).map(String)
    const first = h.sessions.have(peer('hostile'), cids.slice(0, MAX_WANT_LIST))
    const second = h.sessions.have(peer('hostile'), cids.slice(MAX_WANT_LIST))
    await until(() => named().length >= MAX_WANT_LIST)
    for (let i = 0; i < 10; i++) await tick()
    // the peer's want-list for us is full of asks it has not answered: the two more wait here
    expect(named().length).toBe(MAX_WANT_LIST)
    // it holds two of them: they are off its list, and the two waiting go out
    await h.send({ have: cids.slice(0, 2) })
    await until(() => named().length > MAX_WANT_LIST)
    expect(named().slice(MAX_WANT_LIST)).toEqual(cids.slice(MAX_WANT_LIST).map(String))
    await h.send({ dontHave: cids.slice(2) })
    expect(await first).toEqual(cids.slice(0, MAX_WANT_LIST).map((_, i) => i < 2))
    expect(await second).toEqual([false, false])
    expect(h.aborted()).toBeUndefined()
  })

  it('asking an honest peer about more blocks than its want-list holds, and for more than 32 blocks at once: all answered, the session is never refused', async () => {
    const { ends: [a, b], aborted } = pipe()
    const storeB = new MemoryBlockStore()
    const errors: string[] = []
    const asker = new BlockSessions({ store: new MemoryBlockStore(), metrics: noNetMetrics, share: new UploadShare({ connected: () => true }), open: async () => a, onError: (_, err) => { errors.push(err.message) } })
    const server = new BlockSessions({ store: storeB, metrics: noNetMetrics, share: new UploadShare({ connected: () => true }), open: async () => b, onError: (_, err) => { errors.push(err.message) } })
    server.accept('a', b)
    const lacking = await Promise.all(Array.from({ length: 2 * MAX_WANT_LIST + 10 }, async (_, i) => (await block(`l${i}`)).cid))
    const held = await Promise.all(Array.from({ length: 3 * MAX_GET_CIDS }, async (_, i) => await block(`h${i}`)))
    for (const x of held) await storeB.put(x.cid, x.bytes)
    const [answer, ...gets] = await Promise.all([
      asker.have(peer('b'), lacking),
      // three fetches at once, each wanting as many blocks as the peer serves at once
      ...[0, 1, 2].map(async i => await asker.get(peer('b'), held.slice(i * MAX_GET_CIDS, (i + 1) * MAX_GET_CIDS).map(x => x.cid), async () => {}))
    ])
    expect(answer).toEqual(lacking.map(() => false))
    expect(gets).toEqual([[], [], []])
    expect(errors).toEqual([])
    expect(aborted()).toBeUndefined()
    asker.stop()
    server.stop()
  })

  it('asking an honest peer about thousands of blocks as fast as it answers: the asker paces its wants below the peer\'s rate, and the session is never refused', async () => {
    const { ends: [a, b], aborted } = pipe()
    const errors: string[] = []
    const asker = new BlockSessions({ store: new MemoryBlockStore(), metrics: noNetMetrics, share: new UploadShare({ connected: () => true }), open: async () => a, onError: (_, err) => { errors.push(err.message) } })
    const server = new BlockSessions({ store: new MemoryBlockStore(), metrics: noNetMetrics, share: new UploadShare({ connected: () => true }), open: async () => b, onError: (_, err) => { errors.push(err.message) } })
    server.accept('a', b)
    // twice the peer's burst: in memory the answers come back at once, so unpaced these went out within a second
    const lacking = await Promise.all(Array.from({ length: 2 * MAX_WANTS_PER_SECOND }, async (_, i) => (await block(`many${i}`)).cid))
    const started = Date.now()
    const answer = await asker.have(peer('b'), lacking)
    expect(answer.every(held => !held)).toBe(true)
    expect(errors).toEqual([])
    expect(aborted()).toBeUndefined()
    // the rate was kept: after a burst of ASK_RATE, ASK_RATE a second (a bound, not a timing: it can only be slower)
    expect(Date.now() - started).toBeGreaterThanOrEqual(Math.floor((lacking.length - ASK_RATE) / ASK_RATE * 1000) - 50)
    asker.stop()
    server.stop()
  })

  it('asking: at most 32 wantBlocks out, whatever the gets; the 33rd goes once one is answered; a block two gets wait for is not cancelled when one of them fails', async () => {
    const store = new MemoryBlockStore()
    const h = againstHostile(store)
    const blocks = await Promise.all(Array.from({ length: MAX_GET_CIDS + 1 }, async (_, i) => await block(`g${i}`)))
    const cids = blocks.map(b => b.cid)
    const wanted = (): string[] => h.sent.flatMap(f => f.wantBlock ?? []).map(String)
    const cancelled = (): string[] => h.sent.flatMap(f => f.cancel ?? []).map(String)
    // one get fails on its first block (its onBlock throws); another waits for that block too
    const failing = h.sessions.get(peer('hostile'), cids.slice(0, 2), async () => { throw new Error('refused here') })
    const waiting = h.sessions.get(peer('hostile'), cids.slice(1), async (cid, bytes) => { await store.put(cid, bytes) })
    await until(() => wanted().length >= MAX_GET_CIDS)
    for (let i = 0; i < 10; i++) await tick()
    expect(wanted()).toEqual(cids.slice(0, MAX_GET_CIDS).map(String))
    await h.send({ block: blocks[0] as { cid: CID, bytes: Uint8Array } })
    await expect(failing).rejects.toThrow('refused here')
    await until(() => wanted().length > MAX_GET_CIDS)
    // answered: room for the 33rd; the block the other get still waits for stays wanted
    expect(wanted()).toEqual(cids.map(String))
    expect(cancelled()).toEqual([])
    for (const b of blocks.slice(1)) await h.send({ block: b })
    expect(await waiting).toEqual([])
    for (const b of blocks.slice(1)) expect(await store.has(b.cid)).toBe(true)
    expect(h.aborted()).toBeUndefined()
  })

  it('a peer that never answers: a have times out with BlockTimeoutError, and so does a get', async () => {
    const x = await block('x')
    const h = againstHostile(new MemoryBlockStore(), { haveTimeoutMs: 50, getTimeoutMs: 50 })
    await expect(h.sessions.have(peer('hostile'), [x.cid])).rejects.toMatchObject({ name: 'BlockTimeoutError' })
    await expect(h.sessions.get(peer('hostile'), [(await block('y')).cid], async () => {})).rejects.toMatchObject({ name: 'BlockTimeoutError' })
    // what timed out is cancelled: a late block for it is not held against the peer
    await until(() => h.sent.some(f => f.cancel != null))
    expect(h.sent.flatMap(f => f.cancel ?? []).length).toBe(1)
  })
})

describe('the asker\'s want pacer', () => {
  it('lets a burst of ASK_RATE wants through at once, then ASK_RATE a second: over any second at most what a peer takes', async () => {
    let now = 0
    const slept: number[] = []
    const pacer = new WantPacer(() => now, async ms => { slept.push(ms); now += ms })
    const sentAt: Array<{ at: number, n: number }> = []
    for (let i = 0; i < 40; i++) {
      await pacer.take(512)
      sentAt.push({ at: now, n: 512 })
    }
    // the first ASK_RATE (four takes of 512) go at once; each later one waits its share
    expect(slept).toHaveLength(40 - ASK_RATE / 512)
    expect(sentAt[sentAt.length - 1]?.at).toBeGreaterThanOrEqual((40 * 512 - ASK_RATE) / ASK_RATE * 1000)
    // the peer's token bucket (MAX_WANTS_PER_SECOND a second, as big a burst) never runs dry
    let tokens = MAX_WANTS_PER_SECOND
    let at = 0
    for (const s of sentAt) {
      tokens = Math.min(MAX_WANTS_PER_SECOND, tokens + (s.at - at) * MAX_WANTS_PER_SECOND / 1000)
      at = s.at
      expect(tokens).toBeGreaterThanOrEqual(s.n)
      tokens -= s.n
    }
  })

  it('does not wait for nothing, and a frame with no wants is never held', async () => {
    const pacer = new WantPacer(() => 0, async () => { throw new Error('slept') })
    await pacer.take(0)
    await pacer.take(ASK_RATE)
    await pacer.take(0)
  })
})
