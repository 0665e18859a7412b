/**
 * Ranks: every peer's place in the order of a rollout, hash(peer id, release id), so
 * every peer computes the same order for a release without talking, and the order
 * changes from one release to the next.
 */
import { createHash } from 'node:crypto'

/** A number in [0, 1) drawn from the peer and release ids. */
export function rank (peerId: string, releaseId: string): number {
  const digest = createHash('sha256').update(`upgossip/rank/v1\n${peerId}\n${releaseId}`).digest()
  // 48 bits are plenty and stay exact in a double
  return digest.readUIntBE(0, 6) / 2 ** 48
}

/** How many peers a fraction allows: `max(1, floor(fraction × known))`. */
export function countFromFraction (fraction: number, known: number): number {
  return Math.max(1, Math.floor(fraction * known))
}

/** Peer ids sorted by rank for a release, lowest first (ties by id). */
export function byRank (peerIds: string[], releaseId: string): string[] {
  return peerIds.map(id => ({ id, r: rank(id, releaseId) })).sort((a, b) => a.r - b.r || a.id.localeCompare(b.id)).map(x => x.id)
}
