import { describe, expect, it } from 'vitest'
import { NO_VERSION, VersionTimeline, countVersions } from '../../src/daemon/version-timeline.js'

const T0 = Date.parse('2026-12-01T03:00:00Z')

describe('version timeline', () => {
  it('adds a sample only when the counts change, with growing sequence numbers', () => {
    const timeline = new VersionTimeline()
    expect(timeline.record(T0, { '1.0.0': 3 })?.seq).toBe(1)
    expect(timeline.record(T0 + 1000, { '1.0.0': 3 })).toBeUndefined()
    expect(timeline.record(T0 + 2000, { '1.0.0': 2, '2.0.0': 1 })).toEqual({ seq: 2, time: '2026-12-01T03:00:02.000Z', versions: { '1.0.0': 2, '2.0.0': 1 } })
    // a version that disappears is a change too
    expect(timeline.record(T0 + 3000, { '2.0.0': 1 })?.seq).toBe(3)
    expect(timeline.toJSON().samples.map(s => s.seq)).toEqual([1, 2, 3])
  })

  it('keeps at most its capacity, dropping the oldest, in order', () => {
    const timeline = new VersionTimeline({ capacity: 5 })
    for (let i = 1; i <= 12; i++) timeline.record(T0 + i * 1000, { '1.0.0': i })
    const samples = timeline.samples()
    expect(samples.map(s => s.seq)).toEqual([8, 9, 10, 11, 12])
    expect(samples.map(s => s.versions['1.0.0'])).toEqual([8, 9, 10, 11, 12])
    expect(timeline.last()?.seq).toBe(12)
    expect(timeline.toJSON().capacity).toBe(5)
    // a repeat of the newest is still recognised after wrapping
    expect(timeline.record(T0 + 13_000, { '1.0.0': 12 })).toBeUndefined()
  })

  it('counts peers per version, those without one under "none"', () => {
    expect(countVersions([{ version: '1.0.0' }, { version: null }, { version: '1.0.0' }])).toEqual({ '1.0.0': 2, [NO_VERSION]: 1 })
  })
})
