/**
 * Decoding dag-cbor that comes from outside (peers, files). `@ipld/dag-cbor`'s decoder
 * assigns map keys to plain objects, so a map key `__proto__` sets the decoded object's
 * prototype instead: a value can then pass `instanceof Uint8Array` and throw a TypeError
 * when read, or show fields it never carried. Every decoder of outside dag-cbor goes
 * through {@link decodeDagCbor}, which refuses such values.
 *
 * @example
 * ```ts
 * try { value = decodeDagCbor(bytes) } catch (err) { throw new MalformedBeatError(`not dag-cbor: ${(err as Error).message}`) }
 * ```
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { UpgossipError } from './errors.js'

/** Decoded dag-cbor with a map key that set an object's prototype (`__proto__`). */
export class PrototypeKeyError extends UpgossipError {
  static override name = 'PrototypeKeyError'
}

// what dag-cbor itself produces: maps, lists, byte strings, CIDs (of the CID class it decodes into)
const DECODED_PROTOTYPES = new Set<unknown>([
  Object.prototype,
  Array.prototype,
  Uint8Array.prototype,
  CID.prototype,
  Object.getPrototypeOf(dagCbor.decode(dagCbor.encode(CID.parse('bafkqaaa'))))
])

/** Decode dag-cbor bytes; throws what `@ipld/dag-cbor` throws, or {@link PrototypeKeyError}. */
export function decodeDagCbor<T = unknown> (bytes: Uint8Array): T {
  const value = dagCbor.decode<T>(bytes)
  // a loop, not recursion: the decoder accepts nesting deeper than a recursive walk could follow
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const next = pending.pop()
    if (next == null || typeof next !== 'object') continue
    const prototype = Object.getPrototypeOf(next)
    if (!DECODED_PROTOTYPES.has(prototype)) throw new PrototypeKeyError('a map key "__proto__" is not allowed')
    if (prototype === Object.prototype || prototype === Array.prototype) for (const v of Object.values(next)) pending.push(v)
  }
  return value
}
