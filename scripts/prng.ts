/**
 * A small seeded PRNG (mulberry32), floats in [0, 1): the same seed gives the same
 * sequence, so a simulated rollout or a chaos plan can be replayed from its seed.
 */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
