import { describe, expect, it } from 'vitest'
import { BUSY_SAMPLES, BusySamples } from '../../src/host/busy-samples.js'

describe('BusySamples', () => {
  it('says when the last stretch above a bound ended', () => {
    const busy = new BusySamples()
    expect(busy.quietSince(0)).toBeUndefined()
    busy.push(10, 1)
    busy.push(20, 0)
    busy.push(30, 3)
    busy.push(40, 2)
    busy.push(50, 0)
    expect(busy.quietSince(0)).toBe(50)
    expect(busy.quietSince(1)).toBe(50)
    expect(busy.quietSince(2)).toBe(40)
    expect(busy.quietSince(3)).toBeUndefined()
  })

  it('a stretch still going ended at its own last sample', () => {
    const busy = new BusySamples()
    busy.push(10, 0)
    busy.push(20, 5)
    expect(busy.quietSince(1)).toBe(20)
  })

  it('keeps only the newest samples once the ring wrapped', () => {
    const busy = new BusySamples()
    busy.push(1, 9)
    for (let i = 0; i < BUSY_SAMPLES - 1; i++) busy.push(100 + i, 0)
    // the busy sample is still the oldest kept
    expect(busy.quietSince(0)).toBe(100)
    busy.push(5000, 0)
    expect(busy.quietSince(0)).toBeUndefined()
    busy.push(6000, 4)
    busy.push(7000, 0)
    expect(busy.quietSince(0)).toBe(7000)
  })
})
