/**
 * What a package fetch knows of one peer ({@link PeerState}), and how each thing the peer
 * does changes it: pure transitions that return a new state and leave the old one as it
 * was. `PackageFetch` applies them as answers come; the planner (fetch-planner.ts) reads
 * the result.
 *
 * @example
 * ```ts
 * let peer = haveAsked(newPeer('12D3…'), 0)
 * peer = haveAnswered(peer, ['bafy…'], [true]).peer
 * peer = haveSettled(peer, ['bafy…'], clock.now())
 * ```
 */

/** What the fetch knows of one peer, and how much it asks of it now. */
export interface PeerState {
  /** The peer id, as a string. */
  readonly key: string
  /** Lacking blocks it said it holds (and has not since answered `missing` for). */
  readonly holds: ReadonlySet<string>
  /** The blocks its last `have` answer covered. */
  readonly askedFor: ReadonlySet<string>
  /** When its last `have` answer (or failure) came; 0: never asked. */
  readonly askedAt: number
  /** A `have` to it is out. */
  readonly asking: boolean
  /** The `have` out asked it to wait for a block: cheap, and not counted as in flight. */
  readonly waiting: boolean
  /** Whether it waits when asked to (it speaks blocks 1.1.0); unknown until asked. */
  readonly waits?: boolean
  /** Consecutive failures, for backing off. */
  readonly failures: number
  /** Consecutive `have` answers with nothing new for us, for asking less often. */
  readonly quiet: number
  /** `get` requests out. */
  readonly gets: number
  /** How many `get` requests it may have out: one until it delivers, then up to {@link MAX_GETS_PER_PEER}. */
  readonly limit: number
  /** Blocks it said it holds but answered `missing` for (it left them to peers it sent them to). */
  readonly declined: ReadonlySet<string>
  /** When it last delivered a block (0: never): a peer that keeps delivering is busy, not stalled. */
  readonly lastBlockAt: number
  /**
   * It held every block asked of it in its first answer: most likely the publisher, or a
   * peer that had the package before this fetch began. Other holders go first
   * ({@link planGets}), so the seed's uplink sends each block about once. Unknown until it answered.
   */
  readonly seed?: boolean
}

/** `get` requests out to one peer once it has delivered; a new or failing peer gets one. */
export const MAX_GETS_PER_PEER = 4

/** A peer met for the first time: never asked, one request at a time. */
export function newPeer (key: string): PeerState {
  return { key, holds: new Set(), askedFor: new Set(), askedAt: 0, asking: false, waiting: false, failures: 0, gets: 0, limit: 1, declined: new Set(), quiet: 0, lastBlockAt: 0 }
}

/** A `have` went out to it, asking it to wait `waitMs` for a block (0: answer at once). */
export function haveAsked (peer: PeerState, waitMs: number): PeerState {
  return { ...peer, asking: true, waiting: waitMs > 0 }
}

/**
 * It answered which of `wanted` it holds (and, when asked to wait, whether it did): that is
 * now what it holds, less what it declined before. `grew`: it holds a block it did not
 * before — it is not quiet, and the swarm is alive.
 */
export function haveAnswered (peer: PeerState, wanted: readonly string[], answer: readonly boolean[], waited?: boolean): { peer: PeerState, grew: boolean } {
  const holds = new Set(wanted.filter((key, i) => answer[i] === true && !peer.declined.has(key)))
  const grew = [...holds].some(key => !peer.holds.has(key))
  return {
    peer: { ...peer, holds, quiet: grew ? 0 : peer.quiet + 1, failures: 0, seed: peer.seed ?? (wanted.length > 0 && wanted.every((_, i) => answer[i] === true)), ...(waited === undefined ? {} : { waits: waited }) },
    grew
  }
}

/** Its `have` about `wanted` ended (answered or failed) at `now`. */
export function haveSettled (peer: PeerState, wanted: readonly string[], now: number): PeerState {
  return { ...peer, askedFor: new Set(wanted), askedAt: now, asking: false, waiting: false }
}

/** A `get` went out to it. */
export function getLaunched (peer: PeerState): PeerState {
  return { ...peer, gets: peer.gets + 1 }
}

/** It delivered a block at `now`. */
export function blockDelivered (peer: PeerState, now: number): PeerState {
  return { ...peer, lastBlockAt: now }
}

/**
 * It delivered a block that links to these lacking blocks: a peer that holds a block most
 * likely holds what it links to, so it is asked for those at once rather than after another
 * round of "who holds what" (it answers `missing` if not) — except those it left to others.
 */
export function linksHeld (peer: PeerState, keys: readonly string[]): PeerState {
  // what it left to others stays left to them: asked again at once, it would send it
  const held = peer.declined.size === 0 ? keys : keys.filter(key => !peer.declined.has(key))
  if (held.length === 0) return peer
  return { ...peer, holds: new Set([...peer.holds, ...held]) }
}

/**
 * Its `get` for `asked` blocks ended with these `missing`: it left them to others, and is
 * not asked for them again until the fetch gives up waiting for them. One that delivered
 * any may have more requests out (slow start, doubling up to {@link MAX_GETS_PER_PEER}).
 */
export function getAnswered (peer: PeerState, asked: number, missing: readonly string[]): PeerState {
  let { holds, declined } = peer
  if (missing.length > 0) {
    const nowHolds = new Set(holds)
    const nowDeclined = new Set(declined)
    for (const key of missing) {
      nowHolds.delete(key)
      nowDeclined.add(key)
    }
    holds = nowHolds
    declined = nowDeclined
  }
  const limit = missing.length < asked ? Math.min(MAX_GETS_PER_PEER, peer.limit * 2) : peer.limit
  return { ...peer, holds, declined, limit }
}

/** A `get` to it ended, however. */
export function getSettled (peer: PeerState): PeerState {
  return { ...peer, gets: peer.gets - 1 }
}

/** It failed a request: what it said it holds no longer counts, it gets one request at a time, and it is asked less often. */
export function peerFailed (peer: PeerState): PeerState {
  return { ...peer, holds: new Set(), limit: 1, failures: peer.failures + 1 }
}

/** The fetch gave up waiting for blocks peers left to others: ask again what it holds (its answer counted as `refreshMs` old at least), and for everything. */
export function forgetDeclined (peer: PeerState, now: number, refreshMs: number): PeerState {
  return { ...peer, declined: new Set(), askedAt: Math.min(peer.askedAt, now - refreshMs), askedFor: new Set() }
}
