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
 */
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { UpgossipError } from '../errors.js'
import { blockLinks } from '../package/index.js'
import { BlockHashMismatchError, DiskFullError } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import { BlockProtocolError, MAX_HAVE_CIDS } from './block-exchange.js'
import type { BlockExchange } from './block-exchange.js'
import { MessageTooLargeError } from './stream-codec.js'

/** How long a peer that failed without breaking the protocol sits out first (doubling, at most 8×). */
const BENCH_MS = 15_000

/** Errors that prove a peer is lying or broken, not just slow. */
function isMisbehaviour (err: unknown): boolean {
  return err instanceof BlockHashMismatchError || err instanceof BlockProtocolError || err instanceof MessageTooLargeError
}

/** The fetch was stopped before it completed. */
export class FetchAbortedError extends UpgossipError {
  static override name = 'FetchAbortedError'
}

/** Blocks asked for in one `get` (2 MiB of 256 KiB leaves; the protocol allows 32). */
export const GET_BATCH = 8
/** `have` requests one fetch keeps in flight at once. */
export const MAX_HAVE_IN_FLIGHT = 8
/** How long a block may be in flight to one peer before an idle other holder is asked too. */
export const HEDGE_MS = 2000
/** `get` requests in flight to one peer once it has delivered; a new or failing peer gets one. */
export const MAX_GETS_PER_PEER = 4
/** How long a peer that had nothing new for us is asked to wait for a block before it answers (blocks 1.1.0). */
export const HAVE_WAIT_MS = 5000

/** What {@link fetchPackage} needs. */
export interface PackageFetchInit {
  root: CID
  store: BlockStore
  exchange: BlockExchange
  /** Peers that may hold blocks, asked afresh every round. */
  sources: () => PeerId[]
  /** Total bytes of this package's blocks held so far. */
  onProgress: (have: number) => void
  log: (message: string) => void
  signal: AbortSignal
  /** Pause after a round in which no peer had anything to give (grows up to 8×); peers' holdings are asked again after half of it. */
  idleMs?: number
  /** The time, for benching peers (default `Date.now`). */
  now?: () => number
  /** How long a block may be in flight to one peer before an idle other holder is asked too (default {@link HEDGE_MS}). */
  hedgeMs?: number
  /** How long a `have` to a peer that had nothing new may wait for a block (default {@link HAVE_WAIT_MS}; 0: never). */
  haveWaitMs?: number
}

/** What one source is known to hold, and how much it is asked now. */
interface Source {
  id: PeerId
  /** Missing blocks it said it holds (and has not since answered `missing` for). */
  holds: Set<string>
  /** The blocks its last `have` answer covered. */
  askedFor: Set<string>
  /** When its last `have` answer (or failure) came; 0: never asked. */
  askedAt: number
  asking: boolean
  /** Its `have` in flight asked it to wait for a block: cheap, and not counted as in flight. */
  waiting: boolean
  /** Whether it waits when asked to (it speaks blocks 1.1.0); unknown until asked. */
  waits?: boolean
  /** Consecutive failures, for backing off. */
  failures: number
  /** Consecutive `have` answers with nothing new for us, for asking less often. */
  quiet: number
  /** `get` requests in flight, and how many it may have. */
  gets: number
  limit: number
  /** Blocks it said it holds but answered `missing` for (it left them to peers it sent them to). */
  declined: Set<string>
  /** When it last delivered a block (0: never): a peer that keeps delivering is busy, not stalled. */
  lastBlockAt: number
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

function shuffle<T> (items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const t = items[i] as T
    items[i] = items[j] as T
    items[j] = t
  }
  return items
}

/** Fetch every block of the DAG under `root` into the store; resolves when all are held. */
export async function fetchPackage (init: PackageFetchInit): Promise<{ blocks: number, size: number, fetched: number }> {
  const { store, exchange, signal } = init
  const idleMs = init.idleMs ?? 500
  const refreshMs = Math.max(1, Math.floor(idleMs / 2))
  const needed = new Map<string, CID>()
  const walked = new Set<string>()
  const walking = new Set<string>()
  const banned = new Set<string>()
  /** Blocks asked for, since when, and of whom (two sources once a slow request is hedged). */
  const inflight = new Map<string, { since: number, from: Set<Source> }>()
  const hedgeMs = init.hedgeMs ?? HEDGE_MS
  const sources = new Map<string, Source>()
  const wakeup = new Wakeup()
  const benched = new Map<string, { until: number, strikes: number }>()
  const now = init.now ?? Date.now
  const usable = (key: string): boolean => !banned.has(key) && (benched.get(key)?.until ?? 0) <= now()
  /** A misbehaving peer is dropped for this package; a failing one sits out a while, doubling. */
  const failed = (source: Source, what: string, err: Error): void => {
    // a request still out when the fetch ended (a hedged one, a slow peer's) is nobody's concern now
    if (over) return
    const key = source.id.toString()
    source.holds = new Set()
    source.limit = 1
    source.failures++
    if (isMisbehaviour(err)) {
      banned.add(key)
      init.log(`peer ${key} ${what}: ${err.message}; it is no longer a source for this package`)
      return
    }
    const strikes = (benched.get(key)?.strikes ?? 0) + 1
    const ms = BENCH_MS * 2 ** Math.min(strikes - 1, 3)
    benched.set(key, { until: now() + ms, strikes })
    init.log(`peer ${key} ${what}: ${err.message}; asking others for ${ms / 1000} s`)
  }
  let diskFull: DiskFullError | undefined
  let over = false
  let have = 0
  let fetched = 0
  let progressed = false
  // walks under way may still add to the frontier: the fetch is done only when none is
  let walks = 0
  // when a block last arrived, or a peer last said it holds more than before: the swarm is alive
  let lastGrowth = Date.now()
  // how long to wait on the swarm before asking again for what peers left to others
  const patienceMs = 8 * refreshMs

  // walk what we hold; what we lack becomes the frontier
  const walk = async (cid: CID, bytes?: Uint8Array): Promise<void> => {
    walks++
    try {
      await walkFrom(cid, bytes)
    } finally {
      walks--
    }
  }
  const walkFrom = async (cid: CID, bytes?: Uint8Array): Promise<void> => {
    const stack: Array<{ cid: CID, bytes?: Uint8Array }> = [{ cid, bytes }]
    while (stack.length > 0) {
      const next = stack.pop() as { cid: CID, bytes?: Uint8Array }
      const key = next.cid.toString()
      // claimed before any await: two walks never count one block twice
      if (walked.has(key) || walking.has(key)) continue
      walking.add(key)
      try {
        let data = next.bytes
        if (data == null) {
          if (!(await store.has(next.cid))) {
            needed.set(key, next.cid)
            continue
          }
          try {
            data = await store.get(next.cid)
          } catch {
            needed.set(key, next.cid)
            continue
          }
        }
        walked.add(key)
        needed.delete(key)
        have += data.byteLength
        progressed = true
        lastGrowth = Date.now()
        for (const link of blockLinks(next.cid, data)) stack.push({ cid: link })
      } finally {
        walking.delete(key)
      }
    }
  }

  /** Whether any `get` request is still out. */
  const requestsOut = (): boolean => [...sources.values()].some(s => s.gets > 0)

  /** Blocks may arrive another way (a publish, another release sharing them). */
  const absorbArrivals = async (): Promise<void> => {
    for (const [key, cid] of [...needed]) {
      if (!inflight.has(key) && await store.has(cid)) {
        needed.delete(key)
        await walk(cid)
      }
    }
  }

  const haveWaitMs = init.haveWaitMs ?? HAVE_WAIT_MS
  /** A peer that had nothing new for us, and may speak 1.1.0, is asked to tell us when it has: no asking again and again. */
  const mayWait = (s: Source): boolean => typeof exchange.haveWait === 'function' && haveWaitMs > 0 && s.quiet > 0 && s.failures === 0 && s.waits !== false
  const askHave = (source: Source, wanted: CID[]): Promise<void> => {
    source.asking = true
    const wait = mayWait(source) ? haveWaitMs : 0
    source.waiting = wait > 0
    const asked = wait > 0
      ? exchange.haveWait(source.id, wanted, wait).then(r => { source.waits = r.waited; return r.have })
      : exchange.have(source.id, wanted)
    return asked.then(answer => {
      const before = source.holds
      source.holds = new Set(wanted.filter((_, i) => answer[i] === true).map(c => c.toString()).filter(key => !source.declined.has(key)))
      if ([...source.holds].some(key => !before.has(key))) {
        lastGrowth = Date.now()
        source.quiet = 0
      } else {
        source.quiet++
      }
      source.failures = 0
    }, (err: Error) => {
      failed(source, 'did not say which blocks it holds', err)
    }).finally(() => {
      source.askedFor = new Set(wanted.map(c => c.toString()))
      source.askedAt = Date.now()
      source.asking = false
      source.waiting = false
      wakeup.notify()
    })
  }

  const launchGet = (source: Source, cids: CID[]): void => {
    source.gets++
    for (const c of cids) {
      const entry = inflight.get(c.toString())
      if (entry == null) inflight.set(c.toString(), { since: Date.now(), from: new Set([source]) })
      else entry.from.add(source)
    }
    exchange.get(source.id, cids, async (cid, bytes) => {
      source.lastBlockAt = Date.now()
      if (walked.has(cid.toString())) return
      await store.put(cid, bytes)
      fetched++
      await walk(cid, bytes)
      init.onProgress(have)
      // a peer that holds a block most likely holds what it links to: ask it for those at
      // once rather than after another round of "who holds what" (it answers missing if not)
      for (const link of blockLinks(cid, bytes)) if (needed.has(link.toString())) source.holds.add(link.toString())
    }).then(missing => {
      for (const m of missing) {
        source.holds.delete(m.toString())
        source.declined.add(m.toString())
      }
      // a peer that delivered may have more requests in flight (slow start)
      if (missing.length < cids.length) source.limit = Math.min(MAX_GETS_PER_PEER, source.limit * 2)
    }, (err: Error) => {
      if (err instanceof DiskFullError) diskFull ??= err
      else failed(source, err instanceof BlockHashMismatchError ? 'served a block that does not match its CID' : 'failed to serve blocks', err)
    }).finally(() => {
      source.gets--
      for (const c of cids) {
        const entry = inflight.get(c.toString())
        entry?.from.delete(source)
        if (entry?.from.size === 0) inflight.delete(c.toString())
      }
      wakeup.notify()
    })
  }

  /**
   * Rarest first; each block to its least-loaded holder with room, ties broken at random.
   * Then, with room left, a block asked more than `hedgeMs` ago of a peer that has sent no
   * block since is asked of an idle other holder too (a stalling peer costs a delay, not
   * its whole timeout; a busy one that keeps sending is left alone); whichever answer comes
   * first is kept.
   */
  const schedule = (available: Source[]): boolean => {
    const load = new Map<Source, CID[]>()
    const room = (s: Source): number => (s.limit - s.gets) * GET_BATCH - (load.get(s)?.length ?? 0)
    const planned = (s: Source): number => load.get(s)?.length ?? 0
    const rarity = new Map<string, Source[]>()
    const hedges = new Map<string, Source[]>()
    const at = Date.now()
    for (const [key] of needed) {
      const asked = inflight.get(key)
      if (asked == null) {
        const holders = available.filter(s => s.holds.has(key))
        if (holders.length > 0) rarity.set(key, holders)
      } else if (asked.from.size === 1 && at - Math.max(asked.since, ([...asked.from][0] as Source).lastBlockAt) >= hedgeMs) {
        const holders = available.filter(s => s.holds.has(key) && s.gets === 0 && !asked.from.has(s))
        if (holders.length > 0) hedges.set(key, holders)
      }
    }
    for (const [key, holders] of hedges) rarity.set(key, holders)
    const order = [
      ...shuffle([...rarity.keys()].filter(k => !hedges.has(k))).sort((a, b) => (rarity.get(a)?.length ?? 0) - (rarity.get(b)?.length ?? 0)),
      ...hedges.keys()
    ]
    for (const key of order) {
      const holders = shuffle((rarity.get(key) ?? []).filter(s => room(s) > 0))
      if (holders.length === 0) continue
      const best = holders.reduce((a, b) => planned(b) < planned(a) ? b : a)
      load.set(best, [...(load.get(best) ?? []), needed.get(key) as CID])
    }
    for (const [source, cids] of load) {
      for (let i = 0; i < cids.length; i += GET_BATCH) launchGet(source, cids.slice(i, i + GET_BATCH))
    }
    return load.size > 0
  }

  try {
    await walk(init.root)
    init.onProgress(have)

    let idleRounds = 0
    let lastAbsorb = Date.now()
    while (needed.size > 0 || walks > 0) {
      if (signal.aborted) throw new FetchAbortedError('fetch stopped')
      if (diskFull != null) {
        // no new requests; let those in flight end (their blocks cannot be stored either)
        while (requestsOut() && !signal.aborted) await wakeup.wait(refreshMs, signal)
        throw diskFull
      }
      progressed = false
      const busy = requestsOut()
      if (!busy || Date.now() - lastAbsorb > 1000) {
        lastAbsorb = Date.now()
        await absorbArrivals()
        if (progressed) init.onProgress(have)
        if (needed.size === 0 && walks === 0) break
      }
      const current = init.sources().filter(p => usable(p.toString())).map(p => {
        const key = p.toString()
        let s = sources.get(key)
        if (s == null) {
          s = { id: p, holds: new Set(), askedFor: new Set(), askedAt: 0, asking: false, waiting: false, failures: 0, gets: 0, limit: 1, declined: new Set(), quiet: 0, lastBlockAt: 0 }
          sources.set(key, s)
        }
        return s
      })
      // ask who holds what: peers never asked, peers not asked about new frontier blocks, and
      // peers that have nothing more for us, once their answer is old
      // blocks in flight come last: other holders of those matter only for a hedge
      const unasked: CID[] = []
      const asked: CID[] = []
      for (const [key, cid] of needed) (inflight.has(key) ? asked : unasked).push(cid)
      const wanted = [...unasked, ...asked].slice(0, MAX_HAVE_CIDS)
      const asks: Array<Promise<void>> = []
      const at = Date.now()
      // a few peers at a time, those heard from longest ago first: in a large network every
      // fetching peer asking every connected peer several times a second costs more CPU than
      // the blocks themselves (docs/benchmarks.md)
      let asking = current.filter(s => s.asking && !s.waiting).length
      for (const s of [...current].sort((a, b) => a.askedAt - b.askedAt)) {
        if (asking >= MAX_HAVE_IN_FLIGHT) break
        if (s.asking) continue
        // what it left to others is not asked of it again until we give up waiting for those
        const mine = s.declined.size === 0 ? wanted : wanted.filter(c => !s.declined.has(c.toString()))
        if (mine.length === 0) continue
        const age = at - s.askedAt
        // a peer that keeps answering nothing new is asked less often (up to 4 intervals); a failing one, less still
        const backoff = refreshMs * 2 ** Math.min(s.failures > 0 ? s.failures : Math.min(s.quiet, 2), 5)
        const holdsNone = !mine.some(c => s.holds.has(c.toString()))
        const stale = s.askedAt === 0 ||
          (age >= Math.min(backoff, 50) && s.failures === 0 && mine.some(c => !s.askedFor.has(c.toString()))) ||
          (age >= backoff && holdsNone) ||
          // a peer that waits for blocks is asked again at once: its answer comes when it has one
          (s.waits === true && mayWait(s) && holdsNone)
        if (stale) {
          asks.push(askHave(s, mine))
          if (!s.waiting) asking++
        }
      }
      // at the start, hear from several peers before choosing, so the first requests spread
      if (asks.length > 0 && !busy) await Promise.race([Promise.allSettled(asks), sleep(Math.max(refreshMs, 100), signal)])
      const launched = schedule(current.filter(s => !s.asking || s.askedAt > 0))
      // a peer waiting to tell us of a block is not work under way
      const stillBusy = launched || [...sources.values()].some(s => s.gets > 0 || (s.asking && !s.waiting))
      if (!stillBusy && [...sources.values()].some(s => s.declined.size > 0)) {
        // nothing to fetch now but what peers left to others: while the swarm still grows
        // (blocks arrive, peers hold more), wait for it to reach us through our own peers
        if (Date.now() - lastGrowth < patienceMs) {
          await wakeup.wait(refreshMs, signal)
          continue
        }
        // it stopped growing: the peers those blocks went to are not among ours, or did not
        // pass them on; ask again, after hearing afresh who holds what
        for (const s of sources.values()) {
          s.declined.clear()
          s.askedAt = Math.min(s.askedAt, Date.now() - refreshMs)
          s.askedFor.clear()
        }
        continue
      }
      if (!stillBusy) {
        idleRounds = Math.min(idleRounds + 1, 3)
        // a waiting peer's answer (a block arrived there) wakes us
        if ([...sources.values()].some(s => s.waiting)) await wakeup.wait(idleMs * 2 ** idleRounds, signal)
        else await sleep(idleMs * 2 ** idleRounds, signal)
      } else {
        if (progressed) idleRounds = 0
        await wakeup.wait(refreshMs, signal)
      }
    }
    return { blocks: walked.size, size: have, fetched }
  } finally {
    over = true
  }
}
