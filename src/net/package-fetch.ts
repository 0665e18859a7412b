/**
 * Fetching one package DAG from the swarm: learn which peers hold which of the missing
 * blocks, and keep pulling from several peers at once — rarest first, each block from
 * its least-loaded holder, a few requests in flight per peer (one until the peer has
 * delivered) — with timeouts and retry elsewhere. Requests are pipelined: a peer that
 * answers is asked again at once, without waiting for slower peers, so a peer that does
 * not answer (cut off by a partition, its connection not yet known dead) holds up
 * nothing. A peer that serves a wrong block or breaks the protocol (an oversized frame,
 * more blocks than asked, garbage) costs one request and is dropped as a source for
 * this package; one that fails otherwise (a timeout, a reset) sits out a while, longer
 * each time. Blocks already held are never fetched again. A full disk here is not the
 * peers' fault: the fetch stops with {@link DiskFullError}, keeping the blocks it holds,
 * instead of asking peer after peer for blocks it cannot store.
 *
 * The decisions are the planner's (fetch-planner.ts, pure); {@link PackageFetch} holds the
 * state, asks the planner, sends the requests and records the answers.
 *
 * @example
 * ```ts
 * const { blocks, size } = await fetchPackage({ root, store, exchange, sources: () => node.getPeers(), onProgress: () => {}, log: console.error, signal })
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import { UpgossipError } from '../errors.js'
import { blockLinks } from '../package/index.js'
import { BlockHashMismatchError, DiskFullError } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import { BlockProtocolError } from './block-exchange.js'
import type { BlockExchange } from './block-exchange.js'
import { blockDelivered, getAnswered, getLaunched, getSettled, haveAnswered, haveAsked, haveSettled, linksHeld, newPeer, peerFailed, forgetDeclined } from './fetch-peer.js'
import type { PeerState } from './fetch-peer.js'
import { blockPace, fetchPlanConfig, penalty, planGets, planHaves, planPause, requestsOut, usablePeers } from './fetch-planner.js'
import type { Bench, FetchPlanConfig, GetAsk, HaveAsk } from './fetch-planner.js'
import { PackageFrontier } from './package-frontier.js'
import { MessageTooLargeError } from './stream-codec.js'

export { MAX_GETS_PER_PEER } from './fetch-peer.js'
export { GET_BATCH, HAVE_WAIT_MS, HEDGE_MS, MAX_HAVE_IN_FLIGHT } from './fetch-planner.js'

/** The fetch was stopped before it completed. */
export class FetchAbortedError extends UpgossipError {
  static override name = 'FetchAbortedError'
}

/** What a fetch uses of the block protocol, one request at a time ({@link BlockExchange} is one). */
export interface BlockSource {
  /** Which of `cids` the peer holds. */
  have: (peer: PeerId, cids: CID[]) => Promise<boolean[]>
  /** Which of `cids` the peer holds; when it holds none, it may wait up to `waitMs` for one first (`waited`: it speaks blocks 1.1.0 and did). */
  haveWait: (peer: PeerId, cids: CID[], waitMs: number) => Promise<{ have: boolean[], waited: boolean }>
  /** The blocks from the peer, each checked against its CID and handed to `onBlock`; resolves to those it answered `missing` for. */
  get: (peer: PeerId, cids: CID[], onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>) => Promise<CID[]>
  /** Which of `cids` the peer holds, as far as it told us already (blocks 2.0.0 pushes what it gets); undefined when it must be asked. */
  known?: (peer: PeerId, cids: readonly CID[]) => boolean[] | undefined
  /** Call `listener` whenever a peer tells of a block or sends one; returns how to stop. */
  onNews?: (listener: () => void) => () => void
}

// the daemon hands the fetch its BlockExchange: should the two part ways, the build fails here
type Assert<T extends true> = T
export type BlockExchangeIsABlockSource = Assert<BlockExchange extends BlockSource ? true : false>

/** What {@link fetchPackage} needs. */
export interface PackageFetchInit {
  root: CID
  store: BlockStore
  exchange: BlockSource
  /** Peers that may hold blocks, asked afresh every round. */
  sources: () => PeerId[]
  /** Total bytes of this package's blocks held so far. */
  onProgress: (have: number) => void
  log: (message: string) => void
  signal: AbortSignal
  /** Pause after a round in which no peer had anything to give (grows up to 8×); peers' holdings are asked again after half of it. */
  idleMs?: number
  /** The time, for benching peers, hedging and asking again (default {@link systemClock}). */
  clock?: Clock
  /** How long a block may be in flight to one peer before an idle other holder is asked too (default {@link HEDGE_MS}). */
  hedgeMs?: number
  /** How long a `have` to a peer that had nothing new may wait for a block (default {@link HAVE_WAIT_MS}; 0: never). */
  haveWaitMs?: number
}

/** What a completed fetch held: blocks, their total bytes, and how many came from peers. */
export interface PackageFetchResult {
  blocks: number
  size: number
  fetched: number
}

/** Fetch every block of the DAG under `root` into the store; resolves when all are held. */
export async function fetchPackage (init: PackageFetchInit): Promise<PackageFetchResult> {
  return await new PackageFetch(init).run()
}

/** Errors that prove a peer is lying or broken, not just slow. */
function isMisbehaviour (err: unknown): boolean {
  return err instanceof BlockHashMismatchError || err instanceof BlockProtocolError || err instanceof MessageTooLargeError
}

/** One fetch of one package: holds its state, asks the planner what to do, and does it. */
export class PackageFetch {
  private readonly clock: Clock
  private readonly config: FetchPlanConfig
  private readonly frontier: PackageFrontier
  private readonly wakeup = new Wakeup()
  /** Peer ids as first offered, for requests. */
  private readonly ids = new Map<string, PeerId>()
  private readonly state: {
    needed: Map<string, CID>
    inflight: Map<string, { since: number, from: Set<string> }>
    peers: Map<string, PeerState>
    benched: Map<string, Bench>
    banned: Set<string>
    lastGrowth: number
    blockMs?: number
  }

  private diskFull: DiskFullError | undefined
  private over = false
  private fetched = 0
  /** A block was found held this round. */
  private progressed = false

  /** A fetch of `init.root`, not started: {@link PackageFetch.run} runs it. */
  constructor (private readonly init: PackageFetchInit) {
    this.clock = init.clock ?? systemClock
    this.config = fetchPlanConfig(init)
    this.frontier = new PackageFrontier(init.store, () => {
      this.progressed = true
      this.state.lastGrowth = this.clock.now()
    })
    this.state = { needed: this.frontier.needed, inflight: new Map(), peers: new Map(), benched: new Map(), banned: new Set(), lastGrowth: this.clock.now() }
  }

  /** Fetch until every block is held; rejects with {@link FetchAbortedError} when stopped, {@link DiskFullError} when the store is full. */
  async run (): Promise<PackageFetchResult> {
    const { init, frontier, config, clock, wakeup } = this
    const { signal } = init
    // a peer that tells of a block it got wakes the loop: nothing is polled
    const unwatch = init.exchange.onNews?.(() => { wakeup.notify() })
    try {
      await frontier.walk(init.root)
      init.onProgress(frontier.have)
      let idleRounds = 0
      let lastAbsorb = clock.now()
      while (!frontier.done) {
        if (signal.aborted) throw new FetchAbortedError('fetch stopped')
        if (this.diskFull != null) {
          // no new requests; let those in flight end (their blocks cannot be stored either)
          while (requestsOut(this.state) && !signal.aborted) await wakeup.wait(config.refreshMs, signal)
          throw this.diskFull
        }
        this.progressed = false
        const busy = requestsOut(this.state)
        if (!busy || clock.now() - lastAbsorb > 1000) {
          lastAbsorb = clock.now()
          await frontier.absorb(key => this.state.inflight.has(key))
          if (this.progressed) init.onProgress(frontier.have)
          if (frontier.done) break
        }
        const current = this.meet(init.sources())
        this.takeKnown(current)
        const asks = planHaves(this.state, current, clock.now(), config).map(ask => this.askHave(ask))
        // at the start, hear from several peers before choosing, so the first requests spread
        if (asks.length > 0 && !busy) await Promise.race([Promise.allSettled(asks), sleep(Math.max(config.refreshMs, 100), signal)])
        const available = current.filter(key => { const p = this.peer(key); return !p.asking || p.askedAt > 0 })
        const gets = planGets(this.state, available, clock.now(), config, Math.random)
        for (const ask of gets) this.askGet(ask)
        const pause = planPause(this.state, gets.length > 0, clock.now(), config)
        if (pause.kind === 'await-swarm') {
          await wakeup.wait(pause.waitMs, signal)
        } else if (pause.kind === 'ask-again') {
          // the peers those blocks went to are not among ours, or did not pass them on
          const now = clock.now()
          for (const [key, p] of this.state.peers) this.state.peers.set(key, forgetDeclined(p, now, config.refreshMs))
        } else if (pause.kind === 'idle') {
          idleRounds = Math.min(idleRounds + 1, 3)
          // a waiting peer's answer (a block arrived there) wakes us
          if (pause.wakeOnAnswer || unwatch != null) await wakeup.wait(config.idleMs * 2 ** idleRounds, signal)
          else await sleep(config.idleMs * 2 ** idleRounds, signal)
        } else {
          if (this.progressed) idleRounds = 0
          await wakeup.wait(config.refreshMs, signal)
        }
      }
      return { blocks: frontier.blocks, size: frontier.have, fetched: this.fetched }
    } finally {
      unwatch?.()
      this.over = true
    }
  }

  /** What peers already told of the lacking blocks (blocks 2.0.0) is taken as their answer now, with nothing asked. */
  private takeKnown (current: readonly string[]): void {
    const { exchange } = this.init
    if (exchange.known == null) return
    const blocks = [...this.state.needed.keys()].slice(0, this.config.maxHaveCids)
    if (blocks.length === 0) return
    const cids = this.cids(blocks)
    const now = this.clock.now()
    for (const key of current) {
      const p = this.peer(key)
      if (p.asking) continue
      const answer = exchange.known(this.ids.get(key) as PeerId, cids)
      if (answer == null) continue
      const { peer, grew } = haveAnswered(p, blocks, answer)
      if (grew) this.state.lastGrowth = now
      // an answer as of now: not asked again until blocks it was never told of are lacking
      this.state.peers.set(key, grew || p.askedAt === 0 ? haveSettled(peer, blocks, now) : { ...peer, quiet: p.quiet, askedFor: new Set(blocks) })
    }
  }

  /** The usable peers among those offered, each with a state from now on. */
  private meet (offered: PeerId[]): string[] {
    const byKey = new Map(offered.map(id => [id.toString(), id]))
    const current = usablePeers(this.state, byKey.keys(), this.clock.now())
    for (const key of current) {
      if (this.state.peers.has(key)) continue
      this.state.peers.set(key, newPeer(key))
      this.ids.set(key, byKey.get(key) as PeerId)
    }
    return current
  }

  private peer (key: string): PeerState {
    return this.state.peers.get(key) as PeerState
  }

  private update (key: string, change: (peer: PeerState) => PeerState): void {
    this.state.peers.set(key, change(this.peer(key)))
  }

  private cids (keys: readonly string[]): CID[] {
    return keys.map(key => this.state.needed.get(key) as CID)
  }

  /** A misbehaving peer is dropped for this package; a failing one sits out a while, doubling. */
  private failed (key: string, what: string, err: Error): void {
    // a request still out when the fetch ended (a hedged one, a slow peer's) is nobody's concern now
    if (this.over) return
    this.update(key, peerFailed)
    const outcome = penalty(this.state.benched.get(key), isMisbehaviour(err), this.clock.now())
    if (outcome.banned) {
      this.state.banned.add(key)
      this.init.log(`peer ${key} ${what}: ${err.message}; it is no longer a source for this package`)
      return
    }
    this.state.benched.set(key, outcome.bench)
    if (outcome.again === true) return
    this.init.log(`peer ${key} ${what}: ${err.message}; asking others for ${outcome.ms / 1000} s`)
  }

  private async askHave (ask: HaveAsk): Promise<void> {
    const { peer: key, blocks, waitMs } = ask
    const id = this.ids.get(key) as PeerId
    const cids = this.cids(blocks)
    this.update(key, p => haveAsked(p, waitMs))
    let waited: boolean | undefined
    const asked = waitMs > 0
      ? this.init.exchange.haveWait(id, cids, waitMs).then(r => { waited = r.waited; return r.have })
      : this.init.exchange.have(id, cids)
    await asked.then(answer => {
      const { peer, grew } = haveAnswered(this.peer(key), blocks, answer, waited)
      this.state.peers.set(key, peer)
      if (grew) this.state.lastGrowth = this.clock.now()
    }, (err: Error) => {
      this.failed(key, 'did not say which blocks it holds', err)
    }).finally(() => {
      this.update(key, p => haveSettled(p, blocks, this.clock.now()))
      this.wakeup.notify()
    })
  }

  private askGet (ask: GetAsk): void {
    const { peer: key, blocks } = ask
    const { init, frontier, state } = this
    this.update(key, getLaunched)
    const since = this.clock.now()
    let last = since
    for (const block of blocks) {
      const entry = state.inflight.get(block)
      if (entry == null) state.inflight.set(block, { since, from: new Set([key]) })
      else entry.from.add(key)
    }
    const cids = this.cids(blocks)
    init.exchange.get(this.ids.get(key) as PeerId, cids, async (cid, bytes) => {
      const now = this.clock.now()
      state.blockMs = blockPace(state.blockMs, now - last)
      last = now
      this.update(key, p => blockDelivered(p, now))
      if (frontier.holds(cid.toString())) return
      await init.store.put(cid, bytes)
      this.fetched++
      await frontier.walk(cid, bytes)
      init.onProgress(frontier.have)
      this.update(key, p => linksHeld(p, blockLinks(cid, bytes).map(String).filter(link => state.needed.has(link))))
    }).then(missing => {
      this.update(key, p => getAnswered(p, cids.length, missing.map(String)))
    }, (err: Error) => {
      if (err instanceof DiskFullError) this.diskFull ??= err
      else this.failed(key, err instanceof BlockHashMismatchError ? 'served a block that does not match its CID' : 'failed to serve blocks', err)
    }).finally(() => {
      this.update(key, getSettled)
      for (const block of blocks) {
        const entry = state.inflight.get(block)
        entry?.from.delete(key)
        if (entry?.from.size === 0) state.inflight.delete(block)
      }
      this.wakeup.notify()
    })
  }
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const onAbort = (): void => { clearTimeout(timer); resolve() }
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** A wake-up call the background requests give the fetch loop. */
class Wakeup {
  private resolve: (() => void) | undefined
  notify (): void {
    const r = this.resolve
    this.resolve = undefined
    r?.()
  }

  async wait (ms: number, signal: AbortSignal): Promise<void> {
    const woken = new Promise<void>(resolve => { this.resolve = resolve })
    await Promise.race([woken, sleep(ms, signal)])
    this.resolve = undefined
  }
}
