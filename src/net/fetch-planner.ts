/**
 * The package fetch's decisions, as pure functions of an explicit {@link FetchState} and
 * the time: which peers are asked which blocks they hold ({@link planHaves}), which block
 * is asked of whom — rarest first, a slow request hedged — ({@link planGets}), what a
 * failure costs a peer ({@link penalty}), and what to do once nothing more can be asked
 * now ({@link planPause}). Nothing here does I/O, reads a clock or mutates its arguments;
 * randomness, for tie-breaks, is passed in. `PackageFetch` (package-fetch.ts) holds the
 * state, records what peers answer with the transitions of fetch-peer.ts, calls these, and
 * does the asking.
 *
 * @example
 * ```ts
 * const config = fetchPlanConfig({ idleMs: 500 })
 * const current = usablePeers(state, offered, now)
 * for (const ask of planHaves(state, current, now, config)) askHave(ask)
 * for (const ask of planGets(state, current, now, config, Math.random)) askGet(ask)
 * ```
 */
import { MAX_HAVE_CIDS } from './block-exchange.js'
import type { PeerState } from './fetch-peer.js'

/** Blocks asked for in one `get` (2 MiB of 256 KiB leaves; the protocol allows 32). */
export const GET_BATCH = 8
/** `have` requests one fetch keeps in flight at once. */
export const MAX_HAVE_IN_FLIGHT = 8
/** How long a block may be in flight to one peer before an idle other holder is asked too. */
export const HEDGE_MS = 2000
/** A block is hedged only once it waited this many block times (as the fetch sees them lately), when that is longer than `hedgeMs`. */
export const HEDGE_BLOCKS = 8
/** How long a peer that had nothing new for us is asked to wait for a block before it answers (blocks 1.1.0). */
export const HAVE_WAIT_MS = 5000
/** The default pause after a round in which no peer had anything to give. */
export const IDLE_MS = 500
/** Waiting for blocks peers left to others lasts this many block times without growth (within {@link MIN_PATIENCE_MS} and `patienceMs`). */
export const PATIENCE_BLOCKS = 16
/** The shortest wait for blocks peers left to others. */
export const MIN_PATIENCE_MS = 300
/** How long a peer that failed without breaking the protocol sits out first (doubling, at most 8×). */
export const BENCH_MS = 15_000

/** The blocks a fetch still lacks, by CID string, in the order its walk found them (a `Set`, or a `Map` to the CIDs). */
export interface LackingBlocks {
  has: (key: string) => boolean
  keys: () => Iterable<string>
}

/** Blocks asked for, since when, and of which peers (two once a slow request is hedged). */
export interface InFlight {
  readonly since: number
  readonly from: ReadonlySet<string>
}

/** A peer sitting out after a failure: until when, and how many failures so far. */
export interface Bench {
  readonly until: number
  readonly strikes: number
}

/** What the planner decides from: everything one fetch knows, keyed by CID and peer id strings. */
export interface FetchState {
  /** Blocks still lacking, in the order found. */
  readonly needed: LackingBlocks
  /** Blocks asked for and not yet answered. */
  readonly inflight: ReadonlyMap<string, InFlight>
  /** Every peer met during this fetch. */
  readonly peers: ReadonlyMap<string, PeerState>
  /** Peers that failed, and until when they sit out (an entry stays, to count strikes). */
  readonly benched: ReadonlyMap<string, Bench>
  /** Peers that served a wrong block or broke the protocol: no longer sources for this package. */
  readonly banned: ReadonlySet<string>
  /** When a block last arrived, or a peer last said it holds more than before: the swarm is alive. */
  readonly lastGrowth: number
  /** How long a block asked for has taken to arrive lately (a moving average of {@link blockPace}), once one has. */
  readonly blockMs?: number
}

/** The planner's settings, from {@link fetchPlanConfig}. */
export interface FetchPlanConfig {
  /** The pause after a round in which no peer had anything to give (grows up to 8×). */
  readonly idleMs: number
  /** How often peers' holdings may be asked again, and how long a busy round waits: half of `idleMs`. */
  readonly refreshMs: number
  /** How long a block may be in flight to one peer that sends nothing before an idle other holder is asked too. */
  readonly hedgeMs: number
  /** How long a `have` to a peer that had nothing new may wait for a block (0: never). */
  readonly haveWaitMs: number
  /** How long the fetch waits for the swarm to bring blocks peers left to others before it asks again. */
  readonly patienceMs: number
  /** Most blocks named in one `have`. */
  readonly maxHaveCids: number
}

/** The planner's settings from a fetch's options (defaults {@link IDLE_MS}, {@link HEDGE_MS}, {@link HAVE_WAIT_MS}). */
export function fetchPlanConfig (options: { idleMs?: number, hedgeMs?: number, haveWaitMs?: number } = {}): FetchPlanConfig {
  const idleMs = options.idleMs ?? IDLE_MS
  const refreshMs = Math.max(1, Math.floor(idleMs / 2))
  return {
    idleMs,
    refreshMs,
    hedgeMs: options.hedgeMs ?? HEDGE_MS,
    haveWaitMs: options.haveWaitMs ?? HAVE_WAIT_MS,
    patienceMs: 8 * refreshMs,
    maxHaveCids: MAX_HAVE_CIDS
  }
}

/** One `have` to send: which blocks to ask `peer` about, and how long it may wait for one (0: answer at once). */
export interface HaveAsk {
  readonly peer: string
  readonly blocks: readonly string[]
  readonly waitMs: number
}

/** One `get` to send: at most {@link GET_BATCH} blocks from `peer`. */
export interface GetAsk {
  readonly peer: string
  readonly blocks: readonly string[]
}

/** What the fetch does once this round's requests are out. */
export type Pause =
  /** Requests are under way: wait for one to end (at most `refreshMs`). */
  | { readonly kind: 'busy' }
  /** Nothing to ask but blocks peers left to others, and the swarm still grows: wait for it (`waitMs`: until the patience ends, at most `refreshMs`). */
  | { readonly kind: 'await-swarm', readonly waitMs: number }
  /** Nothing to ask but blocks peers left to others, and the swarm stopped growing: forget who declined what, and ask again. */
  | { readonly kind: 'ask-again' }
  /** Nothing to do: pause (longer each idle round); a peer waiting to tell of a block may end the pause early. */
  | { readonly kind: 'idle', readonly wakeOnAnswer: boolean }

/** What a failure costs a peer: a misbehaving one is banned for this package; a failing one sits out, longer each time. */
export type Penalty =
  | { readonly banned: true }
  /** `again`: the peer already sat out; this failure is of a request sent before, not a new strike. */
  | { readonly banned: false, readonly bench: Bench, readonly ms: number, readonly again?: true }

/** Whether `peer` may be asked now: not banned, and not benched past `now`. */
export function isUsable (state: FetchState, peer: string, now: number): boolean {
  return !state.banned.has(peer) && (state.benched.get(peer)?.until ?? 0) <= now
}

/** The peers offered that may be asked now, each once, in the order offered. */
export function usablePeers (state: FetchState, offered: Iterable<string>, now: number): string[] {
  return [...new Set(offered)].filter(peer => isUsable(state, peer, now))
}

/** Whether any `get` request is out. */
export function requestsOut (state: FetchState): boolean {
  return [...state.peers.values()].some(p => p.gets > 0)
}

/** A peer that had nothing new for us, and may speak 1.1.0, is asked to tell us when it has something: no asking again and again. */
export function mayWait (peer: PeerState, config: FetchPlanConfig): boolean {
  return config.haveWaitMs > 0 && peer.quiet > 0 && peer.failures === 0 && peer.waits !== false
}

/**
 * Who to ask which blocks it holds, among the usable peers `current`: peers never asked,
 * peers not asked about blocks lacked since, and peers that had nothing for us once their
 * answer is old (a quiet peer less often, a failing one less still; one that waits for
 * blocks at once, since it answers only when it has one). At most
 * {@link MAX_HAVE_IN_FLIGHT} non-waiting asks are out at once, and a peer with a `have` out
 * is not asked again; those heard from longest ago go first. Blocks in flight are named
 * last (other holders matter only for a hedge), and blocks a peer left to others are not
 * named to it.
 */
export function planHaves (state: FetchState, current: readonly string[], now: number, config: FetchPlanConfig): HaveAsk[] {
  const unasked: string[] = []
  const asked: string[] = []
  for (const key of state.needed.keys()) (state.inflight.has(key) ? asked : unasked).push(key)
  const wanted = [...unasked, ...asked].slice(0, config.maxHaveCids)
  const peers = [...new Set(current)].map(key => state.peers.get(key)).filter(p => p != null)
  const asks: HaveAsk[] = []
  // a few peers at a time: in a large network every fetching peer asking every connected
  // peer several times a second costs more CPU than the blocks themselves (docs/benchmarks-analysis.md)
  let asking = peers.filter(p => p.asking && !p.waiting).length
  for (const p of [...peers].sort((a, b) => a.askedAt - b.askedAt)) {
    if (asking >= MAX_HAVE_IN_FLIGHT) break
    if (p.asking) continue
    // what it left to others is not asked of it again until we give up waiting for those
    const mine = p.declined.size === 0 ? wanted : wanted.filter(key => !p.declined.has(key))
    if (mine.length === 0) continue
    const age = now - p.askedAt
    const backoff = config.refreshMs * 2 ** Math.min(p.failures > 0 ? p.failures : Math.min(p.quiet, 2), 5)
    const holdsNone = !mine.some(key => p.holds.has(key))
    const waits = mayWait(p, config)
    const stale = p.askedAt === 0 ||
      (age >= Math.min(backoff, 50) && p.failures === 0 && mine.some(key => !p.askedFor.has(key))) ||
      (age >= backoff && holdsNone) ||
      (p.waits === true && waits && holdsNone)
    if (!stale) continue
    asks.push({ peer: p.key, blocks: mine, waitMs: waits ? config.haveWaitMs : 0 })
    // a peer asked to wait is cheap, and not counted as in flight
    if (!waits) asking++
  }
  return asks
}

/**
 * Which blocks to ask of whom, among the peers `available`: rarest first (fewest holders;
 * ties in random order), each block to its holder with the least planned so far among
 * those with room (`limit` requests of {@link GET_BATCH} blocks, less those out), a holder
 * that is not a seed ({@link PeerState.seed}) before a seed, ties at
 * random. Then, with room left, a block asked more than `hedgeMs` ago (or {@link HEDGE_BLOCKS}
 * block times, if longer) of one peer that has
 * sent no block since is asked of an idle other holder too: a stalling peer costs a delay,
 * not its whole timeout, while a busy one that keeps sending is left alone. A block is
 * never asked twice of one peer at once, nor of a third peer.
 */
export function planGets (state: FetchState, available: readonly string[], now: number, config: FetchPlanConfig, random: () => number): GetAsk[] {
  const peers = [...new Set(available)].map(key => state.peers.get(key)).filter(p => p != null)
  const load = new Map<PeerState, string[]>()
  const planned = (p: PeerState): number => load.get(p)?.length ?? 0
  const room = (p: PeerState): number => (p.limit - p.gets) * GET_BATCH - planned(p)
  const rarity = new Map<string, PeerState[]>()
  const hedges = new Map<string, PeerState[]>()
  // a stall is judged against how long blocks take now: on a loaded machine every peer is slow, and a hedge only doubles the load
  const hedgeAfter = Math.max(config.hedgeMs, HEDGE_BLOCKS * (state.blockMs ?? 0))
  for (const key of state.needed.keys()) {
    const asked = state.inflight.get(key)
    if (asked == null) {
      const holders = peers.filter(p => p.holds.has(key))
      if (holders.length > 0) rarity.set(key, holders)
    } else if (asked.from.size === 1 && now - Math.max(asked.since, state.peers.get([...asked.from][0] as string)?.lastBlockAt ?? 0) >= hedgeAfter) {
      const holders = peers.filter(p => p.holds.has(key) && p.gets === 0 && !asked.from.has(p.key))
      if (holders.length > 0) hedges.set(key, holders)
    }
  }
  for (const [key, holders] of hedges) rarity.set(key, holders)
  const order = [
    ...shuffle([...rarity.keys()].filter(key => !hedges.has(key)), random).sort((a, b) => (rarity.get(a)?.length ?? 0) - (rarity.get(b)?.length ?? 0)),
    ...hedges.keys()
  ]
  for (const key of order) {
    const withRoom = shuffle((rarity.get(key) ?? []).filter(p => room(p) > 0), random)
    // a holder that fetched it goes before a seed: the seed's uplink is the swarm's scarcest
    const holders = withRoom.some(p => p.seed !== true) ? withRoom.filter(p => p.seed !== true) : withRoom
    if (holders.length === 0) continue
    const best = holders.reduce((a, b) => planned(b) < planned(a) ? b : a)
    load.set(best, [...(load.get(best) ?? []), key])
  }
  const asks: GetAsk[] = []
  for (const [p, blocks] of load) {
    for (let i = 0; i < blocks.length; i += GET_BATCH) asks.push({ peer: p.key, blocks: blocks.slice(i, i + GET_BATCH) })
  }
  return asks
}

/**
 * What a failure costs a peer, given its bench so far: one that served a wrong block or
 * broke the protocol (`misbehaved`) is banned for this package; one that failed otherwise
 * (a timeout, a reset) sits out {@link BENCH_MS}, doubling with each strike up to 8×. A
 * failure while it sits out is no new strike: nothing is asked of a benched peer, so it is
 * a request sent before — when a stream breaks, every request out on it fails at once, and
 * one break had doubled the bench once per request.
 */
export function penalty (previous: Bench | undefined, misbehaved: boolean, now: number): Penalty {
  if (misbehaved) return { banned: true }
  if (previous != null && previous.until > now) return { banned: false, bench: previous, ms: previous.until - now, again: true }
  const strikes = (previous?.strikes ?? 0) + 1
  const ms = BENCH_MS * 2 ** Math.min(strikes - 1, 3)
  return { banned: false, bench: { until: now + ms, strikes }, ms }
}

/**
 * What to do once this round's requests are out (`launched`: it sent a `get`). A peer
 * waiting to tell us of a block is not work under way. With nothing under way and only
 * blocks peers left to others (to the peers they sent them to) to ask for: wait while the
 * swarm still grows, for those blocks to reach us through our own peers; once it stopped
 * growing for `patienceMs`, or once a block was left to others by every peer (none of
 * ours lacks it, so none will bring it), ask again.
 */
export function planPause (state: FetchState, launched: boolean, now: number, config: FetchPlanConfig): Pause {
  const peers = [...state.peers.values()]
  const busy = launched || peers.some(p => p.gets > 0 || (p.asking && !p.waiting))
  if (busy) return { kind: 'busy' }
  if (peers.some(p => p.declined.size > 0)) {
    // a block every peer left to others can reach us only through a peer that lacks it: there is none to wait for
    if (stuck(state, peers)) return { kind: 'ask-again' }
    const left = patience(state, config) - (now - state.lastGrowth)
    return left > 0 ? { kind: 'await-swarm', waitMs: Math.min(left, config.refreshMs) } : { kind: 'ask-again' }
  }
  return { kind: 'idle', wakeOnAnswer: peers.some(p => p.waiting) }
}

/**
 * How long the fetch waits, without growth, for blocks peers left to others: a few block
 * times, as this fetch has seen them lately, within {@link MIN_PATIENCE_MS} and
 * `config.patienceMs` (that bound alone before any block arrived, and when only seeds
 * declined: asked again, a seed sends a block the swarm would have brought). A block left to
 * another peer reaches us in a hop or two once it is there; in a cluster of fetchers that
 * all lack it and were all told to look elsewhere, nobody brings it, and this is how long
 * they wait before asking again — on a quick network a fraction of a second, not the
 * bound of a loaded one (docs/benchmarks-analysis.md, "The tail of a swarm").
 */
export function patience (state: FetchState, config: FetchPlanConfig): number {
  // a seed's uplink is the scarcest: what only seeds left to others is waited for to the bound
  if (state.blockMs == null || ![...state.peers.values()].some(p => p.declined.size > 0 && p.seed !== true)) return config.patienceMs
  return Math.min(config.patienceMs, Math.max(MIN_PATIENCE_MS, Math.round(PATIENCE_BLOCKS * state.blockMs)))
}

/** The moving average of how long a block takes to arrive, after one took `tookMs` (from its request, or from the block before it on the same request). */
export function blockPace (previous: number | undefined, tookMs: number): number {
  return previous == null ? tookMs : previous + (tookMs - previous) / 4
}

/** Whether a lacking block not in flight was left to others by every peer. */
function stuck (state: FetchState, peers: readonly PeerState[]): boolean {
  for (const key of state.needed.keys()) {
    if (!state.inflight.has(key) && peers.every(p => p.declined.has(key))) return true
  }
  return false
}

/** `items` in random order (Fisher–Yates, in place). */
function shuffle<T> (items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = items[i] as T
    items[i] = items[j] as T
    items[j] = t
  }
  return items
}
