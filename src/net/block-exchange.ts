/**
 * Block exchange over `/upgossip/blocks/1.0.0`. A request is one dag-cbor frame:
 * `{ have: [CID…] }` asks which of those blocks a peer holds (partial holdings count,
 * so peers still fetching serve what they have); `{ get: [CID…] }` asks for the blocks,
 * answered by one frame per CID, `{ cid, bytes }` or `{ cid, missing: true }`.
 * Every block is checked against its CID before it is stored or served.
 *
 * `/upgossip/blocks/1.1.0` adds one field: `{ have: [CID…], wait: ms }` (at most
 * {@link MAX_HAVE_WAIT_MS}) asks the peer, when it holds none of them, to answer once one
 * arrives or the time is up — so a fetching peer hears of a block its neighbour just got
 * at once, instead of asking again and again. A peer speaking only 1.0.0 is asked without
 * `wait`.
 *
 * A server shares its upload ({@link UploadShare}): a large block it sent to another
 * connected peer lately may be answered `missing` — not from me now, take it from that
 * peer — so that peers fetching one package do not all take it from the publisher.
 *
 * A libp2p service: `createPeerNode` registers it as `blocks`, libp2p starts and stops it.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { ComponentLogger, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { CID } from 'multiformats/cid'
import { decodeDagCbor } from '../dag-cbor.js'
import { UpgossipError } from '../errors.js'
import { toCid, verifyBlock } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import type { NetMetrics } from './metrics.js'
import { BLOCKS_PROTOCOL, BLOCKS_WAIT_PROTOCOL } from './protocol-ids.js'
import { UploadShare } from './upload-share.js'
import { dialWithDeadline, readFrame, readFrames, streamDeadline, writeFrames } from './stream-codec.js'

/** A block-exchange message that breaks the protocol. */
export class BlockProtocolError extends UpgossipError {
  static override name = 'BlockProtocolError'
}

/** A peer did not answer a block request in time (slow or stalling: not proof of lying). */
export class BlockTimeoutError extends UpgossipError {
  static override name = 'BlockTimeoutError'
}

/** Most CIDs in one `have` request. */
export const MAX_HAVE_CIDS = 1024
/** Most CIDs in one `get` request (the per-peer window). */
export const MAX_GET_CIDS = 32
/** Largest block exchanged. */
export const MAX_BLOCK_BYTES = 1024 * 1024
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

/** What the block exchange takes from libp2p. */
export interface BlockExchangeComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
}

/** What the block exchange takes from its owner. */
export interface BlockExchangeInit {
  store: BlockStore
  metrics: NetMetrics
  /** Operator-facing notes (the event log): requests refused. */
  log: (message: string) => void
  /** Test fault: serve every block with one byte flipped. */
  corruptServedBlocks?: boolean
  /** How long a block sent to one peer is left to that peer to pass on (0: never; see {@link UploadShare}). */
  shareMs?: number
}

/** One answer to a `get`. */
export interface BlockAnswer {
  cid: CID
  bytes?: Uint8Array
}

/** Serves blocks to peers and asks peers for blocks. */
export class BlockExchange implements Startable {
  readonly [Symbol.toStringTag] = '@upgossip/blocks'
  private readonly components: BlockExchangeComponents
  private readonly c: BlockExchangeInit
  private readonly log: Logger
  private readonly share: UploadShare
  /** `have` requests waiting for a block: what they wait for, and how to wake them. */
  private readonly waiters = new Set<{ keys: Set<string>, wake: () => void }>()
  /** Waiting `have` requests by peer. */
  private readonly waitsOf = new Map<string, number>()

  constructor (components: BlockExchangeComponents, init: BlockExchangeInit) {
    this.components = components
    this.c = init
    this.log = components.logger.forComponent('upgossip:blocks')
    const connected = (peer: string): boolean => components.connectionManager.getConnections().some(c => c.remotePeer.toString() === peer)
    this.share = new UploadShare({ shareMs: init.shareMs, connected })
  }

  /** Register the protocol handlers (both versions). */
  async start (): Promise<void> {
    await Promise.all([BLOCKS_PROTOCOL, BLOCKS_WAIT_PROTOCOL].map(async protocol => {
      await this.components.registrar.handle(protocol, ({ stream, connection }) => {
        const from = connection.remotePeer.toString()
        this.serve(stream, from).catch(err => {
          this.log.error('request from %s refused - %e', from, err)
          this.c.log(`block request refused: ${(err as Error).message}`)
          stream.abort(err as Error)
        })
      }, { maxInboundStreams: 256, maxOutboundStreams: 256 })
    }))
  }

  /** Answer the waiting `have` requests and unregister the handlers. */
  async stop (): Promise<void> {
    for (const w of this.waiters) w.wake()
    await Promise.all([BLOCKS_PROTOCOL, BLOCKS_WAIT_PROTOCOL].map(async protocol => { await this.components.registrar.unhandle(protocol) }))
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

  private async serve (stream: Stream, from: string): Promise<void> {
    const release = streamDeadline(stream, 30_000, () => new BlockProtocolError('request took too long'))
    try {
      const frame = await readFrame(stream, MAX_REQUEST_BYTES)
      this.c.metrics.bytes(BLOCKS_PROTOCOL, 'in', frame.byteLength)
      const request = decodeRequest(frame, stream.protocol === BLOCKS_WAIT_PROTOCOL)
      this.c.metrics.blockRequests('have' in request ? (request.wait > 0 ? 'wait' : 'have') : 'get')
      if ('have' in request) {
        const holds = async (): Promise<boolean[]> => await Promise.all(request.have.map(async cid => await this.c.store.has(cid)))
        let have = await holds()
        if (request.wait > 0 && !have.some(Boolean)) {
          this.log('%s asks which of %d blocks this peer holds: none yet, waiting up to %d ms', from, request.have.length, request.wait)
          await this.waitForAny(request.have, request.wait, from)
          have = await holds()
        }
        if (this.log.enabled) this.log('%s asks which of %d blocks this peer holds: %d', from, request.have.length, have.filter(Boolean).length)
        const out = dagCbor.encode({ have })
        this.c.metrics.bytes(BLOCKS_PROTOCOL, 'out', out.byteLength)
        await writeFrames(stream, [out])
        return
      }
      const self = this
      this.log('%s asks for %d blocks', from, request.get.length)
      await writeFrames(stream, (async function * () {
        for (const cid of request.get) {
          const key = cid.toString()
          let bytes: Uint8Array | undefined
          try {
            bytes = await self.c.store.get(cid)
            if (self.share.leaveToOthers(key, from, bytes.byteLength)) {
              self.log('%c left to the peer it went to lately, not sent to %s', cid, from)
              bytes = undefined
            }
          } catch {
            bytes = undefined
          }
          if (bytes != null) self.share.sent(key, from, bytes.byteLength)
          if (bytes != null && self.c.corruptServedBlocks === true) {
            bytes = Uint8Array.from(bytes)
            bytes[0] = (bytes[0] ?? 0) ^ 0xff
          }
          const out = dagCbor.encode(bytes == null ? { cid, missing: true } : { cid, bytes })
          self.c.metrics.bytes(BLOCKS_PROTOCOL, 'out', out.byteLength)
          if (bytes != null) {
            self.c.metrics.blocks('served')
            self.c.metrics.blockBytes('out', bytes.byteLength)
          }
          yield out
        }
      })())
    } finally {
      release()
    }
  }

  /** Which of `cids` the peer holds. */
  async have (peer: PeerId, cids: CID[], timeoutMs = 10_000): Promise<boolean[]> {
    return (await this.haveWait(peer, cids, 0, timeoutMs)).have
  }

  /**
   * Which of `cids` the peer holds; when it holds none, it may wait up to `waitMs` for one
   * to arrive before it answers (`waited`: it speaks 1.1.0 and was asked to).
   */
  async haveWait (peer: PeerId, cids: CID[], waitMs: number, timeoutMs = 10_000): Promise<{ have: boolean[], waited: boolean }> {
    const wait = Math.max(0, Math.min(MAX_HAVE_WAIT_MS, Math.round(waitMs)))
    const { stream, release } = await dialWithDeadline(this.components.connectionManager, peer, wait > 0 ? [BLOCKS_WAIT_PROTOCOL, BLOCKS_PROTOCOL] : BLOCKS_PROTOCOL, timeoutMs + wait, () => new BlockTimeoutError('have request timed out'))
    try {
      const waited = wait > 0 && stream.protocol === BLOCKS_WAIT_PROTOCOL
      const request = dagCbor.encode(waited ? { have: cids, wait } : { have: cids })
      this.c.metrics.bytes(BLOCKS_PROTOCOL, 'out', request.byteLength)
      await writeFrames(stream, [request])
      const frame = await readFrame(stream, MAX_HAVE_CIDS * 2 + 64)
      this.c.metrics.bytes(BLOCKS_PROTOCOL, 'in', frame.byteLength)
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
      if (this.log.enabled) this.log('%p holds %d of %d blocks asked%s', peer, have.filter(Boolean).length, cids.length, waited ? ' (asked to wait)' : '')
      return { have, waited }
    } finally {
      release()
    }
  }

  /**
   * Fetch blocks from a peer; each arriving block is checked against its CID and
   * handed to `onBlock`. A wrong block throws `BlockHashMismatchError`.
   */
  async get (peer: PeerId, cids: CID[], onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>, timeoutMs = 20_000): Promise<CID[]> {
    const { stream, release } = await dialWithDeadline(this.components.connectionManager, peer, BLOCKS_PROTOCOL, timeoutMs, () => new BlockTimeoutError('get request timed out'))
    try {
      const request = dagCbor.encode({ get: cids })
      this.c.metrics.bytes(BLOCKS_PROTOCOL, 'out', request.byteLength)
      await writeFrames(stream, [request])
      const missing: CID[] = []
      let index = 0
      for await (const frame of readFrames(stream, MAX_RESPONSE_FRAME)) {
        this.c.metrics.bytes(BLOCKS_PROTOCOL, 'in', frame.byteLength)
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
        try {
          await verifyBlock(expected, value.bytes)
        } catch (err) {
          this.log.error('%p sent a block that does not match %c', peer, expected)
          this.c.metrics.blocks('refused')
          throw err
        }
        this.c.metrics.blocks('fetched')
        this.c.metrics.blockBytes('in', value.bytes.byteLength)
        await onBlock(expected, value.bytes)
      }
      if (index < cids.length) missing.push(...cids.slice(index))
      this.log('%p sent %d of %d blocks asked', peer, cids.length - missing.length, cids.length)
      return missing
    } finally {
      release()
    }
  }
}

/**
 * The block exchange as a libp2p service.
 *
 * @example
 * ```ts
 * const node = await createLibp2p({ services: { blocks: blockExchange({ store, metrics, log }) } })
 * const have = await node.services.blocks.have(peer, cids)
 * ```
 */
export function blockExchange (init: BlockExchangeInit): (components: BlockExchangeComponents) => BlockExchange {
  return (components) => new BlockExchange(components, init)
}
