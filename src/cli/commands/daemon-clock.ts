/**
 * The daemon's clock, shifted for fault runs: `UPGOSSIP_CLOCK_OFFSET=-90m` (a duration,
 * `-` for the past) makes the daemon's own time — schedules, expiry, beats, the event log —
 * run that far off the system clock. Test-only, like `UPGOSSIP_FAULT`; `npm run chaos`
 * restarts a daemon with an offset to jump its clock.
 *
 * @example
 * ```ts
 * clockOffsetFromEnv('2h').now() - Date.now() // ≈ 7_200_000
 * ```
 */
import { offsetClock, systemClock } from '../../clock.js'
import type { Clock } from '../../clock.js'
import { parseDuration } from '../../duration.js'
import { UsageError } from '../output.js'

/** The system clock shifted by `offset` (unset or empty: the system clock itself); a bad value is a usage error naming the variable. */
export function clockOffsetFromEnv (offset: string | undefined): Clock {
  if (offset == null || offset.trim() === '') return systemClock
  const text = offset.trim()
  const negative = text.startsWith('-')
  try {
    const ms = parseDuration(negative ? text.slice(1) : text)
    return offsetClock(systemClock, negative ? -ms : ms)
  } catch (err) {
    throw new UsageError(`UPGOSSIP_CLOCK_OFFSET=${offset}: ${(err as Error).message} (a leading - for the past)`)
  }
}
