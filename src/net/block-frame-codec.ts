/**
 * The bytes of a blocks 2.0.0 frame, written and read by hand. The encoder writes exactly
 * what `dagCbor.encode` writes for the frame (canonical dag-cbor), but as pieces: the
 * block's bytes are one piece of their own, never copied into the frame. The decoder reads
 * only the shapes a frame may have and hands back the block's bytes as a view of the
 * frame, never a copy. It builds no object from a key the peer chose (each key is compared
 * with the six known ones), so no `__proto__` check is needed (see `src/dag-cbor.ts`).
 *
 * What the decoder takes: a map, in any key order, of known keys each at most once; lists
 * of at most {@link MAX_HAVE_CIDS} CIDs (tag 42 over bytes that start with 0x00); `block`
 * a map of exactly `cid` and `bytes`, in either order, the bytes at most
 * {@link MAX_BLOCK_BYTES}; every length in its shortest form (as dag-cbor's strict decoder
 * asks); nothing after the map. Anything else is a {@link BlockProtocolError}. These are
 * the frames the dag-cbor decoder used before accepted (but for keys out of order in a frame
 * holding the text `__proto__`, which its `__proto__` check refused); docs/wire.md has them.
 *
 * @example
 * ```ts
 * await channel.write([encodeBlockFrame({ block: { cid, bytes } })]) // bytes go out uncopied
 * const frame = decodeBlockFrame(await channel.read()) // throws BlockProtocolError on anything malformed
 * ```
 */
import { CID } from 'multiformats/cid'
import { Uint8ArrayList } from 'uint8arraylist'
import { BlockProtocolError, MAX_BLOCK_BYTES, MAX_HAVE_CIDS, isEmptyFrame } from './block-messages.js'
import type { BlockFrame } from './block-messages.js'

const MAJOR_BYTES = 2
const MAJOR_TEXT = 3
const MAJOR_ARRAY = 4
const MAJOR_MAP = 5
const MAJOR_TAG = 6
/** Tag 42 (a CID) as dag-cbor writes it: major type 6, the number in one more byte. */
const TAG_CID = [(MAJOR_TAG << 5) | 24, 42] as const

const ascii = (text: string): Uint8Array => Uint8Array.from(text, c => c.charCodeAt(0))

/** The frame's keys in dag-cbor's canonical order (shorter first, then bytewise), each as its encoded text. */
const KEYS = (['have', 'block', 'cancel', 'dontHave', 'wantHave', 'wantBlock'] as const).map(name => ({ name, text: ascii(name) }))
const CID_KEY = ascii('cid')
const BYTES_KEY = ascii('bytes')

// ---- encoding ----

/** Bytes of a CBOR head (major type and length) in its shortest form. */
function headSize (n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9
}

/** Writes into one buffer sized in advance. */
class Writer {
  readonly buf: Uint8Array
  at = 0

  constructor (size: number) {
    this.buf = new Uint8Array(size)
  }

  head (major: number, n: number): void {
    const m = major << 5
    const b = this.buf
    if (n < 24) {
      b[this.at++] = m | n
    } else if (n < 0x100) {
      b[this.at++] = m | 24
      b[this.at++] = n
    } else if (n < 0x10000) {
      b[this.at++] = m | 25
      b[this.at++] = n >>> 8
      b[this.at++] = n & 0xff
    } else if (n < 0x100000000) {
      b[this.at++] = m | 26
      new DataView(b.buffer, b.byteOffset).setUint32(this.at, n)
      this.at += 4
    } else {
      b[this.at++] = m | 27
      new DataView(b.buffer, b.byteOffset).setBigUint64(this.at, BigInt(n))
      this.at += 8
    }
  }

  text (ascii: Uint8Array): void {
    this.head(MAJOR_TEXT, ascii.byteLength)
    this.bytes(ascii)
  }

  bytes (bytes: Uint8Array): void {
    this.buf.set(bytes, this.at)
    this.at += bytes.byteLength
  }

  cid (cid: CID): void {
    this.buf[this.at++] = TAG_CID[0]
    this.buf[this.at++] = TAG_CID[1]
    this.head(MAJOR_BYTES, cid.bytes.byteLength + 1)
    this.buf[this.at++] = 0
    this.bytes(cid.bytes)
  }
}

const textSize = (ascii: Uint8Array): number => headSize(ascii.byteLength) + ascii.byteLength
const cidSize = (cid: CID): number => 2 + headSize(cid.bytes.byteLength + 1) + 1 + cid.bytes.byteLength

/**
 * The frame's bytes (empty lists left out), byte for byte what `dagCbor.encode` writes,
 * as a list of pieces: the block's bytes are a piece of their own, not copied.
 */
export function encodeBlockFrame (frame: BlockFrame): Uint8ArrayList {
  const keys = KEYS.filter(({ name }) => name === 'block' ? frame.block != null : (frame[name]?.length ?? 0) > 0)
  let size = headSize(keys.length)
  for (const { name, text } of keys) {
    size += textSize(text)
    if (name === 'block') {
      const block = frame.block as { cid: CID, bytes: Uint8Array }
      size += 1 + textSize(CID_KEY) + cidSize(block.cid) + textSize(BYTES_KEY) + headSize(block.bytes.byteLength)
    } else {
      const list = frame[name] as CID[]
      size += headSize(list.length)
      for (const cid of list) size += cidSize(cid)
    }
  }
  const w = new Writer(size)
  let blockAt = -1
  w.head(MAJOR_MAP, keys.length)
  for (const { name, text } of keys) {
    w.text(text)
    if (name === 'block') {
      const block = frame.block as { cid: CID, bytes: Uint8Array }
      w.head(MAJOR_MAP, 2)
      w.text(CID_KEY)
      w.cid(block.cid)
      w.text(BYTES_KEY)
      w.head(MAJOR_BYTES, block.bytes.byteLength)
      blockAt = w.at
    } else {
      const list = frame[name] as CID[]
      w.head(MAJOR_ARRAY, list.length)
      for (const cid of list) w.cid(cid)
    }
  }
  if (blockAt < 0) return new Uint8ArrayList(w.buf)
  const out = new Uint8ArrayList(w.buf.subarray(0, blockAt), (frame.block as { bytes: Uint8Array }).bytes)
  if (blockAt < size) out.append(w.buf.subarray(blockAt))
  return out
}

// ---- decoding ----

/** Reads CBOR heads and items from a frame; every read is bounds-checked. */
class Reader {
  readonly bytes: Uint8Array
  at = 0
  /** Where the last key's text starts, and its length. */
  private keyAt = 0
  private keyLength = 0

  constructor (bytes: Uint8Array) {
    this.bytes = bytes
  }

  /** Room for `n` more bytes, or the frame was cut short. */
  need (n: number): void {
    if (this.at + n > this.bytes.byteLength) throw new BlockProtocolError(`the frame ends early (at byte ${this.bytes.byteLength})`)
  }

  /** One head of major type `major` (else `wrong` is the error): its number (a length or a count). */
  head (major: number, wrong: string): number {
    this.need(1)
    const b = this.bytes
    const initial = b[this.at++] as number
    if (initial >> 5 !== major) throw new BlockProtocolError(wrong)
    const info = initial & 0x1f
    if (info < 24) return info
    let n: number
    if (info === 24) {
      this.need(1)
      n = b[this.at] as number
      this.at += 1
    } else if (info === 25) {
      this.need(2)
      n = ((b[this.at] as number) << 8) | (b[this.at + 1] as number)
      this.at += 2
    } else if (info === 26) {
      this.need(4)
      n = new DataView(b.buffer, b.byteOffset + this.at, 4).getUint32(0)
      this.at += 4
    } else if (info === 27) {
      // a length of 2^32 or more, beyond every limit of the protocol
      throw new BlockProtocolError('a length or count of 2^32 or more')
    } else {
      throw new BlockProtocolError(info === 31 ? 'an indefinite-length item (not dag-cbor)' : `a reserved CBOR head 0x${initial.toString(16)}`)
    }
    if (n < (info === 24 ? 24 : info === 25 ? 0x100 : 0x10000)) throw new BlockProtocolError('a length not in its shortest form (not canonical dag-cbor)')
    return n
  }

  /** A map key: the index in `known` of the text it equals, or -1. */
  key (known: readonly Uint8Array[]): number {
    const n = this.head(MAJOR_TEXT, 'a map key that is not a text string')
    this.need(n)
    this.keyAt = this.at
    this.keyLength = n
    this.at += n
    for (let i = 0; i < known.length; i++) if (equalAt(this.bytes, this.keyAt, n, known[i] as Uint8Array)) return i
    return -1
  }

  /** The start of the last key read, as text (for an error message). */
  keyText (): string {
    return new TextDecoder().decode(this.bytes.subarray(this.keyAt, this.keyAt + Math.min(this.keyLength, 80))).slice(0, 20)
  }

  cid (name: string): CID {
    const notCid = `"${name}" holds something that is not a CID`
    this.need(1)
    if (this.bytes[this.at] !== TAG_CID[0]) throw new BlockProtocolError(notCid)
    this.need(2)
    if (this.bytes[this.at + 1] !== TAG_CID[1]) throw new BlockProtocolError(notCid)
    this.at += 2
    const n = this.head(MAJOR_BYTES, `"${name}" holds a CID tag over something other than bytes`)
    if (n < 1) throw new BlockProtocolError(`"${name}" holds a CID tag over no bytes`)
    this.need(n)
    if (this.bytes[this.at] !== 0) throw new BlockProtocolError(`"${name}" holds a CID without its 0x00 prefix`)
    // a copy (not `slice`: on a Buffer that is a view): a CID kept on a want-list must not keep the whole frame alive
    const bytes = new Uint8Array(this.bytes.subarray(this.at + 1, this.at + n))
    this.at += n
    try {
      return CID.decode(bytes)
    } catch (err) {
      throw new BlockProtocolError(`"${name}" holds bytes that are not a CID: ${(err as Error).message}`)
    }
  }

  list (name: string): CID[] {
    const n = this.head(MAJOR_ARRAY, `"${name}" must be a list of at most ${MAX_HAVE_CIDS} CIDs`)
    if (n > MAX_HAVE_CIDS) throw new BlockProtocolError(`"${name}" must be a list of at most ${MAX_HAVE_CIDS} CIDs`)
    const cids = new Array<CID>(n)
    for (let i = 0; i < n; i++) cids[i] = this.cid(name)
    return cids
  }

  block (): { cid: CID, bytes: Uint8Array } {
    const shape = '"block" must be { cid, bytes }'
    if (this.head(MAJOR_MAP, shape) !== 2) throw new BlockProtocolError(shape)
    let cid: CID | undefined
    let bytes: Uint8Array | undefined
    for (let i = 0; i < 2; i++) {
      const key = this.key(BLOCK_KEYS)
      if (key === 0 && cid == null) {
        cid = this.cid('block')
      } else if (key === 1 && bytes == null) {
        const n = this.head(MAJOR_BYTES, shape)
        if (n > MAX_BLOCK_BYTES) throw new BlockProtocolError(`a block larger than ${MAX_BLOCK_BYTES} bytes`)
        this.need(n)
        // a plain Uint8Array view (not a Buffer's `subarray`, whose `slice` would be a view too)
        bytes = new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + this.at, n)
        this.at += n
      } else {
        throw new BlockProtocolError(key < 0 ? shape : `"block" has "${key === 0 ? 'cid' : 'bytes'}" twice`)
      }
    }
    return { cid: cid as CID, bytes: bytes as Uint8Array }
  }
}

const BLOCK_KEYS = [CID_KEY, BYTES_KEY]
const FRAME_KEYS = KEYS.map(k => k.text)

function equalAt (bytes: Uint8Array, at: number, n: number, text: Uint8Array): boolean {
  if (n !== text.byteLength) return false
  for (let i = 0; i < n; i++) if (bytes[at + i] !== text[i]) return false
  return true
}

/**
 * A frame from a peer, checked: a map of known keys, lists of at most {@link MAX_HAVE_CIDS}
 * CIDs, a block within {@link MAX_BLOCK_BYTES} (a view of `bytes`, not a copy).
 */
export function decodeBlockFrame (bytes: Uint8Array): BlockFrame {
  const r = new Reader(bytes)
  const entries = r.head(MAJOR_MAP, 'frame is not a map')
  const frame: BlockFrame = {}
  let seen = 0
  for (let i = 0; i < entries; i++) {
    const key = r.key(FRAME_KEYS)
    if (key < 0) throw new BlockProtocolError(`unknown message "${r.keyText()}"`)
    if ((seen & (1 << key)) !== 0) throw new BlockProtocolError(`"${KEYS[key]?.name ?? ''}" twice in one frame`)
    seen |= 1 << key
    const name = (KEYS[key] as typeof KEYS[number]).name
    if (name === 'block') frame.block = r.block()
    else frame[name] = r.list(name)
  }
  if (r.at !== bytes.byteLength) throw new BlockProtocolError(`${bytes.byteLength - r.at} bytes after the frame`)
  if (isEmptyFrame(frame)) throw new BlockProtocolError('an empty frame')
  return frame
}
