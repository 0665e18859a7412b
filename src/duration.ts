/**
 * Durations as users write them everywhere: `500ms`, `20s`, `5m`, `1h`, `30d`.
 *
 * @example
 * ```ts
 * parseDuration('30d') // 2592000000
 * formatDuration(90_000) // '1m30s'
 * ```
 */
import { UpgossipError } from './errors.js'

/** A duration string could not be read. */
export class InvalidDurationError extends UpgossipError {
  static override name = 'InvalidDurationError'
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/

/** The number of milliseconds in a duration such as `20s`; throws {@link InvalidDurationError}. */
export function parseDuration (text: string): number {
  const match = DURATION.exec(text.trim())
  if (match == null) {
    throw new InvalidDurationError(`"${text}" is not a duration; write a number and a unit, e.g. 500ms, 20s, 5m, 1h or 30d`)
  }
  const ms = Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? Number.NaN)
  if (!Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) {
    throw new InvalidDurationError(`"${text}" is too long a duration`)
  }
  return Math.round(ms)
}

/** True when `text` is a duration that {@link parseDuration} accepts. */
export function isDuration (text: string): boolean {
  try {
    parseDuration(text)
    return true
  } catch {
    return false
  }
}

/** A short human form of a number of milliseconds: `1m30s`, `250ms`, `3d2h`. */
export function formatDuration (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  let rest = Math.round(ms / 1000)
  const parts: string[] = []
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / size)
    if (n > 0) parts.push(`${n}${unit}`)
    rest -= n * size
  }
  return parts.slice(0, 2).join('')
}
