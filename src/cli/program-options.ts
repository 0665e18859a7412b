/** Option parsers shared by commands. */
import { InvalidArgumentError } from 'commander'
import { parseDuration } from '../duration.js'

/** Commander reducer for a repeatable option: `--key a --key b` → `['a', 'b']`. */
export function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** Commander parser for a duration option; a bad value is a usage error (exit 2). */
export function durationOption (value: string): number {
  try {
    return parseDuration(value)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
}

/** Commander parser for a positive duration (a lifetime, a timeout). */
export function positiveDurationOption (value: string): number {
  const ms = durationOption(value)
  if (ms <= 0) throw new InvalidArgumentError(`"${value}" must be longer than zero`)
  return ms
}

/** Commander parser for a whole number ≥ 1 (a count, a protocol version). */
export function positiveInteger (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a whole number of at least 1`)
  return n
}
