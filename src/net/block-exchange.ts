/**
 * Block exchange: serves this peer's blocks and asks peers for theirs.
 *
 * `/upgossip/blocks/2.0.0` (block-sessions.ts, block-session.ts): one long-lived stream per
 * peer pair carrying want-lists, `have`/`dontHave` pushed when a block arrives, and blocks
 * as frames. `/upgossip/blocks/1.0.0` and `1.1.0` (block-exchange-v1.ts): a stream per
 * request; still answered, and still spoken to a peer that does not speak 2.0.0, while
 * daemons of both kinds are about. docs/wire.md ("Block exchange") has both.
 *
 * A server shares its upload ({@link UploadShare}): a large block it sent to another
 * connected peer lately may be answered `missing`/`dontHave` — not from me now, take it
 * from that peer — so that peers fetching one package do not all take it from the
 * publisher. Every block fetched is checked against its CID once, by the store that keeps
 * it (a wrong one: `BlockHashMismatchError`).
 *
 * A libp2p service: `createPeerNode` registers it as `blocks`, libp2p starts and stops it.
 *
 * @example
 * ```ts
 * const node = await createLibp2p({ services: { blocks: blockExchange({ store, metrics, log }) } })
 * const have = await node.services.blocks.have(peer, cids)
 * ```
 */
import type { ComponentLogger, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { CID } from 'multiformats/cid'
import { BlockHashMismatchError } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import { BlockExchangeV1 } from './block-exchange-v1.js'
import { MAX_BLOCK_FRAME, BlockTimeoutError } from './block-messages.js'
import type { BlockChannel } from './block-session.js'
import { BlockSessions } from './block-sessions.js'
import { FramedChannel } from './framed-channel.js'
import type { NetMetrics } from './metrics.js'
import { BLOCKS_PROTOCOL, BLOCKS_SESSION_PROTOCOL, BLOCKS_WAIT_PROTOCOL } from './protocol-ids.js'
import { dialWithDeadline } from './stream-codec.js'
import { UploadShare } from './upload-share.js'

export { BlockProtocolError, BlockTimeoutError, MAX_BLOCK_BYTES, MAX_GET_CIDS, MAX_HAVE_CIDS, MAX_WANT_LIST, MAX_WANTS_PER_SECOND } from './block-messages.js'
export { MAX_HAVE_WAIT_MS, MAX_WAITS_PER_PEER } from './block-exchange-v1.js'

/** How long a peer found not to speak 2.0.0 is asked in 1.x before 2.0.0 is tried again. */
const V1_RECHECK_MS = 60_000
/** How long opening a 2.0.0 stream may take. */
const OPEN_TIMEOUT_MS = 10_000

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
  /** Speak only 1.x, as a daemon from before 2.0.0 did (tests of mixed networks). */
  v1Only?: boolean
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
  private readonly v1: BlockExchangeV1
  private readonly sessions: BlockSessions
  /** Peers that do not speak 2.0.0, until when they are asked in 1.x. */
  private readonly oldPeers = new Map<string, number>()

  constructor (components: BlockExchangeComponents, init: BlockExchangeInit) {
    this.components = components
    this.c = init
    this.log = components.logger.forComponent('upgossip:blocks')
    const connected = (peer: string): boolean => components.connectionManager.getConnections().some(c => c.remotePeer.toString() === peer)
    const share = new UploadShare({ shareMs: init.shareMs, connected })
    const { store, metrics } = init
    store.meter ??= { hashed: n => { metrics.blockHashedBytes(n) }, written: n => { metrics.blockWrittenBytes(n) }, cached: n => { metrics.blockCacheHitBytes(n) } }
    this.v1 = new BlockExchangeV1({ store, metrics, share, connectionManager: components.connectionManager, debug: this.log, corrupt: init.corruptServedBlocks })
    this.sessions = new BlockSessions({
      store,
      metrics,
      share,
      corrupt: init.corruptServedBlocks,
      open: async peer => await this.open(peer),
      onError: (peer, err) => { this.log('block stream with %s ended - %s', peer, err.message) }
    })
  }

  /** Register the protocol handlers (every version). */
  async start (): Promise<void> {
    const { registrar } = this.components
    await Promise.all([BLOCKS_PROTOCOL, BLOCKS_WAIT_PROTOCOL].map(async protocol => {
      await registrar.handle(protocol, ({ stream, connection }) => {
        const from = connection.remotePeer.toString()
        this.c.metrics.blockStreams('in')
        this.v1.serve(stream, from).catch(err => {
          this.log.error('request from %s refused - %e', from, err)
          this.c.log(`block request refused: ${(err as Error).message}`)
          stream.abort(err as Error)
        })
      }, { maxInboundStreams: 256, maxOutboundStreams: 256 })
    }))
    if (this.c.v1Only === true) return
    await registrar.handle(BLOCKS_SESSION_PROTOCOL, ({ stream, connection }) => {
      this.c.metrics.blockStreams('in')
      this.sessions.accept(connection.remotePeer.toString(), this.channel(stream))
    }, { maxInboundStreams: 4, maxOutboundStreams: 4 })
  }

  /** Close the block streams, answer the waiting `have` requests and unregister the handlers. */
  async stop (): Promise<void> {
    this.sessions.stop()
    this.v1.stop()
    const protocols = [BLOCKS_PROTOCOL, BLOCKS_WAIT_PROTOCOL, ...(this.c.v1Only === true ? [] : [BLOCKS_SESSION_PROTOCOL])]
    await Promise.all(protocols.map(async protocol => { await this.components.registrar.unhandle(protocol) }))
  }

  /** A block was stored here: peers waiting for it hear of it. */
  arrived (cid: CID): void {
    this.v1.arrived(cid)
    this.sessions.arrived(cid)
  }

  private channel (stream: Stream): BlockChannel {
    const framed = new FramedChannel(stream, MAX_BLOCK_FRAME)
    return { write: async frames => { await framed.write(frames) }, read: async () => await framed.read(), abort: err => { framed.abort(err) } }
  }

  private async open (peer: PeerId): Promise<BlockChannel> {
    const { stream, release } = await dialWithDeadline(this.components.connectionManager, peer, BLOCKS_SESSION_PROTOCOL, OPEN_TIMEOUT_MS, () => new BlockTimeoutError('opening a block stream timed out'))
    // the stream outlives the dial: each request on it has its own deadline
    release()
    this.c.metrics.blockStreams('out')
    return this.channel(stream)
  }

  /** Whether to ask `peer` in 2.0.0: it speaks it, or has not been found not to lately. */
  private async speaks2 (peer: PeerId): Promise<boolean> {
    if (this.c.v1Only === true) return false
    const key = peer.toString()
    const until = this.oldPeers.get(key)
    if (until != null && until > Date.now()) return false
    try {
      await this.sessions.session(peer)
      this.oldPeers.delete(key)
      return true
    } catch (err) {
      if ((err as Error).name !== 'UnsupportedProtocolError') throw err
      this.log('%p does not speak %s: asking it in 1.x', peer, BLOCKS_SESSION_PROTOCOL)
      this.oldPeers.set(key, Date.now() + V1_RECHECK_MS)
      return false
    }
  }

  /** What `peer` said of each of `cids` on its 2.0.0 stream, known without asking; undefined when it must be asked. */
  known (peer: PeerId, cids: readonly CID[]): boolean[] | undefined {
    return this.sessions.known(peer, cids)
  }

  /** Call `listener` whenever a peer announces a block or sends one (2.0.0); returns how to stop. */
  onNews (listener: () => void): () => void {
    return this.sessions.onNews(listener)
  }

  /** Which of `cids` the peer holds. */
  async have (peer: PeerId, cids: CID[]): Promise<boolean[]> {
    return (await this.haveWait(peer, cids, 0)).have
  }

  /**
   * Which of `cids` the peer holds; when it holds none, it may wait up to `waitMs` for one
   * to arrive before it answers (`waited`: it did).
   */
  async haveWait (peer: PeerId, cids: CID[], waitMs: number): Promise<{ have: boolean[], waited: boolean }> {
    if (await this.speaks2(peer)) return await this.sessions.haveWait(peer, cids, waitMs)
    return await this.v1.haveWait(peer, cids, waitMs)
  }

  /**
   * Fetch blocks from a peer; each arriving block is handed to `onBlock`, which stores it
   * and so checks it against its CID (a wrong block: `BlockHashMismatchError`, counted).
   * Resolves to those the peer did not send.
   */
  async get (peer: PeerId, cids: CID[], onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>): Promise<CID[]> {
    const counted = async (cid: CID, bytes: Uint8Array): Promise<void> => {
      try {
        await onBlock(cid, bytes)
      } catch (err) {
        if (err instanceof BlockHashMismatchError) {
          this.log.error('%p sent a block that does not match %c', peer, cid)
          this.c.metrics.blocks('refused')
        }
        throw err
      }
      this.c.metrics.blocks('fetched')
    }
    if (await this.speaks2(peer)) return await this.sessions.get(peer, cids, counted)
    return await this.v1.get(peer, cids, counted)
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
