/**
 * Fuzzing the trust-rotation decoder (bytes from gossip, sync, `POST /rotate` and the
 * data directory): never a crash or an unnamed error; whatever decodes keeps the bounds;
 * a rotation changed by one byte never verifies as a different policy.
 */
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { UpgossipError } from '../../../src/errors.js'
import {
  MalformedRotationError, TrustPolicy, decodeReleasesTopicMessage, decodeRotation, encodeReleasesTopicMessage, encodeRotation, generatePublisherKey,
  rotationId, signRotation, verifyRotation
} from '../../../src/release/index.js'
import type { PublisherKey, SignedRotation } from '../../../src/release/index.js'
import { RUNS } from './runs.js'

function onlyNamedErrors (fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof UpgossipError)) throw new Error(`unnamed error escaped: ${String(err)}`)
    expect(err.name).not.toBe('Error')
    expect(err.message.length).toBeGreaterThan(0)
  }
}

let keys: PublisherKey[]
let signer: PublisherKey
let good: SignedRotation
let trust: TrustPolicy

beforeAll(async () => {
  keys = await Promise.all(Array.from({ length: 70 }, async () => await generatePublisherKey()))
  signer = keys[0] as PublisherKey
  trust = TrustPolicy.parse({ apps: { kv: { publishers: [signer.id], threshold: 1 } } })
  good = await signRotation({ app: 'kv', publishers: keys.slice(1, 4).map(k => k.id), threshold: 2, sequence: 1, issued: '2026-11-27T10:00:00Z', reason: 'fuzz' }, [signer])
})

describe('the rotation decoder', () => {
  it('takes arbitrary bytes without a crash, alone and inside a releases-topic message', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), bytes => {
      onlyNamedErrors(() => decodeRotation(bytes))
      onlyNamedErrors(() => decodeReleasesTopicMessage(dagCbor.encode({ type: 'rotation', rotation: bytes })))
    }), { numRuns: RUNS })
  })

  it('takes arbitrary dag-cbor values without a crash', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), value => {
      let bytes: Uint8Array
      try {
        bytes = dagCbor.encode({ record: value, signatures: [] })
      } catch {
        return // not encodable (e.g. -0)
      }
      onlyNamedErrors(() => decodeRotation(bytes))
      onlyNamedErrors(() => decodeRotation(dagCbor.encode(value ?? null)))
    }), { numRuns: RUNS })
  })

  it('decodes near-valid records only within the bounds, and re-encodes them to the same id', async () => {
    // mostly valid parts, so that both sides of the bounds are reached
    const mostly = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>): fc.Arbitrary<T | U> => fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: other, weight: 1 })
    const keyArb = mostly(fc.nat(69).map(i => (keys[i] as PublisherKey).id), fc.string({ maxLength: 60 }))
    const recordArb = fc.record({
      app: mostly(fc.constant('kv'), fc.string({ maxLength: 70 })),
      publishers: mostly(fc.array(keyArb, { minLength: 1, maxLength: 8 }), fc.array(keyArb, { minLength: 60, maxLength: 70 })),
      threshold: mostly(fc.integer({ min: 1, max: 3 }), fc.oneof(fc.integer({ min: -1, max: 9 }), fc.integer({ min: 60, max: 72 }), fc.double())),
      sequence: mostly(fc.integer({ min: -1, max: 1000 }), fc.oneof(fc.constant(Number.MAX_SAFE_INTEGER + 2), fc.double())),
      issued: mostly(fc.constant('2026-11-27T10:00:00Z'), fc.string({ maxLength: 30 })),
      reason: mostly(fc.string({ maxLength: 40 }), fc.string({ minLength: 990, maxLength: 1010 })),
      extra: mostly(fc.constant(undefined), fc.jsonValue({ maxDepth: 1 }))
    }).map(({ extra, ...record }) => extra === undefined ? record : { ...record, extra })
    let decodedCount = 0
    let refusedCount = 0
    await fc.assert(fc.asyncProperty(recordArb, async record => {
      let bytes: Uint8Array
      try {
        bytes = dagCbor.encode({ record, signatures: good.signatures })
      } catch {
        return // not encodable (NaN, -0)
      }
      let decoded: SignedRotation
      try {
        decoded = decodeRotation(bytes)
      } catch (err) {
        expect(err).toBeInstanceOf(MalformedRotationError)
        refusedCount++
        return
      }
      decodedCount++
      const r = decoded.record
      expect(r.publishers.length).toBeGreaterThanOrEqual(1)
      expect(r.publishers.length).toBeLessThanOrEqual(64)
      expect(new Set(r.publishers).size).toBe(r.publishers.length)
      expect(Number.isInteger(r.threshold) && r.threshold >= 1 && r.threshold <= r.publishers.length).toBe(true)
      expect(Number.isSafeInteger(r.sequence) && r.sequence >= 1).toBe(true)
      expect('extra' in record).toBe(false)
      const again = decodeRotation(encodeRotation(decoded))
      expect((await rotationId(again.record)).equals(await rotationId(decoded.record))).toBe(true)
    }), { numRuns: RUNS })
    // the property looked at both sides
    expect(decodedCount).toBeGreaterThan(0)
    expect(refusedCount).toBeGreaterThan(0)
  })

  it('a signed rotation with one byte changed is refused by name, or verifies as the very same policy', async () => {
    const bytes = encodeRotation(good)
    const wrapped = encodeReleasesTopicMessage({ type: 'rotation', rotation: good })
    const id = await rotationId(good.record)
    await fc.assert(fc.asyncProperty(fc.nat(bytes.byteLength - 1), fc.integer({ min: 1, max: 255 }), fc.boolean(), async (at, mask, inEnvelope) => {
      const changed = Uint8Array.from(inEnvelope ? wrapped : bytes)
      const i = at % changed.byteLength
      changed[i] = (changed[i] as number) ^ mask
      let decoded: SignedRotation
      try {
        if (inEnvelope) {
          const message = decodeReleasesTopicMessage(changed)
          if (message.type !== 'rotation') return
          decoded = message.rotation
        } else {
          decoded = decodeRotation(changed)
        }
      } catch (err) {
        expect(err).toBeInstanceOf(UpgossipError)
        return
      }
      try {
        await verifyRotation(decoded, trust)
      } catch (err) {
        expect(err).toBeInstanceOf(UpgossipError)
        return
      }
      expect((await rotationId(decoded.record)).equals(id)).toBe(true)
    }), { numRuns: RUNS })
  })
})
