/**
 * The `/upgossip/blocks/2.0.0` sessions of one peer: one long-lived {@link BlockSession}
 * per peer it exchanges blocks with, opened the first time it asks that peer for
 * anything (or accepted when the peer opens one), kept while it works, and opened again
 * when it breaks. Asking is a {@link BlockSource}; a block stored here is announced to
 * every peer that wants it and cancelled on every peer it was wanted from.
 *
 * Transport-free: `open` hands it a channel (a libp2p stream in the daemon, a pipe in
 * test/unit/swarm.test.ts), so the in-memory swarm runs this very code.
 *
 * @example
 * ```ts
 * const sessions = new BlockSessions({ store, metrics, share, open: async peer => channelTo(peer) })
 * const held = await sessions.have(peer, cids)
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { BlockStore } from '../store/index.js'
import { BlockSession } from './block-session.js'
import type { BlockChannel } from './block-session.js'
import type { NetMetrics } from './metrics.js'
import type { UploadShare } from './upload-share.js'

/** How long a `have` that names blocks never named to the peer may wait for its answer. */
export const HAVE_TIMEOUT_MS = 10_000
/** How long a `get` may wait for the peer's next answer. */
export const GET_TIMEOUT_MS = 20_000

/** What the sessions need. */
export interface BlockSessionsInit {
  store: BlockStore
  metrics: NetMetrics
  share: UploadShare
  /** A new channel to `peer` (a stream opened on 2.0.0); rejects when the peer cannot be reached or does not speak it. */
  open: (peer: PeerId) => Promise<BlockChannel>
  /** Told when a session ends with an error (debug output). */
  onError?: (peer: string, err: Error) => void
  /** Test fault: serve every block with one byte flipped. */
  corrupt?: boolean
  haveTimeoutMs?: number
  getTimeoutMs?: number
  /** The time, for the rate limit (default `Date.now`). */
  now?: () => number
}

/** Every block session of this peer. */
export class BlockSessions {
  private readonly c: BlockSessionsInit
  /** The session this peer asks on, per peer. */
  private readonly asking = new Map<string, BlockSession>()
  private readonly opening = new Map<string, Promise<BlockSession>>()
  /** Every open session (a peer that opened one while ours was opening has two: both serve). */
  private readonly all = new Set<BlockSession>()
  private stopped = false
  private readonly listeners = new Set<() => void>()

  constructor (init: BlockSessionsInit) {
    this.c = init
  }

  /** A session the peer opened. */
  accept (peer: string, channel: BlockChannel): BlockSession {
    const session = this.start(peer, channel)
    if (!this.asking.has(peer)) this.asking.set(peer, session)
    return session
  }

  /** The session to ask `peer` on: the open one, or a new one. */
  async session (peer: PeerId): Promise<BlockSession> {
    const key = peer.toString()
    const open = this.asking.get(key)
    if (open?.open === true) return open
    let opening = this.opening.get(key)
    if (opening == null) {
      opening = this.c.open(peer).then(channel => {
        const session = this.start(key, channel)
        const current = this.asking.get(key)
        if (current?.open !== true) this.asking.set(key, session)
        return this.asking.get(key) as BlockSession
      }).finally(() => { this.opening.delete(key) })
      this.opening.set(key, opening)
    }
    return await opening
  }

  private start (peer: string, channel: BlockChannel): BlockSession {
    const session = new BlockSession({
      peer,
      channel,
      store: this.c.store,
      metrics: this.c.metrics,
      share: this.c.share,
      corrupt: this.c.corrupt,
      now: this.c.now,
      onNews: () => { for (const l of this.listeners) l() },
      onClose: (s, err) => {
        this.all.delete(s)
        if (this.asking.get(peer) === s) this.asking.delete(peer)
        if (err != null) this.c.onError?.(peer, err)
      }
    })
    this.all.add(session)
    if (this.stopped) session.close(new Error('the block exchange stopped'))
    else void session.run()
    return session
  }

  /** Which of `cids` the peer holds. */
  async have (peer: PeerId, cids: CID[]): Promise<boolean[]> {
    return await (await this.session(peer)).asks.have(cids, this.c.haveTimeoutMs ?? HAVE_TIMEOUT_MS)
  }

  /** Which of `cids` the peer holds; when none, after waiting up to `waitMs` for it to announce one (pushed: nothing is asked again). */
  async haveWait (peer: PeerId, cids: CID[], waitMs: number): Promise<{ have: boolean[], waited: boolean }> {
    const session = await this.session(peer)
    const timeout = this.c.haveTimeoutMs ?? HAVE_TIMEOUT_MS
    const have = await session.asks.have(cids, timeout)
    if (have.some(Boolean) || waitMs <= 0) return { have, waited: waitMs > 0 }
    await session.asks.waitForHave(cids, waitMs)
    // what it said meanwhile: a block that arrived here meanwhile is not asked about again
    return { have: cids.map(cid => session.asks.holds(cid.toString())), waited: true }
  }

  /** The blocks from the peer, each handed to `onBlock`; resolves to those it did not send. */
  async get (peer: PeerId, cids: CID[], onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>): Promise<CID[]> {
    return await (await this.session(peer)).asks.get(cids, onBlock, this.c.getTimeoutMs ?? GET_TIMEOUT_MS)
  }

  /** What `peer` said of each of `cids`, known here without asking; undefined when it must be asked. */
  known (peer: PeerId, cids: readonly CID[]): boolean[] | undefined {
    const session = this.asking.get(peer.toString())
    return session?.open === true ? session.asks.knows(cids) : undefined
  }

  /** Call `listener` whenever a peer announces something or sends a block; returns how to stop. */
  onNews (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** A block was stored here. */
  arrived (cid: CID): void {
    for (const s of this.all) s.arrived(cid)
  }

  /** Close every session. */
  stop (): void {
    this.stopped = true
    for (const s of [...this.all]) s.close(new Error('the block exchange stopped'))
  }
}
