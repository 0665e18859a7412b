/**
 * The hand-written codec of blocks 2.0.0 frames (src/net/block-frame-codec.ts) against the
 * dag-cbor one it replaced: the same bytes out, the same frames in, the same frames
 * refused — and every refusal a `BlockProtocolError`, the block's bytes never copied.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Stream } from '@libp2p/interface'
import fc from 'fast-check'
import * as lp from 'it-length-prefixed'
import { CID } from 'multiformats/cid'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { decodeDagCbor } from '../../src/dag-cbor.js'
import { decodeBlockFrame, encodeBlockFrame } from '../../src/net/block-frame-codec.js'
import { BlockProtocolError, MAX_BLOCK_BYTES, MAX_BLOCK_FRAME, MAX_HAVE_CIDS, isEmptyFrame } from '../../src/net/block-messages.js'
import { FramedChannel } from '../../src/net/framed-channel.js'
import type { BlockFrame } from '../../src/net/block-messages.js'
import { RUNS } from './fuzz/runs.js'
import { cborValueArb, cidArb } from './fuzz/support.js'

const LISTS = ['wantHave', 'wantBlock', 'cancel', 'have', 'dontHave'] as const

// ---- the dag-cbor codec this one replaced, kept as the reference ----

function referenceEncode (frame: BlockFrame): Uint8Array {
  const out: Record<string, unknown> = {}
  for (const list of LISTS) if ((frame[list]?.length ?? 0) > 0) out[list] = frame[list]
  if (frame.block != null) out.block = frame.block
  return dagCbor.encode(out)
}

function referenceDecode (bytes: Uint8Array): BlockFrame {
  let value: unknown
  try {
    value = decodeDagCbor(bytes)
  } catch (err) {
    throw new BlockProtocolError(`frame is not dag-cbor: ${(err as Error).message}`)
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) throw new BlockProtocolError('frame is not a map')
  const v = value as Record<string, unknown>
  const frame: BlockFrame = {}
  for (const key of Object.keys(v)) {
    if ((LISTS as readonly string[]).includes(key)) {
      const list = v[key]
      if (!Array.isArray(list) || list.length > MAX_HAVE_CIDS) throw new BlockProtocolError('not a list')
      frame[key as typeof LISTS[number]] = list.map(c => {
        const cid = CID.asCID(c)
        if (cid == null) throw new BlockProtocolError('not a CID')
        return cid
      })
    } else if (key === 'block') {
      const block = v.block as { cid?: unknown, bytes?: unknown } | null
      const cid = CID.asCID(block?.cid)
      if (block == null || typeof block !== 'object' || cid == null || !(block.bytes instanceof Uint8Array) || Object.keys(block).length !== 2) throw new BlockProtocolError('"block" must be { cid, bytes }')
      if (block.bytes.byteLength > MAX_BLOCK_BYTES) throw new BlockProtocolError('a block too large')
      frame.block = { cid, bytes: block.bytes }
    } else {
      throw new BlockProtocolError('unknown message')
    }
  }
  if (isEmptyFrame(frame)) throw new BlockProtocolError('an empty frame')
  return frame
}

// ---- frames ----

/** Lengths at and around each size of a CBOR head (23/24, 255/256, 65535/65536). */
const blockLengthArb = fc.oneof(
  { weight: 12, arbitrary: fc.nat(300) },
  { weight: 1, arbitrary: fc.constantFrom(0, 23, 24, 255, 256, 65_535, 65_536, 262_144, MAX_BLOCK_BYTES) }
)
const blockArb = fc.tuple(cidArb, blockLengthArb, fc.nat(255)).map(([cid, n, fill]) => ({ cid, bytes: new Uint8Array(n).fill(fill) }))
const cidListArb = fc.oneof(
  { weight: 8, arbitrary: fc.array(cidArb, { maxLength: 30 }) },
  { weight: 1, arbitrary: fc.tuple(cidArb, fc.constantFrom(23, 24, 255, 256, MAX_HAVE_CIDS)).map(([cid, n]) => Array.from({ length: n }, () => cid)) }
)
const frameArb: fc.Arbitrary<BlockFrame> = fc.record(
  { wantHave: cidListArb, wantBlock: cidListArb, cancel: cidListArb, have: cidListArb, dontHave: cidListArb, block: blockArb },
  { requiredKeys: [] }
)
const nonEmptyFrameArb = frameArb.filter(f => !isEmptyFrame(f))

const join = (list: Uint8ArrayList): Uint8Array => list.subarray()
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

/** The outcome of a decoder: the frame as comparable text, or the name of its error. */
function outcome (decode: (bytes: Uint8Array) => BlockFrame, bytes: Uint8Array): string {
  try {
    const frame = decode(bytes)
    return JSON.stringify({
      ...Object.fromEntries(LISTS.filter(l => frame[l] != null).map(l => [l, frame[l]?.map(String)])),
      block: frame.block == null ? undefined : { cid: frame.block.cid.toString(), bytes: hex(frame.block.bytes) }
    })
  } catch (err) {
    return `refused: ${(err as Error).name}`
  }
}

/** `decodeBlockFrame` refuses `bytes` with a BlockProtocolError whose message matches `message`. */
function refused (bytes: Uint8Array, message?: RegExp): void {
  let caught: unknown
  try {
    decodeBlockFrame(bytes)
  } catch (err) {
    caught = err
  }
  expect(caught, `accepted ${hex(bytes)}`).toBeInstanceOf(BlockProtocolError)
  expect((caught as Error).name).toBe('BlockProtocolError')
  if (message != null) expect((caught as Error).message).toMatch(message)
}

const cbor = (value: unknown): Uint8Array => dagCbor.encode(value)
const bytesOf = (...parts: Array<number | Uint8Array | number[]>): Uint8Array => Uint8Array.from(parts.flatMap(p => typeof p === 'number' ? [p] : [...p]))
const text = (s: string): number[] => [0x60 | s.length, ...Buffer.from(s)]

describe('blocks 2.0.0 frame codec', () => {
  it('encodes every frame to exactly the bytes dag-cbor writes, the block\'s bytes an uncopied piece of their own', () => {
    fc.assert(fc.property(frameArb, frame => {
      const encoded = encodeBlockFrame(frame)
      expect(hex(join(encoded))).toBe(hex(referenceEncode(frame)))
      expect(encoded.byteLength).toBe(referenceEncode(frame).byteLength)
      if (frame.block != null) expect([...encoded].some(piece => piece === frame.block?.bytes)).toBe(true)
    }), { numRuns: RUNS })
  })

  it('decodes what dag-cbor wrote to the frame the dag-cbor decoder read, the block\'s bytes a view of the frame', () => {
    fc.assert(fc.property(nonEmptyFrameArb, fc.boolean(), (frame, asBuffer) => {
      // frames read from a stream are Buffers, whose `slice` is a view
      const bytes = asBuffer ? Buffer.from(referenceEncode(frame)) : referenceEncode(frame)
      const decoded = decodeBlockFrame(bytes)
      // compared as text: vitest's deep equality walks a 1 MiB array index by index
      expect(outcome(() => decoded, bytes)).toBe(outcome(referenceDecode, bytes))
      expect(Object.keys(decoded).sort()).toEqual(Object.keys(referenceDecode(bytes)).sort())
      if (decoded.block != null) {
        expect(decoded.block.bytes.buffer).toBe(bytes.buffer)
        expect(decoded.block.bytes.constructor).toBe(Uint8Array)
      }
      for (const cid of LISTS.flatMap(l => decoded[l] ?? [])) expect(cid.bytes.buffer).not.toBe(bytes.buffer)
    }), { numRuns: RUNS })
  })

  it('accepts and refuses exactly what the dag-cbor decoder did: valid frames with a byte changed, cut or added, and maps of the known keys holding anything', () => {
    const known = fc.constantFrom('wantHave', 'wantBlock', 'cancel', 'have', 'dontHave', 'block')
    const anyValueMap = fc.dictionary(fc.oneof({ weight: 6, arbitrary: known }, { weight: 1, arbitrary: fc.constantFrom('cid', 'bytes', '__proto__', 'x') }),
      fc.oneof(cborValueArb, fc.array(cidArb, { maxLength: 3 }), fc.record({ cid: fc.oneof(cidArb, cborValueArb), bytes: fc.oneof(fc.uint8Array({ maxLength: 8 }), cborValueArb) }, { requiredKeys: [] })),
      { maxKeys: 4, noNullPrototype: true })
      .map(v => { try { return dagCbor.encode(v) } catch { return Uint8Array.of(0xa0) } })
    const mutated = fc.tuple(nonEmptyFrameArb.map(referenceEncode), fc.nat(), fc.nat(255), fc.constantFrom('set', 'cut', 'add'))
      .map(([bytes, at, value, how]) => {
        const i = at % bytes.byteLength
        if (how === 'cut') return bytes.subarray(0, i)
        if (how === 'add') return bytesOf(bytes, value)
        const out = Uint8Array.from(bytes)
        out[i] = value
        return out
      })
    fc.assert(fc.property(fc.oneof(anyValueMap, mutated, fc.uint8Array({ maxLength: 64 })), bytes => {
      expect(outcome(decodeBlockFrame, bytes)).toBe(outcome(referenceDecode, bytes))
    }), { numRuns: RUNS * 5 })
  })

  it('refuses a frame cut at every length, and one with bytes after it', () => {
    const [a, b] = fc.sample(cidArb, { numRuns: 2, seed: 7 }) as [CID, CID]
    const bytes = join(encodeBlockFrame({ have: [a], block: { cid: b, bytes: new Uint8Array(300).fill(7) }, wantHave: [a, b] }))
    expect(decodeBlockFrame(bytes).block?.bytes.byteLength).toBe(300)
    for (let n = 0; n < bytes.byteLength; n++) refused(bytes.subarray(0, n), /ends early/)
    refused(bytesOf(bytes, 0), /1 bytes after the frame/)
    refused(bytesOf(bytes, bytes), /bytes after the frame/)
  })

  describe('refuses with BlockProtocolError', () => {
    const [a, b] = fc.sample(cidArb, { numRuns: 2, seed: 3 }) as [CID, CID]
    const block = { cid: a, bytes: Uint8Array.of(1, 2, 3) }

    it('wrong types: a frame that is not a map, a list that is not a list, an item that is not a CID, a block that is not { cid, bytes }', () => {
      refused(cbor([{ have: [a] }]), /not a map/)
      refused(cbor('have'), /not a map/)
      refused(cbor({ have: a }), /"have" must be a list/)
      refused(cbor({ wantBlock: { 0: a } }), /"wantBlock" must be a list/)
      refused(cbor({ cancel: [a.bytes] }), /"cancel" holds something that is not a CID/)
      refused(cbor({ dontHave: [a, 1] }), /"dontHave" holds something that is not a CID/)
      refused(cbor({ block: [a, block.bytes] }), /"block" must be \{ cid, bytes \}/)
      refused(cbor({ block: { cid: a } }), /"block" must be/)
      refused(cbor({ block: { cid: a, bytes: 'abc' } }), /"block" must be/)
      refused(cbor({ block: { cid: a.bytes, bytes: block.bytes } }), /not a CID/)
      refused(cbor({ block: { cid: a, bytes: block.bytes, more: 1 } }), /"block" must be/)
      refused(cbor({ block: { cid: a, data: block.bytes } }), /"block" must be/)
      refused(bytesOf(0xa1, 0x01, 0x80), /map key that is not a text string/)
    })

    it('CIDs: another tag, no 0x00 prefix, bytes that are not a CID, a tag over no bytes', () => {
      const tagged = (tag: number[], ...body: number[]): Uint8Array => bytesOf(0xa1, text('have'), 0x81, tag, body)
      refused(tagged([0xd8, 43], 0x41, 0x00), /not a CID/)
      refused(tagged([0xd8, 42], 0x43, 0x01, 0x01, 0x55), /without its 0x00 prefix/)
      refused(tagged([0xd8, 42], 0x43, 0x00, 0xff, 0xff), /bytes that are not a CID/)
      refused(tagged([0xd8, 42], 0x40), /over no bytes/)
      refused(tagged([0xd8, 42], 0x61, 0x00), /CID tag over something other than bytes/)
      // a CID with a byte after it
      refused(tagged([0xd8, 42], 0x40 | (a.bytes.byteLength + 2), 0x00, ...a.bytes, 0x00), /not a CID/)
    })

    it('unknown keys, "__proto__" at the top and inside the block, and the empty frame', () => {
      refused(bytesOf(0xa1, text('foo'), 0x01), /unknown message "foo"/)
      refused(bytesOf(0xa1, text('__proto__'), 0xa0), /unknown message "__proto__"/)
      refused(bytesOf(0xa2, text('have'), 0x81, cbor(a), text('__proto__'), 0xa1, text('have'), 0x80), /unknown message "__proto__"/)
      refused(bytesOf(0xa1, text('block'), 0xa2, text('cid'), cbor(a), text('__proto__'), 0xa0), /"block" must be/)
      refused(bytesOf(0xa1, text('block'), 0xa3, text('cid'), cbor(a), text('bytes'), 0x40, text('__proto__'), 0xa0), /"block" must be/)
      refused(bytesOf(0xa1, text('constructor'), 0x80), /unknown message "constructor"/)
      refused(cbor({}), /empty frame/)
      refused(cbor({ have: [], cancel: [] }), /empty frame/)
      refused(new Uint8Array(0), /ends early/)
    })

    it('duplicate keys, at the top and inside the block', () => {
      const have = [...text('have'), 0x81, ...cbor(a)]
      refused(bytesOf(0xa2, have, have), /"have" twice/)
      const cidEntry = [...text('cid'), ...cbor(a)]
      refused(bytesOf(0xa1, text('block'), 0xa2, cidEntry, cidEntry), /"cid" twice/)
      const bytesEntry = [...text('bytes'), 0x41, 0x07]
      refused(bytesOf(0xa1, text('block'), 0xa2, bytesEntry, bytesEntry), /"bytes" twice/)
    })

    it('limits: a list of 1025 CIDs, a block over 1 MiB (on its length alone)', () => {
      refused(cbor({ have: Array.from({ length: MAX_HAVE_CIDS + 1 }, () => a) }), /at most 1024 CIDs/)
      expect(decodeBlockFrame(cbor({ have: Array.from({ length: MAX_HAVE_CIDS }, () => a) })).have).toHaveLength(MAX_HAVE_CIDS)
      refused(cbor({ block: { cid: a, bytes: new Uint8Array(MAX_BLOCK_BYTES + 1) } }), /larger than 1048576 bytes/)
      // the length is refused before the bytes are looked for
      refused(bytesOf(0xa1, text('block'), 0xa2, text('cid'), cbor(a), text('bytes'), 0x5a, 0x00, 0x10, 0x00, 0x01), /larger than/)
      refused(bytesOf(0xa1, text('have'), 0x9b, 0, 0, 0, 1, 0, 0, 0, 0), /2\^32 or more/)
    })

    it('non-canonical forms dag-cbor refuses too: lengths not in their shortest form, indefinite lengths, reserved heads', () => {
      refused(bytesOf(0xb8, 1, text('have'), 0x81, cbor(a)), /shortest form/)
      refused(bytesOf(0xa1, 0x78, 4, Buffer.from('have'), 0x81, cbor(a)), /shortest form/)
      refused(bytesOf(0xa1, text('have'), 0x99, 0, 1, cbor(a)), /shortest form/)
      refused(bytesOf(0xbf, text('have'), 0x81, cbor(a), 0xff), /indefinite/)
      refused(bytesOf(0xa1, text('have'), 0x9f, cbor(a), 0xff), /indefinite/)
      refused(bytesOf(0xbc), /reserved/)
    })

    it('but takes the keys in any order (as the dag-cbor decoder did), here block before have and bytes before cid', () => {
      const frame = decodeBlockFrame(bytesOf(0xa2, text('block'), 0xa2, text('bytes'), 0x43, 1, 2, 3, text('cid'), cbor(b), text('have'), 0x81, cbor(a)))
      expect(frame.have?.map(String)).toEqual([a.toString()])
      expect(frame.block?.cid.toString()).toBe(b.toString())
      expect([...frame.block?.bytes ?? []]).toEqual([1, 2, 3])
      // the one frame the dag-cbor decoder refused and this one takes: keys out of order with
      // the text "__proto__" inside (there, only a re-encoding told a lost key from none)
      const proto = Uint8Array.of(0x69, ...Buffer.from('__proto__'))
      const outOfOrder = bytesOf(0xa2, text('block'), 0xa2, text('bytes'), 0x40 | proto.length, proto, text('cid'), cbor(b), text('have'), 0x81, cbor(a))
      expect(hex(decodeBlockFrame(outOfOrder).block?.bytes ?? new Uint8Array())).toBe(hex(proto))
      expect(() => referenceDecode(outOfOrder)).toThrow(BlockProtocolError)
    })
  })

  it('on a stream: the frames of one write go out as one chunk, a list holding the block\'s own array, and read back as written', async () => {
    const [a, b] = fc.sample(cidArb, { numRuns: 2, seed: 5 }) as [CID, CID]
    const block = { cid: a, bytes: new Uint8Array(70_000).fill(9) }
    const chunks: unknown[] = []
    const stream = {
      source: (async function * () {})(),
      sink: async (source: AsyncIterable<unknown>) => { for await (const chunk of source) chunks.push(chunk) },
      status: 'open',
      writeStatus: 'writing',
      abort: () => {}
    } as unknown as Stream
    const counted: number[] = []
    const channel = new FramedChannel(stream, MAX_BLOCK_FRAME, (_, n) => { counted.push(n) })
    const frame = encodeBlockFrame({ have: [b], block })
    await channel.write([frame, Uint8Array.of(7, 7)])
    expect(chunks).toHaveLength(1)
    const chunk = chunks[0] as Uint8ArrayList
    expect(chunk).toBeInstanceOf(Uint8ArrayList)
    expect([...chunk].some(piece => piece === block.bytes)).toBe(true)
    expect(counted).toEqual([frame.byteLength + 2])
    const read: Uint8Array[] = []
    for (const f of lp.decode([chunk.subarray()], { maxDataLength: MAX_BLOCK_FRAME })) read.push(f.subarray())
    expect(read.map(hex)).toEqual([hex(frame.subarray()), '0707'])
    expect(decodeBlockFrame(read[0] as Uint8Array).block?.bytes).toEqual(block.bytes)
  })
})
