/**
 * What every fuzz property shares: the one assertion ("a value of the right shape, or a
 * named upgossip error — never a TypeError, a RangeError or an anonymous Error"), and
 * arbitraries for what arrives from outside (dag-cbor values of any shape, CIDs of any
 * codec, hash and version).
 */
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { expect } from 'vitest'
import { RemoteNamedError, UpgossipError } from '../../../src/errors.js'

/** A remote error keeps the remote name, but only one that reads as an error name. */
const REMOTE_NAME = /^[A-Za-z_$][\w$]{0,63}$/

/**
 * Throw (failing the property) unless `err` is one of our named errors: an
 * {@link UpgossipError} of a subclass (so callers can branch on it), `name` and `code` set.
 * A {@link RemoteNamedError} carries the remote side's name, which must still be a name.
 */
export function expectNamedError (err: unknown): void {
  if (!(err instanceof UpgossipError)) {
    throw new Error(`an unnamed error escaped: ${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
  }
  expect(typeof err.code).toBe('string')
  expect(err.code).not.toBe('UpgossipError')
  expect(err.message.length).toBeGreaterThan(0)
  if (err instanceof RemoteNamedError) {
    expect(err.name).toMatch(REMOTE_NAME)
  } else {
    expect(err.name).not.toBe('Error')
    expect(err.name).not.toBe('UpgossipError')
    expect(err.name).toBe(err.code)
  }
}

/**
 * Run `fn`: its value goes to `check` (the right shape), and a throw must pass
 * {@link expectNamedError}. Returns what happened, so properties can count both.
 */
export async function valueOrNamedError<T> (fn: () => T | Promise<T>, check: (value: T) => void = () => {}): Promise<{ ok: true, value: T } | { ok: false, error: UpgossipError }> {
  let value: T
  try {
    value = await fn()
  } catch (err) {
    expectNamedError(err)
    return { ok: false, error: err as UpgossipError }
  }
  check(value)
  return { ok: true, value }
}

/** dag-cbor bytes of `value`, or undefined when dag-cbor cannot carry it (undefined, NaN…). */
export function cborOf (value: unknown): Uint8Array | undefined {
  try {
    return dagCbor.encode(value)
  } catch {
    return undefined
  }
}

/** JSON text of any value from these arbitraries (big integers as numbers, bytes as arrays), as a file would hold it. */
export function jsonText (value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => typeof v === 'bigint' ? Number(v) : v instanceof Uint8Array ? [...v] : v) ?? 'null'
}

/** `value` without keys whose value is undefined (how an optional field is left out). */
export function withoutUndefined (value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined))
}

const CODECS = [0x55, 0x70, 0x71, 0x0129, 0x00]
const HASHES = [0x12, 0x13, 0x00, 0xb220]

/** CIDs of every kind a hostile peer could send: v0 and v1, any codec, any hash (even one the bytes do not match). */
export const cidArb: fc.Arbitrary<CID> = fc.tuple(fc.constantFrom(...CODECS), fc.constantFrom(...HASHES), fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.boolean())
  .map(([codec, hash, digest, v0]) => {
    if (v0) return CID.createV0(createDigest(0x12, Uint8Array.from({ length: 32 }, (_, i) => digest[i % Math.max(1, digest.length)] ?? i)))
    return CID.createV1(codec, createDigest(hash, digest))
  })

/** Leaves of the dag-cbor data model, with the edges: big integers, -0, long strings, bytes, CIDs. */
export const cborLeafArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.constantFrom(0, -0, -1, 2 ** 53, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 1.5, 1e308, 5e-324),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.uint8Array({ maxLength: 80 }),
  cidArb
)

/** Map keys, with the ones JavaScript objects treat specially. */
export const mapKeyArb: fc.Arbitrary<string> = fc.oneof({ weight: 20, arbitrary: fc.string({ maxLength: 12 }) }, { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'length') })

/** Any dag-cbor value, nested a few levels: maps, lists and leaves. */
export const cborValueArb: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>(tie => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    cborLeafArb,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(mapKeyArb, tie('value'), { maxKeys: 5, noNullPrototype: true })
  )
})).value

/** A field of a structured message: usually `valid`, sometimes any value, sometimes left out. */
export function fieldArb<T> (valid: fc.Arbitrary<T>, weight = 4): fc.Arbitrary<T | unknown> {
  return fc.oneof({ weight, arbitrary: valid }, { weight: 1, arbitrary: cborValueArb }, { weight: 1, arbitrary: fc.constant(undefined) })
}

/** Usually null, one time in ten a value of `arb`: for an unexpected extra key. */
export function rarely<T> (arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb })
}

/** An optional field: as often left out as valid, rarely any other value. */
export function optionalFieldArb<T> (valid: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> {
  return fc.oneof({ weight: 10, arbitrary: valid }, { weight: 10, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: cborValueArb })
}

/** Strings that often break parsers: empty, long, control characters, lone surrogates, path tricks. */
export const nastyStringArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('', ' ', '\u0000', '\ud800', '../x', '/etc/passwd', 'a/../../b', 'C:\\x', '__proto__', 'constructor', 'toString', '%', '%zz', '😀', 'a'.repeat(300)),
  fc.string({ unit: 'binary', maxLength: 20 })
)
