import { describe, expect, it } from 'vitest'
import { FAULT_KINDS, LOOPBACK_KINDS, makePlan, seededRandom } from '../../scripts/chaos/plan.ts'
import type { Strike } from '../../scripts/chaos/plan.ts'
import { clockOffsetFromEnv } from '../../src/cli/commands/daemon-clock.js'

const NETNS_KINDS = FAULT_KINDS.filter(k => k !== 'lossy-link')

describe('the chaos plan', () => {
  it('is the same for the same seed, and another for another seed', () => {
    const a = makePlan({ seed: 7, peers: 4, minutes: 2, kinds: NETNS_KINDS })
    const b = makePlan({ seed: 7, peers: 4, minutes: 2, kinds: NETNS_KINDS })
    const c = makePlan({ seed: 8, peers: 4, minutes: 2, kinds: NETNS_KINDS })
    expect(b).toEqual(a)
    expect(c.strikes).not.toEqual(a.strikes)
  })

  it('strikes at least 5 faults of at least 3 kinds within the window, for many seeds and both modes', () => {
    for (const kinds of [NETNS_KINDS, LOOPBACK_KINDS]) {
      for (let seed = 0; seed < 200; seed++) {
        const plan = makePlan({ seed, peers: 4, minutes: 2, kinds })
        expect(plan.strikes.length, `seed ${seed}`).toBeGreaterThanOrEqual(5)
        expect(new Set(plan.strikes.map(s => s.kind)).size, `seed ${seed}`).toBeGreaterThanOrEqual(3)
        for (const s of plan.strikes) {
          expect(kinds).toContain(s.kind)
          expect(s.at).toBeGreaterThanOrEqual(0)
          expect(s.at).toBeLessThan(plan.windowMs)
        }
      }
    }
  })

  it('never strikes a peer while an earlier fault on it still holds, nor more than two at once', () => {
    for (let seed = 0; seed < 200; seed++) {
      const plan = makePlan({ seed, peers: 3, minutes: 5, kinds: NETNS_KINDS })
      const ends = (s: Strike): number => s.at + s.holdMs
      plan.strikes.forEach((s, i) => {
        const earlier = plan.strikes.slice(0, i)
        expect(earlier.filter(e => e.target === s.target && ends(e) > s.at), `seed ${seed}: ${JSON.stringify(s)}`).toEqual([])
        expect(earlier.filter(e => ends(e) > s.at).length).toBeLessThan(2)
      })
    }
  })

  it('publishes 2.0.0 and 3.0.0 and revokes 3.0.0 in that order', () => {
    const plan = makePlan({ seed: 1, peers: 4, minutes: 30, kinds: LOOPBACK_KINDS })
    expect(plan.milestones.map(m => `${m.action} ${m.major}`)).toEqual(['publish 2', 'publish 3', 'revoke 3'])
    expect(plan.strikes.length).toBeGreaterThanOrEqual(100)
  })

  it('refuses a run that could not strike 3 kinds', () => {
    expect(() => makePlan({ seed: 1, peers: 4, minutes: 2, kinds: ['kill-daemon', 'pause'] })).toThrow(RangeError)
  })

  it('draws from a seeded generator in [0, 1)', () => {
    const r = seededRandom(42)
    const xs = Array.from({ length: 1000 }, () => r())
    expect(xs.every(x => x >= 0 && x < 1)).toBe(true)
    expect(seededRandom(42)()).toBe(xs[0])
  })
})

describe('UPGOSSIP_CLOCK_OFFSET', () => {
  it('shifts the daemon clock by a duration, backwards with a minus', () => {
    expect(Math.abs(clockOffsetFromEnv('2h').now() - Date.now() - 7_200_000)).toBeLessThan(1000)
    expect(Math.abs(clockOffsetFromEnv('-90m').now() - Date.now() + 5_400_000)).toBeLessThan(1000)
    expect(Math.abs(clockOffsetFromEnv(undefined).now() - Date.now())).toBeLessThan(1000)
    expect(Math.abs(clockOffsetFromEnv('').now() - Date.now())).toBeLessThan(1000)
  })

  it('refuses what is not a duration, naming the variable', () => {
    expect(() => clockOffsetFromEnv('soon')).toThrow(/UPGOSSIP_CLOCK_OFFSET=soon/)
  })
})
