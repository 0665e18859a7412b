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
import { MAX_GET_CIDS } from '../../src/net/block-messages.js'
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
