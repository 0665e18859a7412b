/**
 * A full disk, named: `ENOSPC` (no space left) and `EDQUOT` (quota exceeded) from any
 * write become {@link DiskFullError}, so callers can tell "this peer has no room" from
 * "the input was bad" and pause instead of blaming a peer or a release.
 */
import { UpgossipError } from '../errors.js'

/** A write failed because the file system holding the data directory is full (or over quota). */
export class DiskFullError extends UpgossipError {
  static override name = 'DiskFullError'
}

const CODES = new Set(['ENOSPC', 'EDQUOT'])

/**
 * True when `err` is a full disk: a {@link DiskFullError}, a Node error with code
 * `ENOSPC` or `EDQUOT`, or an error whose message carries one of those codes (libraries
 * such as blockstore-fs wrap the original error into a message).
 */
export function isDiskFull (err: unknown): boolean {
  if (err == null || typeof err !== 'object') return false
  if ((err as Error).name === DiskFullError.name) return true
  const code = (err as NodeJS.ErrnoException).code
  if (typeof code === 'string' && CODES.has(code)) return true
  const message = (err as Error).message
  return typeof message === 'string' && /\b(ENOSPC|EDQUOT)\b/.test(message)
}
