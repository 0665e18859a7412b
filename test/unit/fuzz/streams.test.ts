/**
 * Fuzz properties of the stream protocols, run through their real classes on in-memory
 * streams: length-prefixed framing and its size limits, anti-entropy sync, block
 * exchange (have / get, both sides), app streams and the shim's request and response
 * envelopes. Whatever a peer sends, the serving side answers or aborts the stream with a
 * named error, and the asking side returns a value of the right shape or throws one.
 */
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import * as lp from 'it-length-prefixed'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  AppStreams, BLOCKS_PROTOCOL, BLOCKS_SESSION_PROTOCOL, BlockExchange, MAX_APP_FRAME, MAX_GET_CIDS, MAX_HAVE_CIDS, MAX_SYNC_APPS, MAX_SYNC_RELEASES, MessageTooLargeError, SYNC_PROTOCOL, SyncProtocol,
  noNetMetrics, readFrame, readFrames, writeFrames
} from '../../../src/net/index.js'
import type { SyncRequest } from '../../../src/net/index.js'
import { MAX_RELEASES_TOPIC_MESSAGE } from '../../../src/release/index.js'
import { PrototypeKeyError, decodeDagCbor } from '../../../src/dag-cbor.js'
import { Shim, UnencodableValueError, encodeAppValue } from '../../../src/shim/index.js'
import { FsBlockStore, MemoryBlockStore, verifyBlock } from '../../../src/store/index.js'
import { tempDir } from '../../helpers.js'
import { connect, fakeComponents, fakePeer, scriptedStream } from './fake-net.js'
import { FEW_RUNS, RUNS } from './runs.js'
import { cborOf, cborValueArb, cidArb, expectNamedError, fieldArb, mapKeyArb, nastyStringArb, rarely, valueOrNamedError, withoutUndefined } from './support.js'

const log = (): void => {}
const PEER = fakePeer('12D3KooWHostile')

/** Frames as a peer writes them: length-prefixed, cut into chunks at arbitrary points. */
function onTheWire (frames: Uint8Array[], cuts: number[]): Uint8Array[] {
  const bytes = Buffer.concat(frames.map(f => lp.encode.single(f).subarray()))
  const points = [...new Set(cuts.map(c => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
  const chunks: Uint8Array[] = []
  let at = 0
  for (const p of [...points, bytes.byteLength]) {
    if (p > at) chunks.push(Uint8Array.from(bytes.subarray(at, p)))
    at = Math.max(at, p)
  }
  return chunks
}

/** Raw bytes, well-formed frames of anything, or frames of dag-cbor values. */
function inboundArb (frame: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array[]> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 4 }) },
    { weight: 6, arbitrary: fc.tuple(fc.array(frame, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 4 })).map(([frames, cuts]) => onTheWire(frames, cuts)) }
  )
}

const cborFrame = (value: fc.Arbitrary<unknown>): fc.Arbitrary<Uint8Array> => value.map(v => cborOf(v)).filter((b): b is Uint8Array => b != null)

/** Frames the code under test wrote to a probe, decoded again. */
async function framesOf (written: Uint8Array): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for (const f of lp.decode([written])) out.push(f.subarray())
  return out
}

/** Serve one scripted stream with `handler` and wait until the serving side wrote its answer or aborted. */
async function serveOnce (handler: (data: never) => void, inbound: Uint8Array[]): Promise<{ aborted: Error | undefined, frames: Uint8Array[] }> {
  const probe = scriptedStream(inbound)
  ;(handler as (data: unknown) => void)({ stream: probe.stream, connection: { remotePeer: PEER } })
  await probe.finished
  return { aborted: probe.aborted(), frames: probe.aborted() == null ? await framesOf(probe.written()) : [] }
}

describe('length-prefixed framing (every stream protocol)', () => {
  it('any bytes, cut anywhere: frames within the limit, or a named error', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 5 }), fc.integer({ min: 0, max: 64 }), async (chunks, max) => {
      await valueOrNamedError(async () => {
        const frames: Uint8Array[] = []
        for await (const f of readFrames(scriptedStream(chunks).stream, max)) frames.push(f)
        return frames
      }, frames => { for (const f of frames) expect(f.byteLength).toBeLessThanOrEqual(max) })
    }), { numRuns: RUNS })
  })

  it('round trip: frames written are the frames read, however the bytes are cut', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }), fc.array(fc.nat(), { maxLength: 6 }), async (frames, cuts) => {
      const probe = scriptedStream([])
      await writeFrames(probe.stream, frames)
      const read: Uint8Array[] = []
      for await (const f of readFrames(scriptedStream(onTheWire(await framesOf(probe.written()), cuts)).stream, 300)) read.push(Uint8Array.from(f))
      expect(read).toEqual(frames.map(f => Uint8Array.from(f)))
    }), { numRuns: RUNS })
  })

  it('size limit: a frame declared over the limit is refused on its length prefix, before its bytes arrive or are buffered', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 1024 }), fc.oneof(fc.integer({ min: 1, max: 2 ** 31 }), fc.constant(2 ** 40)), async (max, over) => {
      const declared = max + over
      // the stream then stalls: only a refusal on the prefix alone ends the read
      const probe = scriptedStream([varint(declared)], { hang: true })
      const result = await valueOrNamedError(async () => await readFrame(probe.stream, max))
      expect(result.ok).toBe(false)
      if (!result.ok) expect(result.error).toBeInstanceOf(MessageTooLargeError)
    }), { numRuns: RUNS })
  })
})

/** The unsigned varint of `n` (what it-length-prefixed writes before a frame). */
function varint (n: number): Uint8Array {
  const out: number[] = []
  let v = n
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

describe('anti-entropy sync', () => {
  const requestArb = fc.record({
    apps: fieldArb(fc.oneof(
      { weight: 10, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom('kv', 'demo'), fc.string({ maxLength: 70 }), mapKeyArb), fc.oneof(fc.constant(null), fc.string({ maxLength: 70 }), cborValueArb), { maxKeys: 4, noNullPrototype: true }) },
      { weight: 1, arbitrary: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.constant(null), { minKeys: 30, maxKeys: 36, noNullPrototype: true }) }
    ), 10),
    network: fieldArb(fc.constantFrom('default', 'other'), 10),
    extra: rarely(fc.tuple(nastyStringArb, cborValueArb))
  }).map(({ extra, ...r }) => withoutUndefined(extra == null ? r : { ...r, [extra[0]]: extra[1] }))

  it('serving: any request is answered for at most the bounded apps asked, or the stream is aborted with a named error', async () => {
    const node = fakeComponents()
    const asked: SyncRequest[] = []
    const sync = new SyncProtocol(node, { network: 'default', metrics: noNetMetrics, log, releasesFor: request => { asked.push(request); return [Uint8Array.of(1, 2, 3)] } })
    await sync.start()
    const handler = node.handlers.get(SYNC_PROTOCOL) as (data: never) => void
    await fc.assert(fc.asyncProperty(inboundArb(cborFrame(requestArb)), async inbound => {
      asked.length = 0
      const { aborted, frames } = await serveOnce(handler, inbound)
      if (aborted != null) {
        expectNamedError(aborted)
        expect(asked).toEqual([])
        return
      }
      for (const request of asked) {
        expect(Object.keys(request).length).toBeLessThanOrEqual(MAX_SYNC_APPS)
        for (const [app, version] of Object.entries(request)) {
          expect(app.length).toBeLessThanOrEqual(64)
          expect(version === null || (typeof version === 'string' && version.length <= 64)).toBe(true)
        }
      }
      expect(frames.length).toBe(asked.length)
    }), { numRuns: RUNS })
  })

  it('asking: whatever a peer answers is at most 256 frames within the message limit, or a named error', async () => {
    const frame = fc.oneof(fc.uint8Array({ maxLength: 64 }), cborFrame(cborValueArb))
    const answer = fc.oneof(
      { weight: 8, arbitrary: inboundArb(frame) },
      { weight: 1, arbitrary: fc.constant(onTheWire(Array.from({ length: MAX_SYNC_RELEASES + 1 }, () => Uint8Array.of(0)), [])) },
      { weight: 1, arbitrary: fc.constant<Uint8Array[]>([varint(MAX_RELEASES_TOPIC_MESSAGE + 1)]) }
    )
    await fc.assert(fc.asyncProperty(answer, async inbound => {
      const sync = new SyncProtocol(fakeComponents(() => scriptedStream(inbound).stream), { network: 'default', metrics: noNetMetrics, log, releasesFor: () => [] })
      await valueOrNamedError(async () => await sync.sync(PEER, { kv: '1.0.0' }), releases => {
        expect(releases.length).toBeLessThanOrEqual(MAX_SYNC_RELEASES)
        for (const r of releases) expect(r.byteLength).toBeLessThanOrEqual(MAX_RELEASES_TOPIC_MESSAGE)
      })
    }), { numRuns: RUNS })
  })

  it('round trip: a peer of the same network gets exactly the frames the other serves for its request', async () => {
    await fc.assert(fc.asyncProperty(fc.dictionary(fc.constantFrom('kv', 'demo', 'x'), fc.option(fc.constantFrom('1.0.0', '2.0.0')), { noNullPrototype: true }), fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 5 }), fc.boolean(), async (request, served, sameNetwork) => {
      let asked: SyncRequest | undefined
      const server = fakeComponents()
      await new SyncProtocol(server, { network: 'default', metrics: noNetMetrics, log, releasesFor: r => { asked = r; return served } }).start()
      const client = new SyncProtocol(fakeComponents(connect(server)), { network: sameNetwork ? 'default' : 'other', metrics: noNetMetrics, log, releasesFor: () => [] })
      const got = await client.sync(PEER, request)
      if (sameNetwork) {
        expect(asked).toEqual(request)
        expect(got.map(b => Uint8Array.from(b))).toEqual(served.map(b => Uint8Array.from(b)))
      } else {
        expect(got).toEqual([])
      }
    }), { numRuns: RUNS })
  })
})

describe('block exchange', () => {
  const store = new MemoryBlockStore()
  const held: CID[] = []
  const blockBytes = new Map<string, Uint8Array>()
  beforeAll(async () => {
    for (let i = 0; i < 6; i++) {
      const bytes = Uint8Array.from(Buffer.from(`block ${i} `.repeat(i + 1)))
      const cid = CID.createV1(0x55, await sha256.digest(bytes))
      await store.put(cid, bytes)
      held.push(cid)
      blockBytes.set(cid.toString(), bytes)
    }
  })
  const heldArb = fc.nat(5).map(i => held[i] as CID)
  const someCid = fc.oneof(heldArb, cidArb)
  /** An asker that speaks only 1.x (as a daemon from before 2.0.0), whose every stream reads `inbound`; `dialed` gets the protocols it opened, `answered` counts the values it returned. */
  const v1 = { dialed: new Set<string>(), answered: 0 }
  const v1Asker = (inbound: Uint8Array[]): BlockExchange => new BlockExchange(fakeComponents(protocol => {
    for (const p of [protocol].flat()) v1.dialed.add(p)
    return scriptedStream(inbound).stream
  }), { store, metrics: noNetMetrics, log, v1Only: true })
  /** The 1.x properties reached the 1.x decoder: nothing but 1.0.0 was opened, and some answers were values (2.0.0's decoder refuses every 1.x frame). */
  const expectV1Reached = (): void => {
    expect([...v1.dialed]).toEqual([BLOCKS_PROTOCOL])
    expect(v1.answered).toBeGreaterThan(0)
    v1.dialed.clear()
    v1.answered = 0
  }

  it('serving: any have/get request is answered in the protocol\'s shape, or the stream is aborted with a named error', async () => {
    // the daemon's own store: blocks on disk
    const disk = new FsBlockStore(path.join(await tempDir(), 'blocks'))
    for (const cid of held) await disk.put(cid, blockBytes.get(cid.toString()) as Uint8Array)
    const node = fakeComponents()
    await new BlockExchange(node, { store: disk, metrics: noNetMetrics, log }).start()
    const handler = node.handlers.get(BLOCKS_PROTOCOL) as (data: never) => void
    const request = fc.oneof(
      fc.record({ have: fieldArb(fc.oneof({ weight: 8, arbitrary: fc.array(someCid, { maxLength: 5 }) }, { weight: 1, arbitrary: fc.array(fc.constant(CID.parse('bafkqaaa')), { minLength: MAX_HAVE_CIDS - 1, maxLength: MAX_HAVE_CIDS + 1 }) }), 8) }).map(withoutUndefined),
      fc.record({ get: fieldArb(fc.oneof({ weight: 8, arbitrary: fc.array(someCid, { maxLength: 5 }) }, { weight: 1, arbitrary: fc.array(heldArb, { minLength: MAX_GET_CIDS - 1, maxLength: MAX_GET_CIDS + 1 }) }), 8) }).map(withoutUndefined),
      fc.dictionary(fc.oneof(fc.constantFrom('have', 'get'), mapKeyArb), cborValueArb, { maxKeys: 3, noNullPrototype: true }),
      cborValueArb
    )
    await fc.assert(fc.asyncProperty(inboundArb(cborFrame(request)), async inbound => {
      const { aborted, frames } = await serveOnce(handler, inbound)
      if (aborted != null) {
        expectNamedError(aborted)
        return
      }
      const asked = dagCbor.decode<{ have?: CID[], get?: CID[] }>(await readFrame(scriptedStream(inbound).stream, 1 << 20))
      if (asked.have != null) {
        expect(frames.length).toBe(1)
        expect(dagCbor.decode<{ have: boolean[] }>(frames[0] as Uint8Array).have).toEqual(asked.have.map(c => blockBytes.has(c.toString())))
      } else {
        expect(frames.length).toBe(asked.get?.length)
        for (const [i, f] of frames.entries()) {
          const answer = dagCbor.decode<{ cid: CID, bytes?: Uint8Array, missing?: boolean }>(f)
          expect(answer.cid.toString()).toBe(asked.get?.[i]?.toString())
          if (answer.bytes != null) await verifyBlock(answer.cid, answer.bytes)
        }
      }
    }), { numRuns: RUNS })
  })

  it('asking "have": any answer is one boolean per CID asked, or a named error', async () => {
    const answer = fc.oneof(
      fc.record({ have: fieldArb(fc.array(fc.oneof({ weight: 8, arbitrary: fc.boolean() }, { weight: 1, arbitrary: cborValueArb }), { maxLength: 4 }), 8) }).map(withoutUndefined),
      cborValueArb
    )
    await fc.assert(fc.asyncProperty(fc.array(heldArb, { minLength: 1, maxLength: 3 }), inboundArb(cborFrame(answer)), async (cids, inbound) => {
      const outcome = await valueOrNamedError(async () => await v1Asker(inbound).have(PEER, cids), have => {
        expect(have.length).toBe(cids.length)
        for (const h of have) expect(typeof h).toBe('boolean')
      })
      if (outcome.ok) v1.answered++
    }), { numRuns: RUNS })
    expectV1Reached()
  })

  it('asking "get": only blocks that match their CID reach the store, and any answer stream ends in a missing list or a named error', async () => {
    const frame = (cids: CID[]): fc.Arbitrary<unknown> => fc.oneof(
      fc.record({
        cid: fieldArb(fc.oneof(fc.constantFrom(...cids), someCid), 8),
        bytes: fieldArb(fc.oneof(fc.constantFrom(...cids).map(c => blockBytes.get(c.toString()) as Uint8Array), fc.uint8Array({ maxLength: 40 })), 4),
        missing: fieldArb(fc.boolean(), 1)
      }).map(withoutUndefined),
      cborValueArb
    )
    const scenario = fc.array(heldArb, { minLength: 1, maxLength: 4 }).chain(cids => fc.tuple(fc.constant(cids), inboundArb(cborFrame(frame(cids)))))
    await fc.assert(fc.asyncProperty(scenario, async ([cids, inbound]) => {
      const accepted: CID[] = []
      const outcome = await valueOrNamedError(async () => await v1Asker(inbound).get(PEER, cids, async (cid, bytes) => {
        await verifyBlock(cid, bytes)
        expect(cids.some(c => c.equals(cid))).toBe(true)
        accepted.push(cid)
      }), missing => {
        for (const m of missing) expect(cids.some(c => c.equals(m))).toBe(true)
        expect(accepted.length + missing.length).toBe(cids.length)
      })
      if (outcome.ok) v1.answered++
    }), { numRuns: RUNS })
    expectV1Reached()
  })

  it('round trip, in 2.0.0 and in 1.x: a peer learns exactly what another holds and gets those blocks intact', async () => {
    await fc.assert(fc.asyncProperty(fc.subarray([0, 1, 2, 3, 4, 5]), fc.array(fc.oneof(heldArb, fc.uint8Array({ minLength: 32, maxLength: 32 }).map(d => CID.createV1(0x55, createDigest(0x12, d)))), { minLength: 1, maxLength: 6 }), fc.boolean(), async (holding, cids, v1Only) => {
      const partial = new MemoryBlockStore()
      for (const i of holding) await partial.put(held[i] as CID, blockBytes.get((held[i] as CID).toString()) as Uint8Array)
      const server = fakeComponents()
      await new BlockExchange(server, { store: partial, metrics: noNetMetrics, log }).start()
      const dialed = new Set<string>()
      const dial = connect(server)
      const client = new BlockExchange(fakeComponents(protocol => { for (const p of [protocol].flat()) dialed.add(p); return dial(protocol) }), { store: new MemoryBlockStore(), metrics: noNetMetrics, log, v1Only })
      // a 1.x client opens 1.0.0 streams only; a 2.0.0 client one session stream
      const expectDialed = (): void => { expect([...dialed]).toEqual([v1Only ? BLOCKS_PROTOCOL : BLOCKS_SESSION_PROTOCOL]) }
      const has = await client.have(PEER, cids)
      expect(has).toEqual(await Promise.all(cids.map(async c => await partial.has(c))))
      const got: string[] = []
      const missing = await client.get(PEER, cids, async (cid, bytes) => { got.push(cid.toString()); expect(bytes).toEqual(blockBytes.get(cid.toString())) })
      expect(got).toEqual(cids.filter((_, i) => has[i] === true).map(String))
      expect(missing.map(String)).toEqual(cids.filter((_, i) => has[i] !== true).map(String))
      expectDialed()
    }), { numRuns: RUNS })
  })
})

describe('app streams and the shim', () => {
  const requestArb = fc.oneof({ weight: 6, arbitrary: cborFrame(cborValueArb) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) })

  it('round trip: any value an app sends is carried as dag-cbor and decodes to what re-encodes the same, or is refused with UnencodableValueError', async () => {
    const valueArb = fc.oneof({ weight: 6, arbitrary: cborValueArb }, { weight: 1, arbitrary: fc.constantFrom(undefined, Number.NaN, Infinity, new Map([[1, 2]]), new Set([1]), () => 1, Symbol('x'), { a: undefined }) })
    await fc.assert(fc.asyncProperty(valueArb, async value => {
      const result = await valueOrNamedError(() => encodeAppValue(value))
      if (!result.ok) {
        expect(result.error).toBeInstanceOf(UnencodableValueError)
        return
      }
      // what the receiving shim decodes (a map key "__proto__" is refused there, by name)
      const decoded = await valueOrNamedError(() => decodeDagCbor(result.value))
      if (decoded.ok) expect(encodeAppValue(decoded.value)).toEqual(result.value)
      else expect(decoded.error).toBeInstanceOf(PrototypeKeyError)
    }), { numRuns: RUNS })
  })

  it('serving: any request frame reaches the app decoded, or is answered with an error envelope; the answer is always an envelope', async () => {
    const { node, delivered } = await servingShim()
    const handler = node.handlers.get('/upgossip/app/kv/1') as (data: never) => void
    await fc.assert(fc.asyncProperty(inboundArb(requestArb), async inbound => {
      delivered.length = 0
      const { aborted, frames } = await serveOnce(handler, inbound)
      if (aborted != null) {
        expectNamedError(aborted)
        return
      }
      // a stream carries one exchange after another: every request frame gets its envelope
      let ok = 0
      for (const frame of frames) {
        const envelope = dagCbor.decode<{ ok: boolean, value?: unknown, error?: { name: unknown, message: unknown } }>(frame)
        if (envelope.ok) {
          ok++
        } else {
          expect(typeof envelope.error?.name).toBe('string')
          expect(typeof envelope.error?.message).toBe('string')
        }
      }
      expect(delivered.length).toBe(ok)
    }), { numRuns: RUNS })
  })

  it('serving multiplexed calls: any frame is answered under its own id with an envelope, or the stream is aborted with a named error', async () => {
    const { node, delivered } = await servingShim()
    const handler = node.handlers.get('/upgossip/app-mux/kv/1') as (data: never) => void
    expect(handler).toBeDefined()
    // a frame is a 4-byte id and a request; a frame shorter than its id is a broken stream
    const muxFrameArb = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.nat(), requestArb).map(([id, request]) => Uint8Array.from([...withId(id), ...request])) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 3 }) }
    )
    await fc.assert(fc.asyncProperty(inboundArb(muxFrameArb), async inbound => {
      delivered.length = 0
      const { aborted, frames } = await serveOnce(handler, inbound)
      if (aborted != null) {
        expectNamedError(aborted)
        return
      }
      const asked = new Set<number>()
      for (const frame of await framesOf(Buffer.concat(inbound))) if (frame.byteLength >= 4) asked.add(new DataView(frame.buffer, frame.byteOffset).getUint32(0))
      let ok = 0
      for (const frame of frames) {
        expect(frame.byteLength).toBeGreaterThan(4)
        expect(asked.has(new DataView(frame.buffer, frame.byteOffset).getUint32(0))).toBe(true)
        const envelope = dagCbor.decode<{ ok: boolean, error?: { name: unknown, message: unknown } }>(frame.subarray(4))
        if (envelope.ok) ok++
        else expect(typeof envelope.error?.name).toBe('string')
      }
      expect(delivered.length).toBe(ok)
    }), { numRuns: RUNS })
  })

  it('calling: whatever a peer answers becomes the response value or a named error for this call only', async () => {
    const answer = fc.oneof(
      fc.record({
        ok: fieldArb(fc.boolean(), 8),
        value: fieldArb(cborValueArb, 4),
        error: fieldArb(fc.record({ name: fieldArb(fc.oneof(fc.constantFrom('Error', 'NotFound', 'TypeError', ''), nastyStringArb, fc.string({ minLength: 100, maxLength: 200 })), 6), message: fieldArb(nastyStringArb, 6) }).map(withoutUndefined), 4)
      }).map(withoutUndefined),
      cborValueArb
    )
    await fc.assert(fc.asyncProperty(inboundArb(cborFrame(answer)), async inbound => {
      const streams = new AppStreams(fakeComponents(() => scriptedStream(inbound).stream), { metrics: noNetMetrics, log })
      const shim = new Shim({ streams, selfId: () => 'self', app: () => 'kv', native: () => 1, spoken: () => [1], nativeOf: () => 1, deliver: async () => null, log, callTimeoutMs: 1000 })
      await valueOrNamedError(async () => await shim.send('12D3KooWGzh4t3YMGZUU3uhqTMy3i6HUfrXAqjKaA5AqLKUSdmEk', 1, { op: 'get' }))
    }), { numRuns: RUNS })
  })

  it('a peer that stalls mid-frame: the call ends by its deadline with a named error', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 100 }), fc.nat(99), async (declared, sent) => {
      const partial = [varint(declared), new Uint8Array(Math.min(sent, declared - 1))]
      const streams = new AppStreams(fakeComponents(() => scriptedStream(partial, { hang: true }).stream), { metrics: noNetMetrics, log })
      const result = await valueOrNamedError(async () => await streams.request(PEER, '/upgossip/app/kv/1', Uint8Array.of(0xa0), 5))
      expect(result.ok).toBe(false)
    }), { numRuns: FEW_RUNS })
  })

  it('size limit: an app frame over the limit is refused on its length prefix', async () => {
    const streams = new AppStreams(fakeComponents(() => scriptedStream([varint(MAX_APP_FRAME + 1)], { hang: true }).stream), { metrics: noNetMetrics, log })
    const result = await valueOrNamedError(async () => await streams.request(PEER, '/upgossip/app/kv/1', Uint8Array.of(0xa0), 5000))
    expect(!result.ok && result.error instanceof MessageTooLargeError).toBe(true)
  })
})

/** A multiplexed call's id as it goes in front of its payload: 4 bytes, big-endian. */
function withId (id: number): Uint8Array {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, id >>> 0)
  return bytes
}

/** A shim serving app `kv` protocol 1 on fake components; what it delivers to the app is kept in `delivered`. */
async function servingShim (): Promise<{ node: ReturnType<typeof fakeComponents>, delivered: unknown[] }> {
  const node = fakeComponents()
  const streams = new AppStreams(node, { metrics: noNetMetrics, log })
  const delivered: unknown[] = []
  const shim = new Shim({
    streams,
    selfId: () => 'self',
    app: () => 'kv',
    native: () => 1,
    spoken: () => [1],
    nativeOf: () => undefined,
    deliver: async (_from, request) => { delivered.push(request); return request },
    log
  })
  await shim.update()
  return { node, delivered }
}
