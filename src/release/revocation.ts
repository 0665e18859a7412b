/**
 * Revocations: a record naming a release that must no longer run, signed by a
 * threshold of the app's publishers (the same trust policy as releases), over a
 * domain-separated message of its own, so a release signature can never pass for one.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { z } from 'zod'
import { decodeDagCbor } from '../dag-cbor.js'
import { MalformedInputError } from '../errors.js'
import { describeSchemaIssues, safeParse } from '../schema.js'
import { CODEC_DAG_CBOR, toCid } from '../store/index.js'
import type { PublisherKey } from './keys.js'
import { MAX_SIGNATURES } from './record.js'
import type { ReleaseSignature } from './record.js'
import { countTrustedSignatures, signingMessage, untrustedKeysNote } from './signing.js'
import type { TrustPolicy } from './trust.js'
import { ThresholdNotMetError, UntrustedAppError } from './verify.js'

/** Bytes that are not a well-formed signed revocation. */
export class MalformedRevocationError extends MalformedInputError {
  static override name = 'MalformedRevocationError'
}

/** The domain tag of revocation signatures. */
export const REVOCATION_SIGNING_DOMAIN = 'upgossip/revocation/v1\n'

/** What publishers sign to revoke a release. */
export interface RevocationRecord {
  app: string
  /** The revoked release's id. */
  release: CID
  /** ISO-8601 time of signing. */
  issued: string
  /** Why, for operators. */
  reason: string
}

/** A revocation with its signatures. */
export interface SignedRevocation {
  record: RevocationRecord
  signatures: ReleaseSignature[]
}

const RecordSchema = z.strictObject({
  app: z.string().min(1).max(64),
  release: z.custom<CID>(v => CID.asCID(v) != null, { message: 'expected a CID' }).transform(v => toCid(v)),
  issued: z.iso.datetime({ offset: true }),
  reason: z.string().max(1000)
})
const SignedSchema = z.strictObject({
  record: z.unknown(),
  signatures: z.array(z.strictObject({ key: z.string().min(1).max(128), sig: z.instanceof(Uint8Array).refine(s => s.byteLength === 64, { message: 'expected a 64-byte Ed25519 signature' }) })).max(MAX_SIGNATURES)
})

function plain (r: RevocationRecord): RevocationRecord {
  return { app: r.app, release: r.release, issued: r.issued, reason: r.reason }
}

/** The revocation's id: CIDv1 (dag-cbor, sha2-256) of its record. */
export async function revocationId (record: RevocationRecord): Promise<CID> {
  return CID.createV1(CODEC_DAG_CBOR, await sha256.digest(dagCbor.encode(plain(record))))
}

/** Sign a revocation of `release` with every key. */
export async function signRevocation (record: RevocationRecord, keys: PublisherKey[]): Promise<SignedRevocation> {
  const id = await revocationId(record)
  const signatures: ReleaseSignature[] = []
  for (const key of keys) {
    if (signatures.some(s => s.key === key.id)) continue
    signatures.push({ key: key.id, sig: await key.privateKey.sign(signingMessage(id, REVOCATION_SIGNING_DOMAIN)) })
  }
  return { record: plain(record), signatures }
}

/** The dag-cbor bytes of a signed revocation. */
export function encodeRevocation (signed: SignedRevocation): Uint8Array {
  return dagCbor.encode({ record: plain(signed.record), signatures: signed.signatures.map(s => ({ key: s.key, sig: s.sig })) })
}

/** Decode a signed revocation; throws {@link MalformedRevocationError}. */
export function decodeRevocation (bytes: Uint8Array): SignedRevocation {
  if (bytes.byteLength > 64 * 1024) throw new MalformedRevocationError('revocation is over the 64 KiB limit')
  let value: unknown
  try {
    value = decodeDagCbor(bytes)
  } catch (err) {
    throw new MalformedRevocationError(`not a revocation (dag-cbor: ${(err as Error).message})`)
  }
  const outer = safeParse(SignedSchema, value)
  if (!outer.success) throw new MalformedRevocationError(describeSchemaIssues('revocation', outer.error))
  const record = safeParse(RecordSchema, outer.data.record)
  if (!record.success) throw new MalformedRevocationError(describeSchemaIssues('revocation record', record.error))
  return { record: record.data, signatures: outer.data.signatures }
}

/**
 * Check a revocation against the trust policy: the app is trusted and at least
 * `threshold` distinct trusted keys signed it. Returns the valid signers; throws
 * `UntrustedAppError` or `ThresholdNotMetError` (forged, so the sender's fault, when a trusted key's
 * signature does not verify).
 */
export async function verifyRevocation (signed: SignedRevocation, trust: TrustPolicy): Promise<{ id: CID, signers: string[] }> {
  const policy = trust.forApp(signed.record.app)
  if (policy == null) throw new UntrustedAppError(`app "${signed.record.app}" is not in the trust policy`)
  const id = await revocationId(signed.record)
  const { valid, invalid, untrusted } = await countTrustedSignatures(id, REVOCATION_SIGNING_DOMAIN, signed.signatures, key => trust.isPublisher(signed.record.app, key))
  if (valid.length < policy.threshold) {
    const notes = [untrustedKeysNote(untrusted, signed.record.app), invalid > 0 ? `${invalid} invalid` : ''].filter(n => n !== '')
    throw new ThresholdNotMetError(`the revocation of ${signed.record.release.toString()} has ${valid.length} valid signature${valid.length === 1 ? '' : 's'} by trusted keys, ${policy.threshold} required${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`, { forged: invalid > 0 })
  }
  return { id, signers: valid }
}
