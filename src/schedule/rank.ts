/**
 * Ranks: every peer's place in the order of a rollout, hash(peer id, release id), so
 * every peer computes the same order for a release without talking, and the order
 * changes from one release to the next.
 */
import { createHash } from 'node:crypto'

/** Most ranks remembered: a network's peers for a few releases. */
const MAX_REMEMBERED = 100_000
const remembered = new Map<string, Map<string, number>>()
let rememberedCount = 0

/**
 * A number in [0, 1) drawn from the peer and release ids. Remembered: every decision
 * of a canary or rolling rule ranks every peer in view, and in a network of thousands a
 * hash per peer per decision was the schedule's largest cost (docs/benchmarks-analysis.md).
 */
export function rank (peerId: string, releaseId: string): number {
  let ofRelease = remembered.get(releaseId)
  const known = ofRelease?.get(peerId)
  if (known != null) return known
  const digest = createHash('sha256').update(`upgossip/rank/v1\n${peerId}\n${releaseId}`).digest()
  // 48 bits are plenty and stay exact in a double
  const value = digest.readUIntBE(0, 6) / 2 ** 48
  if (rememberedCount >= MAX_REMEMBERED) {
    remembered.clear()
    rememberedCount = 0
    ofRelease = undefined
  }
  if (ofRelease == null) {
    ofRelease = new Map()
    remembered.set(releaseId, ofRelease)
  }
  ofRelease.set(peerId, value)
  rememberedCount++
  return value
}

/** How many peers a fraction allows: `max(1, floor(fraction × known))`. */
export function countFromFraction (fraction: number, known: number): number {
  return Math.max(1, Math.floor(fraction * known))
}

/** Peer ids sorted by rank for a release, lowest first (ties by id). */
export function byRank (peerIds: string[], releaseId: string): string[] {
  return peerIds.map(id => ({ id, r: rank(id, releaseId) })).sort((a, b) => a.r !== b.r ? a.r - b.r : a.id.localeCompare(b.id)).map(x => x.id)
}

/** The last set of peers ranked for each release, and their order. */
const rankings = new Map<string, { ids: Set<string>, order: string[] }>()

/**
 * {@link byRank}, remembered for the last set of peers ranked for a release: the peers in
 * view change rarely, and a canary rule ranks them all at every decision.
 */
export function rankedIds (peerIds: string[], releaseId: string): string[] {
  const last = rankings.get(releaseId)
  if (last?.ids.size === peerIds.length && peerIds.every(id => last.ids.has(id))) return last.order
  const order = byRank(peerIds, releaseId)
  if (rankings.size >= 16) rankings.delete(rankings.keys().next().value as string)
  rankings.set(releaseId, { ids: new Set(peerIds), order })
  return order
}
