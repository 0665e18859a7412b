/**
 * Block exchange over `/upgossip/blocks/1.0.0` and `1.1.0`, one stream per request, kept
 * while daemons that speak only these are about (2.0.0 is block-sessions.ts). A request is
 * one dag-cbor frame: `{ have: [CID…] }` asks which of those blocks a peer holds (partial
 * holdings count, so peers still fetching serve what they have); `{ get: [CID…] }` asks
 * for the blocks, answered by one frame per CID, `{ cid, bytes }` or `{ cid, missing: true }`.
 *
 * `1.1.0` adds one field: `{ have: [CID…], wait: ms }` (at most {@link MAX_HAVE_WAIT_MS})
 * asks the peer, when it holds none of them, to answer once one arrives or the time is up.
 *
 * @example
 * ```ts
 * const v1 = new BlockExchangeV1({ store, metrics, share, connectionManager, log, debug })
 * await registrar.handle(BLOCKS_PROTOCOL, ({ stream, connection }) => { void v1.serve(stream, connection.remotePeer.toString()) })
 * ```
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Logger, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { CID } from 'multiformats/cid'
import { decodeDagCbor } from '../dag-cbor.js'
import { toCid } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import { BlockProtocolError, BlockTimeoutError, MAX_BLOCK_BYTES, MAX_GET_CIDS, MAX_HAVE_CIDS } from './block-messages.js'
import type { NetMetrics } from './metrics.js'
import { BLOCKS_PROTOCOL, BLOCKS_WAIT_PROTOCOL } from './protocol-ids.js'
import { dialWithDeadline, readFrame, readFrames, streamDeadline, writeFrames } from './stream-codec.js'
import type { UploadShare } from './upload-share.js'

/** Longest a `have` may ask to wait for a block to arrive. */
export const MAX_HAVE_WAIT_MS = 10_000
/** `have` requests of one peer that may wait at once; more are answered at once. */
export const MAX_WAITS_PER_PEER = 4
const MAX_REQUEST_BYTES = MAX_HAVE_CIDS * 48 + 64
const MAX_RESPONSE_FRAME = MAX_BLOCK_BYTES + 256

type Request = { have: CID[], wait: number } | { get: CID[] }

function cidList (value: unknown, max: number): CID[] {
  if (!Array.isArray(value) || value.length > max) throw new BlockProtocolError(`expected a list of at most ${max} CIDs`)
  return value.map(v => {
    const cid = CID.asCID(v)
    if (cid == null) throw new BlockProtocolError('expected a CID')
    return toCid(cid)
  })
}

function decodeRequest (bytes: Uint8Array, waits: boolean): Request {
  let value: unknown
  try {
    value = decodeDagCbor(bytes)
  } catch (err) {
    throw new BlockProtocolError(`request is not dag-cbor: ${(err as Error).message}`)
  }
  if (value == null || typeof value !== 'object') throw new BlockProtocolError('request is not a map')
  const v = value as Record<string, unknown>
  const keys = Object.keys(value).filter(k => !(waits && k === 'wait' && 'have' in v))
  if (keys.length !== 1) throw new BlockProtocolError(`request must have exactly one of "have" or "get"${waits ? ' (and "wait" with "have")' : ''}`)
  if ('have' in v) {
    const wait = v.wait ?? 0
    if (typeof wait !== 'number' || !Number.isInteger(wait) || wait < 0 || wait > MAX_HAVE_WAIT_MS) throw new BlockProtocolError(`"wait" must be a whole number of milliseconds from 0 to ${MAX_HAVE_WAIT_MS}`)
    return { have: cidList(v.have, MAX_HAVE_CIDS), wait }
  }
  if ('get' in v) return { get: cidList(v.get, MAX_GET_CIDS) }
  throw new BlockProtocolError(`unknown request "${keys[0]?.slice(0, 20)}"`)
}

/** What the 1.x exchange uses. */
export interface BlockExchangeV1Init {
  store: BlockStore
  metrics: NetMetrics
  share: UploadShare
  connectionManager: Pick<ConnectionManager, 'openConnection'>
  debug: Logger
  corrupt?: boolean
}

/** Serves and asks blocks 1.0.0 / 1.1.0, a stream per request. */
export class BlockExchangeV1 {
  private readonly c: BlockExchangeV1Init
  /** `have` requests waiting for a block: what they wait for, and how to wake them. */
  private readonly waiters = new Set<{ keys: Set<string>, wake: () => void }>()
  /** Waiting `have` requests by peer. */
  private readonly waitsOf = new Map<string, number>()

  constructor (init: BlockExchangeV1Init) {
    this.c = init
  }

  /** Answer every waiting `have` (the exchange stops). */
  stop (): void {
    for (const w of this.waiters) w.wake()
  }

  /** A block was stored here: `have` requests waiting for it are answered. */
  arrived (cid: CID): void {
    if (this.waiters.size === 0) return
    const key = cid.toString()
    for (const w of this.waiters) if (w.keys.has(key)) w.wake()
  }

  /** Until one of `cids` arrives, `ms` pass, or the exchange stops; at most {@link MAX_WAITS_PER_PEER} per peer wait (more return at once). */
  private async waitForAny (cids: CID[], ms: number, from: string): Promise<void> {
    const waiting = this.waitsOf.get(from) ?? 0
    if (waiting >= MAX_WAITS_PER_PEER) return
    this.waitsOf.set(from, waiting + 1)
    let waiter: { keys: Set<string>, wake: () => void } | undefined
    let timer: NodeJS.Timeout | undefined
    try {
      await new Promise<void>(resolve => {
        waiter = { keys: new Set(cids.map(c => c.toString())), wake: resolve }
        this.waiters.add(waiter)
        timer = setTimeout(resolve, ms)
      })
    } finally {
      clearTimeout(timer)
      if (waiter != null) this.waiters.delete(waiter)
      const left = (this.waitsOf.get(from) ?? 1) - 1
      if (left <= 0) this.waitsOf.delete(from)
      else this.waitsOf.set(from, left)
    }
  }

  /** Answer one request on `stream` from `from`. */
  async serve (stream: Stream, from: string): Promise<void> {
    const { metrics, store, share } = this.c
    const log = this.c.debug
    const release = streamDeadline(stream, 30_000, () => new BlockProtocolError('request took too long'))
    try {
      const frame = await readFrame(stream, MAX_REQUEST_BYTES)
      metrics.bytes(BLOCKS_PROTOCOL, 'in', frame.byteLength)
      const request = decodeRequest(frame, stream.protocol === BLOCKS_WAIT_PROTOCOL)
      metrics.blockRequests('have' in request ? (request.wait > 0 ? 'wait' : 'have') : 'get')
      if ('have' in request) {
        const holds = async (): Promise<boolean[]> => await Promise.all(request.have.map(async cid => await store.has(cid)))
        let have = await holds()
        if (request.wait > 0 && !have.some(Boolean)) {
          log('%s asks which of %d blocks this peer holds: none yet, waiting up to %d ms', from, request.have.length, request.wait)
          await this.waitForAny(request.have, request.wait, from)
          have = await holds()
        }
        const out = dagCbor.encode({ have })
        metrics.bytes(BLOCKS_PROTOCOL, 'out', out.byteLength)
        metrics.blockMessages('have', have.filter(Boolean).length)
        metrics.blockMessages('dont-have', have.filter(h => !h).length)
        await writeFrames(stream, [out])
        return
      }
      const corrupt = this.c.corrupt === true
      log('%s asks for %d blocks', from, request.get.length)
      await writeFrames(stream, (async function * () {
        for (const cid of request.get) {
          const key = cid.toString()
          let bytes: Uint8Array | undefined
          try {
            bytes = await store.get(cid)
            if (share.leaveToOthers(key, from, bytes.byteLength)) bytes = undefined
          } catch {
            bytes = undefined
          }
          if (bytes != null) share.sent(key, from, bytes.byteLength)
          if (bytes != null && corrupt) {
            bytes = Uint8Array.from(bytes)
            bytes[0] = (bytes[0] ?? 0) ^ 0xff
          }
          const out = dagCbor.encode(bytes == null ? { cid, missing: true } : { cid, bytes })
          metrics.bytes(BLOCKS_PROTOCOL, 'out', out.byteLength)
          metrics.blockMessages(bytes == null ? 'dont-have' : 'block', 1)
          if (bytes != null) {
            metrics.blocks('served')
            metrics.blockBytes('out', bytes.byteLength)
          }
          yield out
        }
      })())
    } finally {
      release()
    }
  }

  /**
   * Which of `cids` the peer holds; when it holds none, it may wait up to `waitMs` for one
   * to arrive before it answers (`waited`: it speaks 1.1.0 and was asked to).
   */
  async haveWait (peer: PeerId, cids: CID[], waitMs: number, timeoutMs = 10_000): Promise<{ have: boolean[], waited: boolean }> {
    const { metrics } = this.c
    const wait = Math.max(0, Math.min(MAX_HAVE_WAIT_MS, Math.round(waitMs)))
    const { stream, release } = await dialWithDeadline(this.c.connectionManager, peer, wait > 0 ? [BLOCKS_WAIT_PROTOCOL, BLOCKS_PROTOCOL] : BLOCKS_PROTOCOL, timeoutMs + wait, () => new BlockTimeoutError('have request timed out'))
    metrics.blockStreams('out')
    try {
      const waited = wait > 0 && stream.protocol === BLOCKS_WAIT_PROTOCOL
      const request = dagCbor.encode(waited ? { have: cids, wait } : { have: cids })
      metrics.bytes(BLOCKS_PROTOCOL, 'out', request.byteLength)
      metrics.blockMessages('want-have', cids.length)
      await writeFrames(stream, [request])
      const frame = await readFrame(stream, MAX_HAVE_CIDS * 2 + 64)
      metrics.bytes(BLOCKS_PROTOCOL, 'in', frame.byteLength)
      let value: unknown
      try {
        value = decodeDagCbor(frame)
      } catch {
        throw new BlockProtocolError('have answer is not dag-cbor')
      }
      const have = (value as { have?: unknown })?.have
      if (!Array.isArray(have) || have.length !== cids.length || !have.every(h => typeof h === 'boolean')) {
        throw new BlockProtocolError('have answer does not match the request')
      }
      return { have, waited }
    } finally {
      release()
    }
  }

  /**
   * Fetch blocks from a peer; each arriving block is handed to `onBlock` (which stores it,
   * and so checks it against its CID); resolves to those answered `missing`.
   */
  async get (peer: PeerId, cids: CID[], onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>, timeoutMs = 20_000): Promise<CID[]> {
    const { metrics } = this.c
    const { stream, release } = await dialWithDeadline(this.c.connectionManager, peer, BLOCKS_PROTOCOL, timeoutMs, () => new BlockTimeoutError('get request timed out'))
    metrics.blockStreams('out')
    try {
      const request = dagCbor.encode({ get: cids })
      metrics.bytes(BLOCKS_PROTOCOL, 'out', request.byteLength)
      metrics.blockMessages('want-block', cids.length)
      await writeFrames(stream, [request])
      const missing: CID[] = []
      let index = 0
      for await (const frame of readFrames(stream, MAX_RESPONSE_FRAME)) {
        metrics.bytes(BLOCKS_PROTOCOL, 'in', frame.byteLength)
        const expected = cids[index++]
        if (expected == null) throw new BlockProtocolError('peer sent more blocks than asked for')
        let value: { cid?: unknown, bytes?: unknown, missing?: unknown }
        try {
          value = decodeDagCbor(frame)
        } catch {
          throw new BlockProtocolError('block answer is not dag-cbor')
        }
        const cid = CID.asCID(value?.cid)
        if (cid == null || !toCid(cid).equals(expected)) throw new BlockProtocolError('peer answered out of order')
        if (value.missing === true) {
          missing.push(expected)
          continue
        }
        if (!(value.bytes instanceof Uint8Array)) throw new BlockProtocolError('block answer has no bytes')
        metrics.blockBytes('in', value.bytes.byteLength)
        await onBlock(expected, value.bytes)
        this.c.share.fetched(expected.toString())
      }
      if (index < cids.length) missing.push(...cids.slice(index))
      return missing
    } finally {
      release()
    }
  }
}
