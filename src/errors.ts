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

/**
 * Whose fault a refused input is; it decides what happens to the input and its sender.
 * - `sender`: malformed or forged; rejected, and a gossip sender loses score.
 * - `content`: a package that contradicts its signed record; the release is refused for good.
 * - `policy`: not admissible on this peer (an app it does not trust, expired, too large,
 *   not newer, revoked, outdated); ignored, not held against the sender (others may admit it).
 * - `trust`: not admissible under the trust policy in force; a rotation adopted later may admit it.
 */
export type Fault = 'sender' | 'content' | 'policy' | 'trust'

/** Options of a {@link RefusalError}. */
export interface RefusalOptions extends ErrorOptions {
  /** A signature that claims a trusted key does not verify: the input is forged. */
  forged?: boolean
}

/**
 * The base of every error that refuses an input from outside (a release, a revocation, a
 * rotation, a package, a block). The subclass says whose fault it is ({@link Fault}); a
 * forged input is always the sender's.
 *
 * @example
 * ```ts
 * throw new ThresholdNotMetError('kv@2.0.0 has 0 valid signatures …', { forged: true })
 * if (err instanceof RefusalError && err.fault === 'sender') return 'reject'
 * ```
 */
export class RefusalError extends UpgossipError {
  static override name = 'RefusalError'

  /** A signature claiming a trusted key does not verify. */
  readonly forged: boolean

  constructor (message: string, options?: RefusalOptions) {
    super(message, options)
    this.forged = options?.forged === true
  }

  /** Whose fault the refused input is (a forged input is always the sender's). */
  get fault (): Fault {
    return this.forged ? 'sender' : this.kind
  }

  /** The fault of an input of this kind that is not forged; subclasses say theirs. */
  protected get kind (): Fault {
    return 'sender'
  }

  /** A refusal that ordinary anti-entropy meets all the time (already past it, not ours, not yet): worth an info line, not a warning. */
  get routine (): boolean {
    return false
  }
}

/** The input is malformed: the sender's fault. */
export class MalformedInputError extends RefusalError {
  static override name = 'MalformedInputError'
}

/** A package that contradicts its signed record. */
export class ContentRefusalError extends RefusalError {
  static override name = 'ContentRefusalError'
  protected override get kind (): Fault { return 'content' }
}

/** Not admissible under this peer's policy; not the sender's fault. */
export class PolicyRefusalError extends RefusalError {
  static override name = 'PolicyRefusalError'
  protected override get kind (): Fault { return 'policy' }
}

/** Not admissible under the trust policy in force; a later rotation may admit it. */
export class TrustRefusalError extends RefusalError {
  static override name = 'TrustRefusalError'
  protected override get kind (): Fault { return 'trust' }
}

/** How an error refused an input: its fault, or `undefined` when the error is not a refusal (this peer's own trouble). */
export function faultOf (err: unknown): Fault | undefined {
  return err instanceof RefusalError ? err.fault : undefined
}
