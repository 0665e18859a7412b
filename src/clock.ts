/**
 * Injected time, so that expiry and schedules are testable without sleeping.
 *
 * @example
 * ```ts
 * const clock = fixedClock(Date.parse('2026-12-01T00:00:00Z'))
 * verifySignedRelease(signed, { trust, clock })
 * ```
 */

/** A source of the current time in milliseconds since the epoch. */
export interface Clock {
  now: () => number
}

/** The real wall clock. */
export const systemClock: Clock = { now: () => Date.now() }

/** A clock stopped at `ms`, for tests and for evaluating "as of" a moment. */
export function fixedClock (ms: number): Clock {
  return { now: () => ms }
}

/**
 * `base` shifted by `offsetMs`: a daemon whose clock is wrong by that much. The daemon
 * reads `UPGOSSIP_CLOCK_OFFSET` (a duration, `-` for the past) at start, for fault runs
 * such as `npm run chaos`; restarting it with another offset is a jump of its clock.
 */
export function offsetClock (base: Clock, offsetMs: number): Clock {
  if (offsetMs === 0) return base
  return { now: () => base.now() + offsetMs }
}
