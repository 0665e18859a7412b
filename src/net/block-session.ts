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
import type { BlockStore } from '../store/index.js'
import { BlockProtocolError, BlockTimeoutError, MAX_GET_CIDS, MAX_WANT_LIST, MAX_WANTS_PER_SECOND, countMessages, decodeBlockFrame, encodeBlockFrame, isEmptyFrame } from './block-messages.js'
import type { BlockFrame } from './block-messages.js'
import type { NetMetrics } from './metrics.js'
import { BLOCKS_SESSION_PROTOCOL } from './protocol-ids.js'
import { StreamEndedError } from './stream-codec.js'
import type { UploadShare } from './upload-share.js'

/** What a session reads and writes frames on (a {@link FramedChannel} over a libp2p stream, or a pipe in tests). */
export interface BlockChannel {
  write: (frames: Uint8Array[]) => Promise<void>
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

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (err: Error) => void
}

function deferred<T> (): Deferred<T> {
  let resolve: (value: T) => void = () => {}
  let reject: (err: Error) => void = () => {}
  const promise = new Promise<T>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
  promise.catch(() => {})
  return { promise, resolve, reject }
}

type Outbox = Required<Omit<BlockFrame, 'block'>>

/** One block stream to one peer. */
export class BlockSession {
  readonly peer: string
  private readonly c: BlockSessionInit
  // asking side
  /** What the peer said of blocks asked: held (true) or lacking and on its want-list (false). */
  private readonly known = new Map<string, boolean>()
  /** Blocks named in `wantHave` and neither announced nor cancelled since (the peer's want-list for us, at most). */
  private readonly listed = new Map<string, CID>()
  private readonly asking = new Map<string, Deferred<void>>()
  private readonly wantedBlocks = new Map<string, Deferred<Uint8Array | undefined>>()
  private readonly pushWaiters = new Set<{ keys: ReadonlySet<string>, wake: () => void }>()
  /** Blocks cancelled after they were asked for: that many may still come unasked. */
  private lateAllowed = 0
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
  private failure: Error | undefined
  private ended = false

  constructor (init: BlockSessionInit) {
    this.c = init
    this.peer = init.peer
    this.tokensAt = this.now()
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
    for (const d of this.asking.values()) d.reject(err)
    for (const d of this.wantedBlocks.values()) d.reject(err)
    this.asking.clear()
    this.wantedBlocks.clear()
    for (const w of this.pushWaiters) w.wake()
    this.queue.length = 0
    if (abort) this.c.channel.abort(err)
    this.c.onClose(this, abort ? err : undefined)
  }

  // ---- asking ----

  /** Which of `cids` the peer holds: from what it said, asking only about blocks never named to it (answer within `timeoutMs`). */
  async have (cids: CID[], timeoutMs: number): Promise<boolean[]> {
    this.assertOpen()
    const ask: CID[] = []
    const waits: Array<Promise<void>> = []
    for (const cid of unique(cids)) {
      const key = cid.toString()
      const pending = this.asking.get(key)
      if (pending != null) waits.push(pending.promise)
      else if (!this.known.has(key) && !this.wantedBlocks.has(key)) ask.push(cid)
    }
    if (ask.length > 0) {
      this.makeRoom(ask.length)
      for (const cid of ask) {
        const d = deferred<void>()
        this.asking.set(cid.toString(), d)
        this.listed.set(cid.toString(), cid)
        waits.push(d.promise)
      }
      this.post('wantHave', ask)
    }
    if (waits.length > 0) await this.within(Promise.all(waits), timeoutMs, () => new BlockTimeoutError('have request timed out'))
    return cids.map(cid => this.holds(cid.toString()))
  }

  /** What the peer said of each of `cids`, from here alone; undefined while any of them was never named to it (or is being asked). */
  knows (cids: readonly CID[]): boolean[] | undefined {
    const out: boolean[] = []
    for (const cid of cids) {
      const key = cid.toString()
      if (this.asking.has(key) || (!this.known.has(key) && !this.wantedBlocks.has(key))) return undefined
      out.push(this.holds(key))
    }
    return out
  }

  /** It said it holds the block, or it was asked for the block and has not answered yet. */
  holds (key: string): boolean {
    const known = this.known.get(key)
    return known === true || (known == null && this.wantedBlocks.has(key))
  }

  /** Until the peer announces one of `cids` (or holds one already), `ms` pass, or the session ends. */
  async waitForHave (cids: CID[], ms: number): Promise<void> {
    const keys = new Set(cids.map(String))
    if ([...keys].some(key => this.holds(key)) || this.ended) return
    let timer: NodeJS.Timeout | undefined
    const waiter = { keys, wake: () => {} }
    try {
      await new Promise<void>(resolve => {
        waiter.wake = resolve
        this.pushWaiters.add(waiter)
        timer = setTimeout(resolve, ms)
      })
    } finally {
      clearTimeout(timer)
      this.pushWaiters.delete(waiter)
    }
  }

  /**
   * The blocks, each handed to `onBlock` as it comes (in order); resolves to those the peer
   * answered `dontHave` for. A peer that sends nothing for `timeoutMs` fails it with
   * {@link BlockTimeoutError}; what `onBlock` throws (a block that does not match) fails it too.
   */
  async get (cids: CID[], onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>, timeoutMs: number): Promise<CID[]> {
    this.assertOpen()
    const asked = unique(cids)
    // a block already asked for on this stream is waited for, not asked again (the peer would send it twice)
    const fresh: CID[] = []
    const waits = new Map(asked.map(cid => {
      const key = cid.toString()
      let d = this.wantedBlocks.get(key)
      if (d == null) {
        d = deferred()
        this.wantedBlocks.set(key, d)
        fresh.push(cid)
      }
      return [key, d.promise]
    }))
    this.post('wantBlock', fresh)
    const missing: CID[] = []
    let index = 0
    try {
      for (; index < cids.length; index++) {
        const cid = cids[index] as CID
        const bytes = await this.within(waits.get(cid.toString()) as Promise<Uint8Array | undefined>, timeoutMs, () => new BlockTimeoutError('get request timed out'))
        if (bytes == null) missing.push(cid)
        else await onBlock(cid, bytes)
      }
    } catch (err) {
      // what is still out is not wanted from this peer any more
      const rest = cids.slice(index).filter(cid => this.wantedBlocks.delete(cid.toString()))
      if (rest.length > 0 && !this.ended) {
        this.lateAllowed += rest.length
        this.post('cancel', rest)
      }
      throw err
    }
    return missing
  }

  /** Keep what is listed with the peer within {@link MAX_WANT_LIST}: the oldest are cancelled (what the peer said of them is forgotten). */
  private makeRoom (adding: number): void {
    const cancel: CID[] = []
    for (const [key, cid] of this.listed) {
      if (this.listed.size - cancel.length + adding <= MAX_WANT_LIST) break
      if (this.asking.has(key)) continue
      cancel.push(cid)
    }
    for (const cid of cancel) {
      this.listed.delete(cid.toString())
      this.known.delete(cid.toString())
    }
    if (cancel.length > 0) this.post('cancel', cancel)
  }

  private async within<T> (promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(onTimeout()) }, ms) })
    try {
      return await Promise.race([promise, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  private assertOpen (): void {
    if (this.ended) throw this.failure ?? new StreamEndedError('the block stream is closed')
  }

  // ---- this peer got a block ----

  /** A block was stored here: peers waiting for it are told, and it is no longer wanted from this one. */
  arrived (cid: CID): void {
    if (this.ended) return
    const key = cid.toString()
    if (this.wantList.delete(key)) this.post('have', [cid])
    if (this.asking.has(key)) return
    if (this.listed.delete(key)) this.post('cancel', [cid])
    this.known.delete(key)
    // whoever waits to hear of it from this peer waits no more
    this.wake(key)
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
    for (const cid of frame.have ?? []) {
      const key = cid.toString()
      // one it no longer lists for us (we got the block meanwhile, and cancelled)
      if (!this.listed.delete(key) && !this.asking.has(key)) continue
      this.known.set(key, true)
      this.settle(key)
      this.wake(key)
    }
    for (const cid of frame.dontHave ?? []) {
      const key = cid.toString()
      const block = this.wantedBlocks.get(key)
      if (this.asking.has(key)) {
        // a wantHave is answered as its frame is read, before any wantBlock sent after it: this answers the wantHave
        this.known.set(key, false)
        this.settle(key)
      } else if (block != null) {
        // not from me now: what it holds is asked again when it matters
        this.wantedBlocks.delete(key)
        this.known.delete(key)
        block.resolve(undefined)
        this.wake(key)
      }
    }
    if (frame.block != null) this.takeBlock(frame.block.cid, frame.block.bytes)
    if (frame.have != null || frame.dontHave != null || frame.block != null) this.c.onNews?.()
  }

  /** What the peer holds of `key` changed: whoever waits for it looks again. */
  private wake (key: string): void {
    for (const w of this.pushWaiters) if (w.keys.has(key)) w.wake()
  }

  private settle (key: string): void {
    const d = this.asking.get(key)
    this.asking.delete(key)
    d?.resolve()
  }

  private takeBlock (cid: CID, bytes: Uint8Array): void {
    const key = cid.toString()
    const d = this.wantedBlocks.get(key)
    if (d == null) {
      if (this.lateAllowed <= 0) throw new BlockProtocolError('peer sent more blocks than asked for')
      this.lateAllowed--
      return
    }
    this.wantedBlocks.delete(key)
    this.c.metrics.blockBytes('in', bytes.byteLength)
    d.resolve(bytes)
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
  private post (list: keyof Outbox, cids: CID[]): void {
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

/** Each CID once, in order. */
function unique (cids: CID[]): CID[] {
  const seen = new Set<string>()
  return cids.filter(cid => { const key = cid.toString(); if (seen.has(key)) return false; seen.add(key); return true })
}

/** A frame whose lists are within the protocol's per-list limit, as one or more frames. */
function splitFrame (frame: BlockFrame): BlockFrame[] {
  const lists = ['wantHave', 'wantBlock', 'cancel', 'have', 'dontHave'] as const
  if (lists.every(l => (frame[l]?.length ?? 0) <= 1024)) return [frame]
  const out: BlockFrame[] = []
  for (const l of lists) {
    const all = frame[l] ?? []
    for (let i = 0; i < all.length; i += 1024) out.push({ [l]: all.slice(i, i + 1024) })
  }
  if (frame.block != null) out.push({ block: frame.block })
  return out
}
