/**
 * Trust rotations: a record that replaces one app's trust policy (publishers and
 * threshold) with a new one, signed by a threshold of the app's *current* publishers over
 * a domain-separated message of its own, so neither a release nor a revocation signature
 * can pass for one. Each rotation carries the sequence number of the policy it makes; a
 * peer takes only the next one (its own sequence + 1), so an older rotation replayed
 * later can never bring removed keys back.
 *
 * @example
 * ```ts
 * const signed = await signRotation({ app: 'kv', publishers: [bob.id, carol.id], threshold: 2, sequence: 1, issued: new Date().toISOString(), reason: 'alice left' }, [alice])
 * const { policy } = await verifyRotation(decodeRotation(encodeRotation(signed)), trust) // throws ThresholdNotMetError, RotationOutdatedError, …
 * ```
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { z } from 'zod'
import { MalformedInputError, PolicyRefusalError, TrustRefusalError } from '../errors.js'
import { describeSchemaIssues } from '../schema.js'
import { CODEC_DAG_CBOR } from '../store/index.js'
import type { PublisherKey } from './keys.js'
import { MAX_SIGNATURES } from './record.js'
import type { ReleaseSignature } from './record.js'
import { countTrustedSignatures, signingMessage, untrustedKeysNote } from './signing.js'
import { APP_NAME, PublishersSchema, SequenceSchema } from './trust.js'
import type { AppPolicy, TrustPolicy } from './trust.js'
import { ThresholdNotMetError, UntrustedAppError } from './verify.js'

/** Bytes that are not a well-formed signed rotation, or a record that breaks its bounds. */
export class MalformedRotationError extends MalformedInputError {
  static override name = 'MalformedRotationError'
}

/**
 * A rotation whose sequence is not above the app's current one: a replay of an older
 * rotation, or a different rotation to a sequence this peer already holds.
 */
export class RotationOutdatedError extends PolicyRefusalError {
  static override name = 'RotationOutdatedError'
  override get routine (): boolean { return true }
}

/** A rotation more than one step ahead: the ones between have not reached this peer yet (sync brings them). */
export class RotationOutOfOrderError extends TrustRefusalError {
  static override name = 'RotationOutOfOrderError'
  override get routine (): boolean { return true }
}

/** The domain tag of rotation signatures. */
export const ROTATION_SIGNING_DOMAIN = 'upgossip/rotation/v1\n'

/** Largest encoded signed rotation (64 keys and 64 signatures take about 12 KiB). */
export const MAX_ROTATION_BYTES = 64 * 1024

/** What a threshold of an app's current publishers sign to replace its policy. */
export interface RotationRecord {
  app: string
  /** The new publisher keys, `z6Mk…`, 1 to 64, distinct. */
  publishers: string[]
  /** How many of the new keys must sign from now on: 1 to `publishers.length`. */
  threshold: number
  /** The sequence of the policy this rotation makes: the current one + 1. */
  sequence: number
  /** ISO-8601 time of signing. */
  issued: string
  /** Why, for operators. */
  reason: string
}

/** A rotation with its signatures. */
export interface SignedRotation {
  record: RotationRecord
  signatures: ReleaseSignature[]
}

const RecordSchema = z.strictObject({
  app: z.string().regex(APP_NAME, { message: 'expected an app name' }),
  publishers: PublishersSchema,
  threshold: z.number().int().min(1),
  sequence: SequenceSchema.min(1),
  issued: z.iso.datetime({ offset: true }),
  reason: z.string().max(1000)
}).refine(r => r.threshold <= r.publishers.length, { message: 'threshold is larger than the number of publishers, so nothing could ever be admitted' })

const SignedSchema = z.strictObject({
  record: z.unknown(),
  signatures: z.array(z.strictObject({ key: z.string().min(1).max(128), sig: z.instanceof(Uint8Array).refine(s => s.byteLength === 64, { message: 'expected a 64-byte Ed25519 signature' }) })).max(MAX_SIGNATURES)
})

function plain (r: RotationRecord): RotationRecord {
  return { app: r.app, publishers: [...r.publishers], threshold: r.threshold, sequence: r.sequence, issued: r.issued, reason: r.reason }
}

/** Check a record against the schema and bounds; throws {@link MalformedRotationError}. */
export function parseRotationRecord (value: unknown): RotationRecord {
  const record = RecordSchema.safeParse(value)
  if (!record.success) throw new MalformedRotationError(describeSchemaIssues('rotation record', record.error))
  return record.data
}

/** The rotation's id: CIDv1 (dag-cbor, sha2-256) of its record. */
export async function rotationId (record: RotationRecord): Promise<CID> {
  return CID.createV1(CODEC_DAG_CBOR, await sha256.digest(dagCbor.encode(plain(record))))
}

/** The policy a rotation makes. */
export function rotationPolicy (record: RotationRecord): AppPolicy {
  return { publishers: [...record.publishers], threshold: record.threshold, sequence: record.sequence }
}

/**
 * Sign a rotation with every key (once per key), adding to the signatures it already
 * has; the record, and so the id, is unchanged. The record is checked first.
 */
export async function signRotation (rotation: RotationRecord | SignedRotation, keys: PublisherKey[]): Promise<SignedRotation> {
  const signed: SignedRotation = 'record' in rotation ? rotation : { record: rotation, signatures: [] }
  const record = parseRotationRecord(plain(signed.record))
  const message = signingMessage(await rotationId(record), ROTATION_SIGNING_DOMAIN)
  const signatures = [...signed.signatures]
  for (const key of keys) {
    const fresh = { key: key.id, sig: await key.privateKey.sign(message) }
    const at = signatures.findIndex(s => s.key === key.id)
    if (at >= 0) signatures[at] = fresh
    else signatures.push(fresh)
  }
  if (signatures.length > MAX_SIGNATURES) throw new MalformedRotationError(`a rotation carries at most ${MAX_SIGNATURES} signatures`)
  return { record, signatures }
}

/** The dag-cbor bytes of a signed rotation. */
export function encodeRotation (signed: SignedRotation): Uint8Array {
  return dagCbor.encode({ record: plain(signed.record), signatures: signed.signatures.map(s => ({ key: s.key, sig: s.sig })) })
}

/** Decode a signed rotation; throws {@link MalformedRotationError}. */
export function decodeRotation (bytes: Uint8Array): SignedRotation {
  if (bytes.byteLength > MAX_ROTATION_BYTES) throw new MalformedRotationError(`rotation of ${bytes.byteLength} bytes is over the ${MAX_ROTATION_BYTES}-byte limit`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new MalformedRotationError(`not a rotation (dag-cbor: ${(err as Error).message})`)
  }
  const outer = SignedSchema.safeParse(value)
  if (!outer.success) throw new MalformedRotationError(describeSchemaIssues('rotation', outer.error))
  return { record: parseRotationRecord(outer.data.record), signatures: outer.data.signatures }
}

/** True when a rotation makes exactly this policy (same keys, threshold and sequence). */
export function makesPolicy (record: RotationRecord, policy: AppPolicy): boolean {
  const keys = new Set(policy.publishers)
  return record.sequence === policy.sequence && record.threshold === policy.threshold &&
    record.publishers.length === keys.size && record.publishers.every(k => keys.has(k))
}

/**
 * Check a rotation against the peer's current trust policy: the app is trusted, the
 * rotation is the next one (sequence = current + 1), and at least the current threshold
 * of distinct current publishers signed it. Returns its id, the signers and the policy it
 * makes. Throws `UntrustedAppError`, {@link RotationOutdatedError},
 * {@link RotationOutOfOrderError} or `ThresholdNotMetError` (forged, so the sender's fault, when a
 * current key's signature does not verify).
 */
export async function verifyRotation (signed: SignedRotation, trust: TrustPolicy): Promise<{ id: CID, signers: string[], policy: AppPolicy }> {
  const { record } = signed
  const current = trust.forApp(record.app)
  if (current == null) throw new UntrustedAppError(`app "${record.app}" is not in the trust policy, so no rotation of it can be checked`)
  const id = await rotationId(record)
  if (record.sequence <= current.sequence) {
    throw new RotationOutdatedError(`the trust policy of ${record.app} is at sequence ${current.sequence}; this rotation to sequence ${record.sequence} (${id.toString()}) is older or replaced, and is refused`)
  }
  if (record.sequence > current.sequence + 1) {
    throw new RotationOutOfOrderError(`the trust policy of ${record.app} is at sequence ${current.sequence}; a rotation to sequence ${record.sequence} needs the ${record.sequence - current.sequence - 1} before it first (anti-entropy sync brings them)`)
  }
  const { valid, invalid, untrusted } = await countTrustedSignatures(id, ROTATION_SIGNING_DOMAIN, signed.signatures, key => trust.isPublisher(record.app, key))
  if (valid.length < current.threshold) {
    const notes = [untrustedKeysNote(untrusted, record.app, false), invalid > 0 ? `${invalid} invalid` : ''].filter(n => n !== '')
    throw new ThresholdNotMetError(`the rotation of ${record.app} to sequence ${record.sequence} has ${valid.length} valid signature${valid.length === 1 ? '' : 's'} by current publishers, ${current.threshold} required${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`, { forged: invalid > 0 })
  }
  return { id, signers: valid, policy: rotationPolicy(record) }
}
