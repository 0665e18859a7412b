/**
 * One long-lived `/upgossip/blocks/2.0.0` stream between two peers, both ways: each side
 * asks (want-lists) and serves (announcements and blocks) on the same stream.
 *
 * Asking: `wantHave` names each block once; the answer (`have` / `dontHave`) is kept, and
 * a block the peer lacked stays on its want-list, so it pushes `have` when the block
 * arrives there. Asking again which blocks it holds is answered here, from what it said,
 * with nothing on the wire. `wantBlock` asks for blocks, answered by one `block` frame
 * each (or `dontHave`: not from me now); a block that arrives here is cancelled on every
 * peer's want-list.
 *
 * Serving: `have`/`dontHave` at once, a lacking block remembered to push `have` when it
 * arrives (at most {@link MAX_WANT_LIST}); `wantBlock`s one at a time, each written once
 * the stream took the last (yamux's window is the backpressure), at most
 * {@link MAX_GET_CIDS} waiting; wants at most {@link MAX_WANTS_PER_SECOND}. A large block
 * sent lately to another peer is left to it ({@link UploadShare}).
 *
 * Small messages of one tick go out together in one frame. Anything malformed, oversized,
 * over a limit, or a block nobody asked for ends the session with a named error, which
 * every request still out on it rejects with.
 *
 * @example
 * ```ts
 * const session = new BlockSession({ peer, channel, store, metrics, share, onClose })
 * void session.run()
 * const held = await session.have(cids, 10_000)
 * ```
 */
import type { CID } from 'multiformats/cid'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { BlockStore } from '../store/index.js'
import { BlockAsks } from './block-asks.js'
import { WantPacer } from './want-pacer.js'
import { decodeBlockFrame, encodeBlockFrame } from './block-frame-codec.js'
import { BlockProtocolError, MAX_GET_CIDS, MAX_HAVE_CIDS, MAX_WANT_LIST, MAX_WANTS_PER_SECOND, countMessages, isEmptyFrame } from './block-messages.js'
import type { BlockFrame } from './block-messages.js'
import type { NetMetrics } from './metrics.js'
import { BLOCKS_SESSION_PROTOCOL } from './protocol-ids.js'
import { StreamEndedError } from './stream-codec.js'
import type { UploadShare } from './upload-share.js'

/** What a session reads and writes frames on (a {@link FramedChannel} over a libp2p stream, or a pipe in tests). */
export interface BlockChannel {
  /** Write frames, each one array or a list of its pieces (a block's bytes uncopied); resolves once taken. */
  write: (frames: Array<Uint8Array | Uint8ArrayList>) => Promise<void>
  /** The next frame; undefined once the other side ended. */
  read: () => Promise<Uint8Array | undefined>
  abort: (err: Error) => void
}

/** What a session needs. */
export interface BlockSessionInit {
  /** The other peer, as a string. */
  peer: string
  channel: BlockChannel
  store: BlockStore
  metrics: NetMetrics
  share: UploadShare
  /** Told once, when the session ends (`err`: why, unless the peer closed it). */
  onClose: (session: BlockSession, err?: Error) => void
  /** Told after each frame that changed what this peer knows of the other (an announcement, a block). */
  onNews?: () => void
  /** Test fault: serve every block with one byte flipped. */
  corrupt?: boolean
  now?: () => number
}

type Outbox = Required<Omit<BlockFrame, 'block'>>

/** One block stream to one peer. */
export class BlockSession {
  readonly peer: string
  private readonly c: BlockSessionInit
  /** The asking half: what this peer asked the other, and what it was told. */
  readonly asks: BlockAsks
  // serving side
  private readonly wantList = new Map<string, CID>()
  private readonly queue: CID[] = []
  private serving = false
  private tokens = MAX_WANTS_PER_SECOND
  private tokensAt: number
  // both
  private readonly outbox: Outbox = { wantHave: [], wantBlock: [], cancel: [], have: [], dontHave: [] }
  private flushing = false
  private writing: Promise<void> = Promise.resolve()
  /** Our own wants, paced below the rate the peer takes. */
  private readonly pacer: WantPacer
  private failure: Error | undefined
  private ended = false

  constructor (init: BlockSessionInit) {
    this.c = init
    this.peer = init.peer
    this.tokensAt = this.now()
    this.pacer = new WantPacer(() => this.now())
    this.asks = new BlockAsks({ post: (list, cids) => { this.post(list, cids) }, metrics: init.metrics, failure: () => this.ended ? (this.failure ?? new StreamEndedError('the block stream is closed')) : undefined })
  }

  private now (): number {
    return this.c.now?.() ?? Date.now()
  }

  /** Whether the session still carries requests. */
  get open (): boolean {
    return !this.ended
  }

  /** Read and answer frames until the stream ends or breaks. */
  async run (): Promise<void> {
    try {
      while (!this.ended) {
        const bytes = await this.c.channel.read()
        if (bytes == null) break
        this.c.metrics.bytes(BLOCKS_SESSION_PROTOCOL, 'in', bytes.byteLength)
        await this.take(decodeBlockFrame(bytes))
      }
      this.close(new StreamEndedError('the peer closed the block stream'), false)
    } catch (err) {
      this.close(err as Error, true)
    }
  }

  /** End the session (`err`, when it is the peer's fault or ours to report); every request out rejects. */
  close (err: Error, abort = true): void {
    if (this.ended) return
    this.ended = true
    this.failure = err
    this.asks.close(err)
    this.queue.length = 0
    if (abort) this.c.channel.abort(err)
    this.c.onClose(this, abort ? err : undefined)
  }

  // ---- this peer got a block ----

  /** A block was stored here: peers waiting for it are told, and it is no longer wanted from this one. */
  arrived (cid: CID): void {
    if (this.ended) return
    const key = cid.toString()
    if (this.wantList.delete(key)) this.post('have', [cid])
    this.asks.arrived(cid)
  }

  // ---- a frame came ----

  private async take (frame: BlockFrame): Promise<void> {
    for (const cid of frame.cancel ?? []) {
      const key = cid.toString()
      this.wantList.delete(key)
      const i = this.queue.findIndex(q => q.toString() === key)
      if (i >= 0) this.queue.splice(i, 1)
    }
    const wants = (frame.wantHave?.length ?? 0) + (frame.wantBlock?.length ?? 0)
    if (wants > 0) this.spend(wants)
    if (frame.wantHave != null) await this.answerWantHave(frame.wantHave)
    if (frame.wantBlock != null) {
      if (this.queue.length + frame.wantBlock.length > MAX_GET_CIDS) throw new BlockProtocolError(`the peer wants more than ${MAX_GET_CIDS} blocks at once`)
      this.c.metrics.blockRequests('get')
      this.queue.push(...frame.wantBlock)
      void this.serve()
    }
    if (frame.have != null) this.asks.takeHave(frame.have)
    if (frame.dontHave != null) this.asks.takeDontHave(frame.dontHave)
    if (frame.block != null) {
      this.asks.takeBlock(frame.block.cid, frame.block.bytes)
      this.c.share.fetched(frame.block.cid.toString())
    }
    if (frame.have != null || frame.dontHave != null || frame.block != null) this.c.onNews?.()
  }

  /** Wants cost tokens, refilled at {@link MAX_WANTS_PER_SECOND}: a peer asking faster is cut off. */
  private spend (n: number): void {
    const now = this.now()
    this.tokens = Math.min(MAX_WANTS_PER_SECOND, this.tokens + (now - this.tokensAt) * MAX_WANTS_PER_SECOND / 1000)
    this.tokensAt = now
    if (n > this.tokens) throw new BlockProtocolError(`the peer asks for more than ${MAX_WANTS_PER_SECOND} blocks a second`)
    this.tokens -= n
  }

  private async answerWantHave (cids: CID[]): Promise<void> {
    this.c.metrics.blockRequests('have')
    // listed before the store is asked: a block that arrives meanwhile is announced by arrived()
    for (const cid of cids) {
      const key = cid.toString()
      if (!this.wantList.has(key) && this.wantList.size >= MAX_WANT_LIST) throw new BlockProtocolError(`the peer's want-list is over ${MAX_WANT_LIST} blocks`)
      this.wantList.set(key, cid)
    }
    const held = await Promise.all(cids.map(async cid => await this.c.store.has(cid)))
    const have: CID[] = []
    const dontHave: CID[] = []
    cids.forEach((cid, i) => {
      const key = cid.toString()
      // off the list: announced already (it arrived meanwhile), or cancelled
      if (!this.wantList.has(key)) return
      if (held[i] === true) {
        this.wantList.delete(key)
        have.push(cid)
      } else {
        dontHave.push(cid)
      }
    })
    this.post('have', have)
    this.post('dontHave', dontHave)
  }

  private async serve (): Promise<void> {
    if (this.serving) return
    this.serving = true
    try {
      for (let cid = this.queue.shift(); cid != null && !this.ended; cid = this.queue.shift()) {
        const key = cid.toString()
        let bytes: Uint8Array | undefined
        try {
          bytes = await this.c.store.get(cid)
        } catch {
          bytes = undefined
        }
        if (bytes != null && this.c.share.leaveToOthers(key, this.peer, bytes.byteLength)) bytes = undefined
        // cancelled while it was read
        if (this.ended) break
        if (bytes == null) {
          this.post('dontHave', [cid])
          continue
        }
        this.c.share.sent(key, this.peer, bytes.byteLength)
        if (this.c.corrupt === true) {
          bytes = Uint8Array.from(bytes)
          bytes[0] = (bytes[0] ?? 0) ^ 0xff
        }
        this.c.metrics.blocks('served')
        this.c.metrics.blockBytes('out', bytes.byteLength)
        await this.send({ ...this.takeOutbox(), block: { cid, bytes } })
      }
    } catch (err) {
      this.close(err as Error)
    } finally {
      this.serving = false
    }
  }

  // ---- writing ----

  /** Queue small messages; they go out together at the end of this tick. */
  post (list: keyof Outbox, cids: CID[]): void {
    if (cids.length === 0 || this.ended) return
    this.outbox[list].push(...cids)
    if (this.flushing) return
    this.flushing = true
    setImmediate(() => {
      this.flushing = false
      const frame = this.takeOutbox()
      if (!isEmptyFrame(frame)) this.send(frame).catch(err => { this.close(err as Error) })
    })
  }

  private takeOutbox (): Outbox {
    const frame = { ...this.outbox }
    for (const list of Object.keys(this.outbox) as Array<keyof Outbox>) this.outbox[list] = []
    return frame
  }

  /** Write one frame after those before it (lists over the frame limit split). */
  private async send (frame: BlockFrame): Promise<void> {
    const frames = splitFrame(frame)
    const write = this.writing.then(async () => {
      if (this.ended) return
      for (const f of frames) {
        const wants = (f.wantHave?.length ?? 0) + (f.wantBlock?.length ?? 0)
        if (wants > 0) {
          await this.pacer.take(wants)
          if (this.ended) return
        }
        countMessages(f, (kind, n) => { this.c.metrics.blockMessages(kind, n) })
        const bytes = encodeBlockFrame(f)
        this.c.metrics.bytes(BLOCKS_SESSION_PROTOCOL, 'out', bytes.byteLength)
        await this.c.channel.write([bytes])
      }
    })
    this.writing = write.catch(() => {})
    await write
  }
}

/**
 * A frame whose lists are within the protocol's per-list limit, as one or more frames;
 * `cancel` first, as the peer takes it within one frame, so wants sent once cancels made
 * room never reach it ahead of those cancels.
 */
function splitFrame (frame: BlockFrame): BlockFrame[] {
  const lists = ['cancel', 'wantHave', 'wantBlock', 'have', 'dontHave'] as const
  if (lists.every(l => (frame[l]?.length ?? 0) <= MAX_HAVE_CIDS)) return [frame]
  const out: BlockFrame[] = []
  for (const l of lists) {
    const all = frame[l] ?? []
    for (let i = 0; i < all.length; i += MAX_HAVE_CIDS) out.push({ [l]: all.slice(i, i + MAX_HAVE_CIDS) })
  }
  if (frame.block != null) out.push({ block: frame.block })
  return out
}
