/**
 * Named errors of the daemon's own (refusals of operator input, configuration trouble).
 */
import { UpgossipError } from '../errors.js'

/** The data directory belongs to another app than the one asked for. */
export class AppMismatchError extends UpgossipError {
  static override name = 'AppMismatchError'
}

/** The --app-config file is unreadable. */
export class AppConfigInvalidError extends UpgossipError {
  static override name = 'AppConfigInvalidError'
}

/** The control API's port is taken. */
export class ControlPortInUseError extends UpgossipError {
  static override name = 'ControlPortInUseError'
}

/** The `--metrics` address could not be listened on (in use, not an address of this host, not allowed). */
export class MetricsListenFailedError extends UpgossipError {
  static override name = 'MetricsListenFailedError'
}

/** A release named by id or APP@VERSION is not known here. */
export class UnknownReleaseError extends UpgossipError {
  static override name = 'UnknownReleaseError'
}

/** `POST /call` with a protocol version this peer's app cannot take. */
export class ProtocolCallError extends UpgossipError {
  static override name = 'ProtocolCallError'
}

/** A bundle given to `publish` or `--install` was not admitted. */
export class PublishRefusedError extends UpgossipError {
  static override name = 'PublishRefusedError'
}
