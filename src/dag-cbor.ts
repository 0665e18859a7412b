/**
 * Decoding dag-cbor that comes from outside (peers, files). `@ipld/dag-cbor`'s decoder
 * assigns map keys to plain objects, so a map key `__proto__` is not a key: with an object
 * value it becomes the decoded object's prototype (a value then passes `instanceof
 * Uint8Array` and throws a TypeError when read, or shows fields it never carried), with any
 * other value it silently vanishes. Every decoder of outside dag-cbor goes through
 * {@link decodeDagCbor}, which refuses a `__proto__` key.
 *
 * @example
 * ```ts
 * try { value = decodeDagCbor(bytes) } catch (err) { throw new MalformedBeatError(`not dag-cbor: ${(err as Error).message}`) }
 * ```
 */
import * as dagCbor from '@ipld/dag-cbor'
import { equals } from 'uint8arrays/equals'
import { UpgossipError } from './errors.js'

/** Decoded dag-cbor had a map key `__proto__`, which a JavaScript object cannot hold as a key. */
export class PrototypeKeyError extends UpgossipError {
  static override name = 'PrototypeKeyError'
}

// the text string "__proto__" as strict dag-cbor writes it (length 9 in the initial byte; longer forms are refused)
const PROTO = Buffer.from([0x69, ...Buffer.from('__proto__')])

/** Decode dag-cbor bytes; throws what `@ipld/dag-cbor` throws, or {@link PrototypeKeyError}. */
export function decodeDagCbor<T = unknown> (bytes: Uint8Array): T {
  const value = dagCbor.decode<T>(bytes)
  // the string can also sit inside other strings or bytes (a block of a package): only when
  // it does is the value checked, by encoding it again — a lost or misplaced key changes the bytes
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(PROTO) && !encodesTo(value, bytes)) {
    throw new PrototypeKeyError('a map key "__proto__" is not allowed')
  }
  return value
}

function encodesTo (value: unknown, bytes: Uint8Array): boolean {
  try {
    return equals(dagCbor.encode(value), bytes)
  } catch {
    return false
  }
}
