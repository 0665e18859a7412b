/**
 * The base of every error upgossip raises on purpose.
 *
 * Each condition has its own subclass whose `name` (and `code`) callers branch on,
 * while `message` tells a user what was wrong and what to do about it.
 *
 * @example
 * ```ts
 * try { await verifyBundle(bytes, { trust }) } catch (err) {
 *   if (err instanceof UpgossipError) console.error(`${err.name}: ${err.message}`)
 * }
 * ```
 */
export class UpgossipError extends Error {
  static override name = 'UpgossipError'

  /** A machine-readable code; equals the class name. */
  readonly code: string

  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = new.target.name
  }

  /** The error as plain JSON, for IPC, the control API and `--json` output. */
  toJSON (): { name: string, code: string, message: string } {
    return { name: this.name, code: this.code, message: this.message }
  }
}

// what a remote error's name may be: it ends up in logs, metrics labels and `name` checks
const REMOTE_NAME = /^[A-Za-z_$][\w$]{0,63}$/

/**
 * An error reported by the other side of a boundary (a daemon, a remote app): it keeps
 * the remote error's name, so users read the real condition — when that name reads as
 * an error name (otherwise the class's own), and with a message even when the other side
 * sent none.
 */
export class RemoteNamedError extends UpgossipError {
  static override name = 'RemoteNamedError'

  constructor (remoteName: string, message: string) {
    super(message === '' ? 'the other side reported an error without a message' : message)
    if (REMOTE_NAME.test(remoteName)) this.name = remoteName
  }
}

/** True when `err` is an {@link UpgossipError} (or looks like one after crossing a boundary). */
export function isUpgossipError (err: unknown): err is UpgossipError {
  return err instanceof UpgossipError
}
