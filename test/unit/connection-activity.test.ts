/**
 * What the `idle` rule measures for an app whose wire is TCP (src/host/connection-activity.ts):
 * an open connection counts only when bytes move on it, at the time they do.
 */
import { describe, expect, it } from 'vitest'
import { ConnectionActivity } from '../../src/host/index.js'

describe('connection activity', () => {
  it('an open connection that carries nothing does not count; one that carries bytes counts from then on', () => {
    let now = 0
    const activity = new ConnectionActivity(() => now)
    const quiet = activity.track()
    now = 10_000
    // never busy by this measure: the host counts from its own start
    expect(activity.quietFor(0)).toBeUndefined()
    const talking = activity.track()
    talking.moved(100)
    expect(activity.quietFor(0)).toBe(0)
    now = 16_000
    expect(activity.quietFor(0)).toBe(6000)
    // zero bytes is no activity
    quiet.moved(0)
    expect(activity.quietFor(0)).toBe(6000)
    quiet.moved(1)
    expect(activity.quietFor(0)).toBe(0)
  })

  it('with maxInFlight N, bytes on N connections at once still count as idle, on N + 1 not', () => {
    let now = 0
    const activity = new ConnectionActivity(() => now)
    const [a, b, c] = [activity.track(), activity.track(), activity.track()]
    now = 1000
    a.moved(1)
    now = 3000
    b.moved(1)
    now = 4000
    c.moved(1)
    now = 9000
    expect(activity.quietFor(0)).toBe(5000) // since c's last bytes
    expect(activity.quietFor(1)).toBe(6000) // since b's: only c moved bytes after it
    expect(activity.quietFor(2)).toBe(8000) // since a's
    expect(activity.quietFor(3)).toBeUndefined()
  })

  it('a closed connection\'s last bytes still count; closing itself moves nothing', () => {
    let now = 0
    const activity = new ConnectionActivity(() => now)
    const conn = activity.track()
    now = 2000
    conn.moved(10)
    now = 5000
    conn.close()
    now = 7000
    expect(activity.quietFor(0)).toBe(5000)
    // a connection closed without a byte never counted
    const silent = activity.track()
    silent.close()
    expect(activity.quietFor(0)).toBe(5000)
  })
})
