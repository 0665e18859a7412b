/**
 * The asking half of a blocks 2.0.0 stream ({@link BlockSession}): what the peer said it
 * holds, what is listed with it (it pushes `have` when one arrives there), the `wantHave`s
 * and `wantBlock`s out and who waits for them. Sending is the session's (`post`).
 *
 * It keeps within the limits the peer serves under, whoever asks: at most
 * {@link MAX_WANT_LIST} blocks listed with it and at most {@link MAX_GET_CIDS} `wantBlock`s
 * unanswered, across every fetch that asks on this stream. What does not fit waits here, in
 * order, and goes out as answers (or cancels) free room.
 *
 * @example
 * ```ts
 * const asks = new BlockAsks({ post: (list, cids) => session.post(list, cids), metrics, failure: () => undefined })
 * const held = await asks.have(cids, 10_000)
 * ```
 */
import type { CID } from 'multiformats/cid'
import { BlockProtocolError, BlockTimeoutError, MAX_GET_CIDS, MAX_WANT_LIST } from './block-messages.js'
import type { NetMetrics } from './metrics.js'

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

/** What the asking half needs of its session. */
export interface BlockAsksInit {
  /** Queue messages to the peer (they go out at the end of the tick). */
  post: (list: 'wantHave' | 'wantBlock' | 'cancel', cids: CID[]) => void
  metrics: NetMetrics
  /** Why the session ended; undefined while it is open. */
  failure: () => Error | undefined
}

/** A block wanted from the peer: asked (`out`) or waiting here for room, and how many `get`s wait for it. */
interface BlockWant {
  cid: CID
  block: Deferred<Uint8Array | undefined>
  /** Resolves once the `wantBlock` went out: a `get`'s deadline runs from then, not while it waits here. */
  sent: Deferred<void>
  out: boolean
  waiters: number
}

/** What this peer asked the other, and what it was told. */
export class BlockAsks {
  private readonly io: BlockAsksInit
  /** What the peer said of blocks asked: held (true) or lacking and on its want-list (false). */
  private readonly known = new Map<string, boolean>()
  /** Blocks named in `wantHave` and neither announced nor cancelled since (the peer's want-list for us, at most). */
  private readonly listed = new Map<string, CID>()
  /** `wantHave`s out or waiting in {@link haveQueue}, until answered. */
  private readonly asking = new Map<string, Deferred<void>>()
  /** `wantHave`s waiting for room on the peer's want-list, in order. */
  private readonly haveQueue = new Map<string, CID>()
  private readonly wantedBlocks = new Map<string, BlockWant>()
  /** `wantBlock`s out and unanswered (at most {@link MAX_GET_CIDS}). */
  private blocksOut = 0
  /** `wantBlock`s waiting for an answer to one out, in order. */
  private readonly blockQueue = new Map<string, BlockWant>()
  /** `wantBlock`s sent on this stream, ever: the queue here moves. */
  private blockWantsSent = 0
  private readonly pushWaiters = new Set<{ keys: ReadonlySet<string>, wake: () => void }>()
  /** Blocks cancelled after they were asked for: that many may still come unasked. */
  private lateAllowed = 0

  constructor (io: BlockAsksInit) {
    this.io = io
  }

  private get ended (): boolean {
    return this.io.failure() != null
  }

  private assertOpen (): void {
    const failure = this.io.failure()
    if (failure != null) throw failure
  }

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
    for (const cid of ask) {
      const d = deferred<void>()
      this.asking.set(cid.toString(), d)
      this.haveQueue.set(cid.toString(), cid)
      waits.push(d.promise)
    }
    this.sendHaves()
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
    // a block already wanted on this stream is waited for, not asked again (the peer would send it twice)
    const wants = asked.map(cid => {
      const key = cid.toString()
      let want = this.wantedBlocks.get(key)
      if (want == null) {
        want = { cid, block: deferred(), sent: deferred(), out: false, waiters: 0 }
        this.wantedBlocks.set(key, want)
        this.blockQueue.set(key, want)
      }
      want.waiters++
      return want
    })
    const byKey = new Map(wants.map(want => [want.cid.toString(), want]))
    this.sendBlockWants()
    const missing: CID[] = []
    let index = 0
    try {
      for (; index < cids.length; index++) {
        const cid = cids[index] as CID
        const want = byKey.get(cid.toString()) as BlockWant
        // waiting here for room is not the peer's silence while the wants ahead keep going out
        if (!want.out) await this.within(want.sent.promise, timeoutMs, () => new BlockTimeoutError('get request timed out'), () => this.blockWantsSent)
        const bytes = await this.within(want.block.promise, timeoutMs, () => new BlockTimeoutError('get request timed out'))
        if (bytes == null) missing.push(cid)
        else await onBlock(cid, bytes)
      }
    } catch (err) {
      // what is still wanted is not wanted from this peer any more, unless another get waits for it
      const rest = unique(cids.slice(index)).map(cid => byKey.get(cid.toString()) as BlockWant)
      this.drop(rest.filter(want => --want.waiters <= 0 && this.wantedBlocks.get(want.cid.toString()) === want))
      throw err
    }
    for (const want of wants) want.waiters--
    return missing
  }

  /** Send the `wantHave`s waiting here that fit on the peer's want-list, making room by cancelling the oldest answered. */
  private sendHaves (): void {
    if (this.haveQueue.size === 0 || this.ended) return
    this.makeRoom(this.haveQueue.size)
    const send: CID[] = []
    for (const [key, cid] of this.haveQueue) {
      if (this.listed.size >= MAX_WANT_LIST) break
      this.haveQueue.delete(key)
      this.listed.set(key, cid)
      send.push(cid)
    }
    this.io.post('wantHave', send)
  }

  /** Cancel the oldest answered blocks listed with the peer until `adding` more fit within {@link MAX_WANT_LIST} (what it said of them is forgotten); those not answered yet stay. */
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
    if (cancel.length > 0) this.io.post('cancel', cancel)
  }

  /** Send the `wantBlock`s waiting here while fewer than {@link MAX_GET_CIDS} are out. */
  private sendBlockWants (): void {
    if (this.ended) return
    const send: CID[] = []
    for (const [key, want] of this.blockQueue) {
      if (this.blocksOut >= MAX_GET_CIDS) break
      this.blockQueue.delete(key)
      want.out = true
      this.blocksOut++
      this.blockWantsSent++
      send.push(want.cid)
      want.sent.resolve()
    }
    this.io.post('wantBlock', send)
  }

  /** Wants nobody waits for any more: those out are cancelled (the peer may still send them), those waiting here forgotten. */
  private drop (wants: BlockWant[]): void {
    const cancel: CID[] = []
    for (const want of wants) {
      const key = want.cid.toString()
      this.wantedBlocks.delete(key)
      if (this.blockQueue.delete(key)) continue
      this.blocksOut--
      cancel.push(want.cid)
    }
    if (cancel.length > 0 && !this.ended) {
      this.lateAllowed += cancel.length
      this.io.post('cancel', cancel)
    }
    this.sendBlockWants()
  }

  /** A `wantBlock` out was answered (a block, or `dontHave`): room for one waiting here. */
  private answered (key: string, want: BlockWant): void {
    this.wantedBlocks.delete(key)
    if (want.out) this.blocksOut--
    else this.blockQueue.delete(key)
    this.sendBlockWants()
  }

  /** `promise`, or `onTimeout()` once `ms` pass (with `moved`: once `ms` pass in which what it counts did not change). */
  private async within<T> (promise: Promise<T>, ms: number, onTimeout: () => Error, moved?: () => number): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      let seen = moved?.()
      const check = (): void => {
        const now = moved?.()
        if (now === seen) { reject(onTimeout()); return }
        seen = now
        timer = setTimeout(check, ms)
      }
      timer = setTimeout(check, ms)
    })
    try {
      return await Promise.race([promise, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** The session ended: every request out rejects with `err`, every wait ends. */
  close (err: Error): void {
    for (const d of this.asking.values()) d.reject(err)
    for (const want of this.wantedBlocks.values()) {
      want.sent.reject(err)
      want.block.reject(err)
    }
    this.asking.clear()
    this.haveQueue.clear()
    this.wantedBlocks.clear()
    this.blockQueue.clear()
    this.blocksOut = 0
    for (const w of this.pushWaiters) w.wake()
  }

  /** A block was stored here: it is no longer wanted from this peer. */
  arrived (cid: CID): void {
    const key = cid.toString()
    if (this.haveQueue.delete(key)) {
      // never named to the peer: nothing to ask it now
      this.settle(key)
      return
    }
    if (this.asking.has(key)) return
    if (this.listed.delete(key)) {
      this.io.post('cancel', [cid])
      this.sendHaves()
    }
    this.known.delete(key)
    // whoever waits to hear of it from this peer waits no more
    this.wake(key)
  }

  /** The peer announced these (an answer to `wantHave`, or pushed when one arrived there). */
  takeHave (cids: readonly CID[]): void {
    for (const cid of cids) {
      const key = cid.toString()
      // one it no longer lists for us (we got the block meanwhile, and cancelled)
      if (!this.listed.delete(key) && !this.asking.has(key)) continue
      this.known.set(key, true)
      this.settle(key)
      this.wake(key)
    }
    this.sendHaves()
  }

  /** The peer lacks these (an answer to `wantHave`), or will not send them now (to `wantBlock`). */
  takeDontHave (cids: readonly CID[]): void {
    for (const cid of cids) {
      const key = cid.toString()
      const want = this.wantedBlocks.get(key)
      if (this.asking.has(key) && !this.haveQueue.has(key)) {
        // a wantHave is answered as its frame is read, before any wantBlock sent after it: this answers the wantHave
        this.known.set(key, false)
        this.settle(key)
      } else if (want?.out === true) {
        // not from me now: what it holds is asked again when it matters
        this.answered(key, want)
        this.known.delete(key)
        want.block.resolve(undefined)
        this.wake(key)
      }
    }
    this.sendHaves()
  }

  /** What the peer holds of `key` changed: whoever waits for it looks again. */
  wake (key: string): void {
    for (const w of this.pushWaiters) if (w.keys.has(key)) w.wake()
  }

  private settle (key: string): void {
    const d = this.asking.get(key)
    this.asking.delete(key)
    this.haveQueue.delete(key)
    d?.resolve()
  }

  /** A block came: the answer to a `wantBlock` (one nobody asked for is the peer's fault, beyond those cancelled). */
  takeBlock (cid: CID, bytes: Uint8Array): void {
    const key = cid.toString()
    const want = this.wantedBlocks.get(key)
    if (want?.out !== true) {
      if (this.lateAllowed <= 0) throw new BlockProtocolError('peer sent more blocks than asked for')
      this.lateAllowed--
      // a late block for one wanted again meanwhile (and waiting here): taken, not asked for again
      if (want == null) return
      want.sent.resolve()
    }
    this.answered(key, want)
    this.io.metrics.blockBytes('in', bytes.byteLength)
    want.block.resolve(bytes)
  }
}

/** Each CID once, in order. */
function unique (cids: CID[]): CID[] {
  const seen = new Set<string>()
  return cids.filter(cid => { const key = cid.toString(); if (seen.has(key)) return false; seen.add(key); return true })
}
