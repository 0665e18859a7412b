/**
 * Protocol ids and topic names, built and parsed in one place:
 * `/upgossip/<name>/<version>` for streams, `upgossip/<network>/<topic>` for gossip.
 */
import { UpgossipError } from '../errors.js'

/** A protocol id or topic that is not ours or not well formed. */
export class InvalidProtocolIdError extends UpgossipError {
  static override name = 'InvalidProtocolIdError'
}

/** Block exchange. */
export const BLOCKS_PROTOCOL = '/upgossip/blocks/1.0.0'
/** Block exchange where a `have` may wait for a block to arrive (1.0.0's messages, plus `wait`). */
export const BLOCKS_WAIT_PROTOCOL = '/upgossip/blocks/1.1.0'
/** Block exchange on one long-lived stream per peer pair: want-lists, pushed announcements, blocks as frames (docs/wire.md). */
export const BLOCKS_SESSION_PROTOCOL = '/upgossip/blocks/2.0.0'
/** Anti-entropy: signed releases newer than the asker's version. */
export const SYNC_PROTOCOL = '/upgossip/sync/1.0.0'

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/

/** `/upgossip/<name>/<version>`. */
export function protocolId (name: string, version: string): string {
  if (!NAME.test(name) || !/^[0-9A-Za-z.+-]{1,32}$/.test(version)) throw new InvalidProtocolIdError(`bad protocol name or version: ${name} ${version}`)
  return `/upgossip/${name}/${version}`
}

/** The parts of `/upgossip/<name>/<version>`; throws {@link InvalidProtocolIdError}. */
export function parseProtocolId (id: string): { name: string, version: string } {
  const match = /^\/upgossip\/([a-z0-9][a-z0-9._-]{0,62})\/([0-9A-Za-z.+-]{1,32})$/.exec(id)
  if (match == null) throw new InvalidProtocolIdError(`"${id.slice(0, 100)}" is not an upgossip protocol id`)
  return { name: match[1] as string, version: match[2] as string }
}

const APP_BYTES_PROTOCOL = /^\/upgossip\/app-tcp\/([a-z0-9][a-z0-9._-]{0,62})\/([1-9][0-9]{0,6})$/

/** The byte-stream protocol of a `wire: "tcp"` app at protocol version `version`: `/upgossip/app-tcp/<app>/<version>`. */
export function appBytesProtocolId (app: string, version: number): string {
  if (!NAME.test(app) || !Number.isInteger(version) || version < 1 || version > 9_999_999) throw new InvalidProtocolIdError(`bad app or protocol version: ${app} ${version}`)
  return `/upgossip/app-tcp/${app}/${version}`
}

/** The app and version of a byte-stream protocol id, or undefined when it is not one. */
export function parseAppBytesProtocolId (id: string): { app: string, version: number } | undefined {
  const match = APP_BYTES_PROTOCOL.exec(id)
  if (match == null) return undefined
  return { app: match[1] as string, version: Number(match[2]) }
}

/** The streamed HTTP protocol of a `wire: "http"` app at its native protocol version `version`: `/upgossip/app-http/<app>/<version>`. */
export function appHttpProtocolId (app: string, version: number): string {
  if (!NAME.test(app) || !Number.isInteger(version) || version < 1 || version > 9_999_999) throw new InvalidProtocolIdError(`bad app or protocol version: ${app} ${version}`)
  return `/upgossip/app-http/${app}/${version}`
}

/** Network names: the `<network>` part of topics. */
export function assertNetworkName (network: string): void {
  if (!NAME.test(network)) throw new InvalidProtocolIdError(`"${network}" is not a network name: use lowercase letters, digits, ".", "_" or "-"`)
}

/** The topic of signed releases, revocations and trust rotations. */
export function releasesTopic (network: string): string {
  assertNetworkName(network)
  return `upgossip/${network}/releases`
}

/** The topic of status beats. */
export function statusTopic (network: string): string {
  assertNetworkName(network)
  return `upgossip/${network}/status`
}
