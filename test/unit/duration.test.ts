import { describe, expect, it } from 'vitest'
import { InvalidDurationError, formatDuration, parseDuration } from '../../src/duration.js'

describe('durations', () => {
  it('reads every unit', () => {
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('20s')).toBe(20_000)
    expect(parseDuration('5m')).toBe(300_000)
    expect(parseDuration('1h')).toBe(3_600_000)
    expect(parseDuration('30d')).toBe(2_592_000_000)
    expect(parseDuration('1.5s')).toBe(1500)
  })

  it('refuses what is not a duration, with a named error', () => {
    for (const bad of ['', '10', 's', '-1s', '1 week', '1w', '1e3s', '99999999999999999999d']) {
      expect(() => parseDuration(bad), bad).toThrow(InvalidDurationError)
    }
  })

  it('formats short human forms', () => {
    expect(formatDuration(250)).toBe('250ms')
    expect(formatDuration(90_000)).toBe('1m30s')
    expect(formatDuration(86_400_000 + 7_200_000 + 5000)).toBe('1d2h')
  })
})
