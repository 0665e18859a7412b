/**
 * What the releases topic carries: dag-cbor envelopes `{ type, … }` — a signed release,
 * a revocation, a trust rotation or a rollout pause record, each as the bytes of its own
 * codec under a key named like its type. Never package blocks. A type this version does
 * not know is ignored, not rejected.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { decodeDagCbor } from '../dag-cbor.js'
import { PolicyRefusalError } from '../errors.js'
import { MalformedReleaseError, MAX_SIGNED_RELEASE_BYTES, decodeSignedRelease, encodeSignedRelease } from './record.js'
import type { SignedRelease } from './record.js'
import { decodePause, encodePause } from './pause.js'
import type { SignedPause } from './pause.js'
import { decodeRevocation, encodeRevocation } from './revocation.js'
import type { SignedRevocation } from './revocation.js'
import { decodeRotation, encodeRotation } from './rotation.js'
import type { SignedRotation } from './rotation.js'

/** A releases-topic message of a type this version does not know (a newer peer's): ignored, not rejected. */
export class UnknownMessageTypeError extends PolicyRefusalError {
  static override name = 'UnknownMessageTypeError'
  override get routine (): boolean { return true }
}

/** A message of the releases topic. */
export type ReleasesTopicMessage =
  | { type: 'release', signed: SignedRelease }
  | { type: 'revocation', revocation: SignedRevocation }
  | { type: 'rotation', rotation: SignedRotation }
  | { type: 'pause', pause: SignedPause }

/** Largest releases-topic message. */
export const MAX_RELEASES_TOPIC_MESSAGE = MAX_SIGNED_RELEASE_BYTES + 1024

/** Encode a releases-topic message. */
export function encodeReleasesTopicMessage (message: ReleasesTopicMessage): Uint8Array {
  if (message.type === 'revocation') return dagCbor.encode({ type: message.type, revocation: encodeRevocation(message.revocation) })
  if (message.type === 'rotation') return dagCbor.encode({ type: message.type, rotation: encodeRotation(message.rotation) })
  if (message.type === 'pause') return dagCbor.encode({ type: message.type, pause: encodePause(message.pause) })
  return dagCbor.encode({ type: message.type, release: encodeSignedRelease(message.signed) })
}

/** Decode a releases-topic message; throws {@link MalformedReleaseError} (or the inner codec's named error), {@link UnknownMessageTypeError}. */
export function decodeReleasesTopicMessage (bytes: Uint8Array): ReleasesTopicMessage {
  if (bytes.byteLength > MAX_RELEASES_TOPIC_MESSAGE) throw new MalformedReleaseError(`message of ${bytes.byteLength} bytes is over the ${MAX_RELEASES_TOPIC_MESSAGE}-byte limit`)
  let value: unknown
  try {
    value = decodeDagCbor(bytes)
  } catch (err) {
    throw new MalformedReleaseError(`releases-topic message is not dag-cbor: ${(err as Error).message}`)
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new MalformedReleaseError('releases-topic message is not a map')
  const { type, release, revocation, rotation, pause, ...rest } = value as Record<string, unknown>
  if (typeof type !== 'string') throw new MalformedReleaseError('releases-topic message has no type')
  if (type === 'pause') {
    if (Object.keys(rest).length > 0 || release !== undefined || revocation !== undefined || rotation !== undefined) throw new MalformedReleaseError('pause message has unknown keys')
    if (!(pause instanceof Uint8Array)) throw new MalformedReleaseError('pause message carries no pause record bytes')
    return { type, pause: decodePause(pause) }
  }
  if (type === 'rotation') {
    if (Object.keys(rest).length > 0 || release !== undefined || revocation !== undefined || pause !== undefined) throw new MalformedReleaseError('rotation message has unknown keys')
    if (!(rotation instanceof Uint8Array)) throw new MalformedReleaseError('rotation message carries no rotation bytes')
    return { type, rotation: decodeRotation(rotation) }
  }
  if (type === 'revocation') {
    if (Object.keys(rest).length > 0 || release !== undefined || rotation !== undefined || pause !== undefined) throw new MalformedReleaseError('revocation message has unknown keys')
    if (!(revocation instanceof Uint8Array)) throw new MalformedReleaseError('revocation message carries no revocation bytes')
    return { type, revocation: decodeRevocation(revocation) }
  }
  if (type !== 'release') throw new UnknownMessageTypeError(`releases-topic message type "${type.slice(0, 40)}" is not known to this version`)
  if (revocation !== undefined || rotation !== undefined || pause !== undefined) throw new MalformedReleaseError('release message has unknown keys')
  if (Object.keys(rest).length > 0) throw new MalformedReleaseError(`releases-topic message has unknown keys ${Object.keys(rest).slice(0, 5).join(', ')}`)
  if (!(release instanceof Uint8Array)) throw new MalformedReleaseError('releases-topic message carries no release bytes')
  return { type, signed: decodeSignedRelease(release) }
}
