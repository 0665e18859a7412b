import { describe, expect, it } from 'vitest'
import { Freshness } from '../../src/daemon/index.js'

function clockAt (start: number): { now: () => number, set: (t: number) => void } {
  let t = start
  return { now: () => t, set: (x: number) => { t = x } }
}

describe('freeze detection', () => {
  it('a peer that never hears anyone is frozen once freezeAfter has passed since the start', () => {
    const clock = clockAt(1_000_000)
    const f = new Freshness(clock, 60_000)
    expect(f.status()).toMatchObject({ frozen: false, lastStatus: null, lastRelease: null, freezeAfterMs: 60_000 })
    clock.set(1_060_000)
    expect(f.status().frozen).toBe(false)
    clock.set(1_060_001)
    expect(f.status()).toMatchObject({ frozen: true, reason: 'no other peer heard since the start, 1m ago' })
  })

  it('a beat or a release clears it; silence longer than freezeAfter after them sets it again', () => {
    const clock = clockAt(0)
    const f = new Freshness(clock, 10_000)
    clock.set(50_000)
    expect(f.status().frozen).toBe(true)
    f.heardStatus()
    expect(f.status()).toMatchObject({ frozen: false, lastStatus: new Date(50_000).toISOString() })
    clock.set(55_000)
    f.heardRelease()
    clock.set(64_000)
    // the release at 55 s is the latest news: 9 s of silence
    expect(f.status().frozen).toBe(false)
    clock.set(65_001)
    expect(f.status()).toMatchObject({ frozen: true, lastRelease: new Date(55_000).toISOString() })
    expect(f.status().reason).toMatch(/^no status or release heard from any peer for 10s/)
  })
})
