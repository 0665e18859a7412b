/**
 * Block exchange over `/upgossip/blocks/1.0.0`. A request is one dag-cbor frame:
 * `{ have: [CID…] }` asks which of those blocks a peer holds (partial holdings count,
 * so peers still fetching serve what they have); `{ get: [CID…] }` asks for the blocks,
 * answered by one frame per CID, `{ cid, bytes }` or `{ cid, missing: true }`.
 * Every block is checked against its CID before it is stored or served.
 *
 * A server shares its upload ({@link UploadShare}): a large block it sent to another
 * connected peer lately may be answered `missing` — not from me now, take it from that
 * peer — so that peers fetching one package do not all take it from the publisher.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { PeerId, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { decodeDagCbor } from '../dag-cbor.js'
import { UpgossipError } from '../errors.js'
import { toCid, verifyBlock } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import type { NetMetrics } from './metrics.js'
import type { PeerNode } from './node.js'
import { BLOCKS_PROTOCOL } from './protocol-ids.js'
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
const MAX_REQUEST_BYTES = MAX_HAVE_CIDS * 48 + 64
const MAX_RESPONSE_FRAME = MAX_BLOCK_BYTES + 256

type Request = { have: CID[] } | { get: CID[] }

function cidList (value: unknown, max: number): CID[] {
  if (!Array.isArray(value) || value.length > max) throw new BlockProtocolError(`expected a list of at most ${max} CIDs`)
  return value.map(v => {
    const cid = CID.asCID(v)
    if (cid == null) throw new BlockProtocolError('expected a CID')
    return toCid(cid)
  })
}

function decodeRequest (bytes: Uint8Array): Request {
  let value: unknown
  try {
    value = decodeDagCbor(bytes)
  } catch (err) {
    throw new BlockProtocolError(`request is not dag-cbor: ${(err as Error).message}`)
  }
  if (value == null || typeof value !== 'object') throw new BlockProtocolError('request is not a map')
  const keys = Object.keys(value)
  if (keys.length !== 1) throw new BlockProtocolError('request must have exactly one of "have" or "get"')
  const v = value as Record<string, unknown>
  if ('have' in v) return { have: cidList(v.have, MAX_HAVE_CIDS) }
  if ('get' in v) return { get: cidList(v.get, MAX_GET_CIDS) }
  throw new BlockProtocolError(`unknown request "${keys[0]?.slice(0, 20)}"`)
}

/** What the block exchange needs. */
export interface BlockExchangeComponents {
  node: PeerNode
  store: BlockStore
  metrics: NetMetrics
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
export class BlockExchange {
  private readonly c: BlockExchangeComponents
  private readonly share: UploadShare

  constructor (components: BlockExchangeComponents) {
    this.c = components
    this.share = new UploadShare({ shareMs: components.shareMs, connected: peer => components.node.getPeers().some(p => p.toString() === peer) })
  }

  /** Register the protocol handler. */
  async start (): Promise<void> {
    await this.c.node.handle(BLOCKS_PROTOCOL, ({ stream, connection }) => {
      this.serve(stream, connection.remotePeer.toString()).catch(err => {
        this.c.log(`block request refused: ${(err as Error).message}`)
        stream.abort(err as Error)
      })
    }, { maxInboundStreams: 256, maxOutboundStreams: 256 })
  }

  /** Unregister the handler. */
  async stop (): Promise<void> {
    await this.c.node.unhandle(BLOCKS_PROTOCOL)
  }

  private async serve (stream: Stream, from: string): Promise<void> {
    const release = streamDeadline(stream, 30_000, () => new BlockProtocolError('request took too long'))
    try {
      const frame = await readFrame(stream, MAX_REQUEST_BYTES)
      this.c.metrics.bytes(BLOCKS_PROTOCOL, 'in', frame.byteLength)
      const request = decodeRequest(frame)
      this.c.metrics.blockRequests('have' in request ? 'have' : 'get')
      if ('have' in request) {
        const have = await Promise.all(request.have.map(async cid => await this.c.store.has(cid)))
        const out = dagCbor.encode({ have })
        this.c.metrics.bytes(BLOCKS_PROTOCOL, 'out', out.byteLength)
        await writeFrames(stream, [out])
        return
      }
      const self = this
      await writeFrames(stream, (async function * () {
        for (const cid of request.get) {
          const key = cid.toString()
          let bytes: Uint8Array | undefined
          try {
            bytes = await self.c.store.get(cid)
            if (self.share.leaveToOthers(key, from, bytes.byteLength)) bytes = undefined
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
    const { stream, release } = await dialWithDeadline(this.c.node, peer, BLOCKS_PROTOCOL, timeoutMs, () => new BlockTimeoutError('have request timed out'))
    try {
      const request = dagCbor.encode({ have: cids })
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
      return have as boolean[]
    } finally {
      release()
    }
  }

  /**
   * Fetch blocks from a peer; each arriving block is checked against its CID and
   * handed to `onBlock`. A wrong block throws `BlockHashMismatchError`.
   */
  async get (peer: PeerId, cids: CID[], onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>, timeoutMs = 20_000): Promise<CID[]> {
    const { stream, release } = await dialWithDeadline(this.c.node, peer, BLOCKS_PROTOCOL, timeoutMs, () => new BlockTimeoutError('get request timed out'))
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
          this.c.metrics.blocks('refused')
          throw err
        }
        this.c.metrics.blocks('fetched')
        this.c.metrics.blockBytes('in', value.bytes.byteLength)
        await onBlock(expected, value.bytes)
      }
      if (index < cids.length) missing.push(...cids.slice(index))
      return missing
    } finally {
      release()
    }
  }
}
