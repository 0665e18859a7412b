/**
 * The release record and the signed release, as dag-cbor. The release id is the
 * CIDv1 (dag-cbor, sha2-256) of the record; signatures sit beside the record, so
 * co-signing never changes the id.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import semver from 'semver'
import { z } from 'zod'
import { decodeDagCbor } from '../dag-cbor.js'
import { MalformedInputError } from '../errors.js'
import { parseManifest } from '../package/index.js'
import type { Manifest } from '../package/index.js'
import { describeSchemaIssues, safeParse } from '../schema.js'
import { CODEC_DAG_CBOR, toCid } from '../store/index.js'

/** Bytes that are not a well-formed release record or signed release. */
export class MalformedReleaseError extends MalformedInputError {
  static override name = 'MalformedReleaseError'
}

/** Largest encoded signed release accepted (the record embeds the manifest, ≤ 64 KiB). */
export const MAX_SIGNED_RELEASE_BYTES = 128 * 1024
/** Most signatures one signed release may carry. */
export const MAX_SIGNATURES = 64

/** What a publisher signs: one version of one app. */
export interface ReleaseRecord {
  app: string
  version: string
  /** The release id this one follows; advisory history, not enforced. */
  previous: CID | null
  /** The package root CID. */
  package: CID
  /** Total byte length of every block of the package DAG. */
  size: number
  /** Equal to the package's `upgossip.json`. */
  manifest: unknown
  /** ISO-8601 time of signing. */
  issued: string
  /** ISO-8601 time after which peers no longer admit it. */
  expires: string
}

/** One publisher's signature over a release id. */
export interface ReleaseSignature {
  /** The publisher's public key, `z6Mk…`. */
  key: string
  /** Ed25519 signature (64 bytes) over {@link signingMessage}. */
  sig: Uint8Array
}

/** A record with the signatures collected for it. */
export interface SignedRelease {
  record: ReleaseRecord
  signatures: ReleaseSignature[]
}

const cidSchema = z.custom<CID>(v => CID.asCID(v) != null, { message: 'expected a CID' }).transform(v => toCid(v))
const isoTime = z.iso.datetime({ offset: true })

const RecordSchema = z.strictObject({
  app: z.string().min(1).max(64),
  version: z.string().refine(v => semver.valid(v) === v, { message: 'expected a semver version' }),
  previous: cidSchema.nullable(),
  package: cidSchema,
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  manifest: z.record(z.string(), z.unknown()),
  issued: isoTime,
  expires: isoTime
})

const SignedReleaseSchema = z.strictObject({
  record: z.unknown(),
  signatures: z.array(z.strictObject({
    key: z.string().min(1).max(128),
    sig: z.instanceof(Uint8Array).refine(s => s.byteLength === 64, { message: 'expected a 64-byte Ed25519 signature' })
  })).max(MAX_SIGNATURES)
})

/** Validate a decoded record (schema, manifest, manifest agreeing with app and version). */
export function parseRecord (value: unknown): ReleaseRecord & { manifestParsed: Manifest } {
  const result = safeParse(RecordSchema, value)
  if (!result.success) throw new MalformedReleaseError(describeSchemaIssues('release record', result.error))
  const record = result.data
  let manifestParsed: Manifest
  try {
    manifestParsed = parseManifest(record.manifest, 'release record manifest')
  } catch (err) {
    throw new MalformedReleaseError((err as Error).message, { cause: err })
  }
  if (manifestParsed.app !== record.app || manifestParsed.version !== record.version) {
    throw new MalformedReleaseError(`release record says ${record.app}@${record.version} but its manifest says ${manifestParsed.app}@${manifestParsed.version}`)
  }
  if (Date.parse(record.expires) <= Date.parse(record.issued)) {
    throw new MalformedReleaseError('release record expires before it was issued')
  }
  return { ...record, manifestParsed }
}

/** The dag-cbor bytes of a record. */
export function encodeRecord (record: ReleaseRecord): Uint8Array {
  const { app, version, previous, package: pkg, size, manifest, issued, expires } = record
  return dagCbor.encode({ app, version, previous, package: pkg, size, manifest, issued, expires })
}

/** The release id: CIDv1 (dag-cbor, sha2-256) of the record. */
export async function releaseId (record: ReleaseRecord): Promise<CID> {
  return CID.createV1(CODEC_DAG_CBOR, await sha256.digest(encodeRecord(record)))
}

/** The dag-cbor bytes of a signed release. */
export function encodeSignedRelease (signed: SignedRelease): Uint8Array {
  const { app, version, previous, package: pkg, size, manifest, issued, expires } = signed.record
  return dagCbor.encode({
    record: { app, version, previous, package: pkg, size, manifest, issued, expires },
    signatures: signed.signatures.map(s => ({ key: s.key, sig: s.sig }))
  })
}

/** The CID of a signed release's block (the root of a release bundle). */
export async function signedReleaseCid (signed: SignedRelease): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = encodeSignedRelease(signed)
  return { cid: CID.createV1(CODEC_DAG_CBOR, await sha256.digest(bytes)), bytes }
}

/** Decode and validate a signed release; throws {@link MalformedReleaseError}. */
export function decodeSignedRelease (bytes: Uint8Array): SignedRelease {
  if (bytes.byteLength > MAX_SIGNED_RELEASE_BYTES) {
    throw new MalformedReleaseError(`signed release is ${bytes.byteLength} bytes, more than the ${MAX_SIGNED_RELEASE_BYTES}-byte limit`)
  }
  let value: unknown
  try {
    value = decodeDagCbor(bytes)
  } catch (err) {
    throw new MalformedReleaseError(`not a signed release (dag-cbor: ${(err as Error).message})`)
  }
  const result = safeParse(SignedReleaseSchema, value)
  if (!result.success) throw new MalformedReleaseError(describeSchemaIssues('signed release', result.error))
  const { manifestParsed: _, ...record } = parseRecord(result.data.record)
  return { record, signatures: result.data.signatures }
}
