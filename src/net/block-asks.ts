/**
 * The asking half of a blocks 2.0.0 stream ({@link BlockSession}): what the peer said it
 * holds, what is listed with it (it pushes `have` when one arrives there), the `wantHave`s
 * and `wantBlock`s out and who waits for them. Sending is the session's (`post`).
 *
 * @example
 * ```ts
 * const asks = new BlockAsks({ post: (list, cids) => session.post(list, cids), metrics, failure: () => undefined })
 * const held = await asks.have(cids, 10_000)
 * ```
 */
import type { CID } from 'multiformats/cid'
import { BlockProtocolError, BlockTimeoutError, MAX_WANT_LIST } from './block-messages.js'
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

/** What this peer asked the other, and what it was told. */
export class BlockAsks {
  private readonly io: BlockAsksInit
  /** What the peer said of blocks asked: held (true) or lacking and on its want-list (false). */
  private readonly known = new Map<string, boolean>()
  /** Blocks named in `wantHave` and neither announced nor cancelled since (the peer's want-list for us, at most). */
  private readonly listed = new Map<string, CID>()
  private readonly asking = new Map<string, Deferred<void>>()
  private readonly wantedBlocks = new Map<string, Deferred<Uint8Array | undefined>>()
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
    if (ask.length > 0) {
      this.makeRoom(ask.length)
      for (const cid of ask) {
        const d = deferred<void>()
        this.asking.set(cid.toString(), d)
        this.listed.set(cid.toString(), cid)
        waits.push(d.promise)
      }
      this.io.post('wantHave', ask)
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
    this.io.post('wantBlock', fresh)
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
        this.io.post('cancel', rest)
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
    if (cancel.length > 0) this.io.post('cancel', cancel)
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

  /** The session ended: every request out rejects with `err`, every wait ends. */
  close (err: Error): void {
    for (const d of this.asking.values()) d.reject(err)
    for (const d of this.wantedBlocks.values()) d.reject(err)
    this.asking.clear()
    this.wantedBlocks.clear()
    for (const w of this.pushWaiters) w.wake()
  }

  /** A block was stored here: it is no longer wanted from this peer. */
  arrived (cid: CID): void {
    const key = cid.toString()
    if (this.asking.has(key)) return
    if (this.listed.delete(key)) this.io.post('cancel', [cid])
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
  }

  /** The peer lacks these (an answer to `wantHave`), or will not send them now (to `wantBlock`). */
  takeDontHave (cids: readonly CID[]): void {
    for (const cid of cids) {
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
  }

  /** What the peer holds of `key` changed: whoever waits for it looks again. */
  wake (key: string): void {
    for (const w of this.pushWaiters) if (w.keys.has(key)) w.wake()
  }

  private settle (key: string): void {
    const d = this.asking.get(key)
    this.asking.delete(key)
    d?.resolve()
  }

  /** A block came: the answer to a `wantBlock` (one nobody asked for is the peer's fault, beyond those cancelled). */
  takeBlock (cid: CID, bytes: Uint8Array): void {
    const key = cid.toString()
    const d = this.wantedBlocks.get(key)
    if (d == null) {
      if (this.lateAllowed <= 0) throw new BlockProtocolError('peer sent more blocks than asked for')
      this.lateAllowed--
      return
    }
    this.wantedBlocks.delete(key)
    this.io.metrics.blockBytes('in', bytes.byteLength)
    d.resolve(bytes)
  }
}

/** Each CID once, in order. */
function unique (cids: CID[]): CID[] {
  const seen = new Set<string>()
  return cids.filter(cid => { const key = cid.toString(); if (seen.has(key)) return false; seen.add(key); return true })
}
