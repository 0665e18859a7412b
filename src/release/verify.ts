/**
 * Admission checks. {@link verifySignedRelease} checks what the record alone proves
 * (trust, threshold of distinct valid signatures, expiry, version floor, size limit);
 * {@link verifyReleasePackage} checks the package against the record once its blocks
 * are held (manifest equal, size equal, every block matching its CID).
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import semver from 'semver'
import { equals } from 'uint8arrays/equals'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import { ContentRefusalError, PolicyRefusalError, TrustRefusalError } from '../errors.js'
import { parseManifest, readPackageManifest, walkPackageBlocks } from '../package/index.js'
import type { BlockStore } from '../store/index.js'
import { releaseId } from './record.js'
import type { ReleaseRecord, SignedRelease } from './record.js'
import { checkSignature, untrustedKeysNote } from './signing.js'
import type { TrustPolicy } from './trust.js'

/** The release's app is not in the trust policy. */
export class UntrustedAppError extends PolicyRefusalError {
  static override name = 'UntrustedAppError'
  override get routine (): boolean { return true }
}

/**
 * The release's manifest `calls` an app that is not in the trust policy: this peer ignores
 * that app's beats and releases, so it could never find a peer of it to call.
 */
export class UntrustedCallError extends PolicyRefusalError {
  static override name = 'UntrustedCallError'
}

/** Fewer distinct trusted keys signed the release than the policy's threshold. */
export class ThresholdNotMetError extends TrustRefusalError {
  static override name = 'ThresholdNotMetError'
}

/** The release's `expires` time has passed. */
export class ReleaseExpiredError extends PolicyRefusalError {
  static override name = 'ReleaseExpiredError'
}

/** The release is not newer than the version this peer already runs or admitted. */
export class VersionNotNewerError extends PolicyRefusalError {
  static override name = 'VersionNotNewerError'
}

/** The release declares a package larger than this peer accepts. */
export class ReleaseTooLargeError extends PolicyRefusalError {
  static override name = 'ReleaseTooLargeError'
}

/** The record's `manifest` differs from the package's `upgossip.json`. */
export class ManifestMismatchError extends ContentRefusalError {
  static override name = 'ManifestMismatchError'
}

/** The record's `size` differs from the package's summed block lengths. */
export class SizeMismatchError extends ContentRefusalError {
  static override name = 'SizeMismatchError'
}

/** Options for {@link verifySignedRelease}. */
export interface VerifyReleaseOptions {
  trust: TrustPolicy
  clock?: Clock
  /** The version this peer runs: the release must be newer. */
  floor?: string
  /** Largest package `size` accepted, in bytes. */
  maxSize?: number
}

/** What a successful check found. */
export interface VerifiedRelease {
  id: CID
  record: ReleaseRecord
  /** Distinct trusted keys with a valid signature. */
  signers: string[]
  threshold: number
}

/** Default limit on a package's declared size (1 GiB). */
export const DEFAULT_MAX_PACKAGE_SIZE = 1024 * 1024 * 1024

/** How each signature of a release fares against the policy. */
export async function classifySignatures (id: CID, signed: SignedRelease, trust: TrustPolicy): Promise<{ valid: string[], untrusted: string[], invalid: string[], duplicate: number }> {
  const valid = new Set<string>()
  const untrusted = new Set<string>()
  const invalid = new Set<string>()
  let duplicate = 0
  const seen = new Set<string>()
  for (const signature of signed.signatures) {
    if (seen.has(signature.key)) duplicate++
    seen.add(signature.key)
    if (!trust.isPublisher(signed.record.app, signature.key)) {
      untrusted.add(signature.key)
    } else if (await checkSignature(id, signature)) {
      valid.add(signature.key)
    } else {
      invalid.add(signature.key)
    }
  }
  for (const key of valid) invalid.delete(key)
  return { valid: [...valid], untrusted: [...untrusted], invalid: [...invalid], duplicate }
}

/** Check what the signed record alone proves; throws a named error for the first failed check. */
export async function verifySignedRelease (signed: SignedRelease, options: VerifyReleaseOptions): Promise<VerifiedRelease> {
  const { record } = signed
  const clock = options.clock ?? systemClock
  const id = await releaseId(record)
  const policy = options.trust.forApp(record.app)
  if (policy == null) throw new UntrustedAppError(`app "${record.app}" is not in the trust policy; add its publishers to the trust file`)
  const { valid, untrusted, invalid, duplicate } = await classifySignatures(id, signed, options.trust)
  if (valid.length < policy.threshold) {
    const notes = [
      untrustedKeysNote(untrusted, record.app),
      invalid.length > 0 ? `${invalid.length} invalid` : '',
      duplicate > 0 ? `${duplicate} repeated by the same key` : ''
    ].filter(n => n !== '')
    throw new ThresholdNotMetError(`${record.app}@${record.version} has ${valid.length} valid signature${valid.length === 1 ? '' : 's'} by trusted keys, ${policy.threshold} required${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`, { forged: invalid.length > 0 })
  }
  const untrustedCalls = Object.keys(parseManifest(record.manifest, 'release record manifest').calls ?? {}).filter(app => options.trust.forApp(app) == null)
  if (untrustedCalls.length > 0) {
    const names = untrustedCalls.map(app => `"${app}"`).join(', ')
    throw new UntrustedCallError(`${record.app}@${record.version} calls ${names}, not in this peer's trust policy: it would never see a peer of ${untrustedCalls.length === 1 ? 'that app' : 'those apps'} to call; add ${untrustedCalls.length === 1 ? 'its' : 'their'} publishers to the trust file`)
  }
  const now = clock.now()
  if (Date.parse(record.expires) <= now) {
    throw new ReleaseExpiredError(`${record.app}@${record.version} expired at ${record.expires}; ask the publisher for a fresh release`)
  }
  if (options.floor != null && !semver.gt(record.version, options.floor)) {
    throw new VersionNotNewerError(`${record.app}@${record.version} is not newer than ${options.floor}, which this peer already runs`)
  }
  const maxSize = options.maxSize ?? DEFAULT_MAX_PACKAGE_SIZE
  if (record.size > maxSize) {
    throw new ReleaseTooLargeError(`${record.app}@${record.version} declares ${record.size} bytes, more than the ${maxSize}-byte limit`)
  }
  return { id, record, signers: valid, threshold: policy.threshold }
}

/**
 * Check a held package against its record: every block present and matching its CID,
 * `size` equal to the summed block lengths, manifest equal to `upgossip.json`.
 */
export async function verifyReleasePackage (record: ReleaseRecord, store: BlockStore): Promise<{ blocks: CID[] }> {
  const { cids, size } = await walkPackageBlocks(record.package, store)
  if (size !== record.size) {
    throw new SizeMismatchError(`package blocks add up to ${size} bytes but the record declares ${record.size}`)
  }
  const { json } = await readPackageManifest(record.package, store)
  if (!equals(dagCbor.encode(json), dagCbor.encode(record.manifest))) {
    throw new ManifestMismatchError("the record's manifest differs from the package's upgossip.json")
  }
  return { blocks: cids }
}
