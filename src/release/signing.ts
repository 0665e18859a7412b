/**
 * Signing a release id, and merging signature sets collected for one id.
 * Each signature covers a domain-separated message, so a signature made for anything
 * else (a peer record, a revocation, a trust rotation) can never be replayed as a release
 * signature.
 */
import type { CID } from 'multiformats/cid'
import { UpgossipError } from '../errors.js'
import { publicKeyFromString } from './keys.js'
import type { PublisherKey } from './keys.js'
import { releaseId } from './record.js'
import type { ReleaseSignature, SignedRelease } from './record.js'

/** Two signed releases that were to be merged are for different records. */
export class ReleaseIdMismatchError extends UpgossipError {
  static override name = 'ReleaseIdMismatchError'
}

/** The domain tag of release signatures. */
export const RELEASE_SIGNING_DOMAIN = 'upgossip/release/v1\n'

/** The bytes a publisher signs for a release: the domain tag followed by the release id's bytes. */
export function signingMessage (id: CID, domain = RELEASE_SIGNING_DOMAIN): Uint8Array {
  const tag = new TextEncoder().encode(domain)
  const message = new Uint8Array(tag.byteLength + id.bytes.byteLength)
  message.set(tag, 0)
  message.set(id.bytes, tag.byteLength)
  return message
}

/**
 * The distinct keys `trusted` accepts whose signature over `id` under `domain` verifies
 * (and those signatures, one per key), how many signatures by such keys did not verify (a
 * forgery: the sender's fault), and the distinct keys that signed but are not trusted
 * (named when the threshold is not met). Revocations, trust rotations and pause records
 * count their signatures with it.
 */
export async function countTrustedSignatures (id: CID, domain: string, signatures: ReleaseSignature[], trusted: (key: string) => boolean): Promise<{ valid: string[], invalid: number, untrusted: string[], kept: ReleaseSignature[] }> {
  const valid = new Set<string>()
  const untrusted = new Set<string>()
  const kept: ReleaseSignature[] = []
  let invalid = 0
  const message = signingMessage(id, domain)
  for (const s of signatures) {
    if (!trusted(s.key)) untrusted.add(s.key)
    if (!trusted(s.key) || valid.has(s.key)) continue
    let ok = false
    try {
      ok = await publicKeyFromString(s.key).verify(message, s.sig)
    } catch {}
    if (ok) {
      valid.add(s.key)
      kept.push(s)
    } else invalid++
  }
  return { valid: [...valid], invalid, untrusted: [...untrusted], kept }
}

/**
 * A publisher key as messages show it: enough of both ends to find it in a trust file or
 * in `keygen`'s output (every Ed25519 key starts with the same `z6Mk`).
 */
export function shortKey (key: string): string {
  return key.length <= 24 ? key : `${key.slice(0, 12)}…${key.slice(-8)}`
}

/**
 * The keys that signed but are not trusted for `app`, named (at most three, shortened),
 * with what to do if they should be (unless `advice` is false): `1 by a key not trusted for kv: z6MkhQLEV2f1…2oNUM6Yt (…)`.
 */
export function untrustedKeysNote (keys: readonly string[], app: string, advice = true): string {
  if (keys.length === 0) return ''
  const named = keys.slice(0, 3).map(shortKey).join(', ')
  const more = keys.length > 3 ? ` and ${keys.length - 3} more` : ''
  const one = keys.length === 1
  const note = `${keys.length} by ${one ? 'a key' : 'keys'} not trusted for ${app}: ${named}${more}`
  if (!advice) return note
  return `${note}; if ${one ? 'it is a publisher' : 'they are publishers'} of ${app}, add ${one ? 'it' : 'them'} to "publishers" of "${app}" in the trust file`
}

/** A signature by `key` over release `id`. */
export async function signReleaseId (id: CID, key: PublisherKey): Promise<ReleaseSignature> {
  return { key: key.id, sig: await key.privateKey.sign(signingMessage(id)) }
}

/** True when `signature` is a valid signature over release `id` by the key it names. */
export async function checkSignature (id: CID, signature: ReleaseSignature): Promise<boolean> {
  try {
    return await publicKeyFromString(signature.key).verify(signingMessage(id), signature.sig)
  } catch {
    return false
  }
}

/**
 * Add `key`'s signature to a signed release (replacing an older one by the same key).
 * The record, and so the id, is unchanged.
 */
export async function coSign (signed: SignedRelease, key: PublisherKey): Promise<SignedRelease> {
  const id = await releaseId(signed.record)
  const signature = await signReleaseId(id, key)
  return { record: signed.record, signatures: [...signed.signatures.filter(s => s.key !== key.id), signature] }
}

/**
 * Merge the signatures of two signed releases for the same id: one signature per key,
 * preferring a valid one, so a forged copy can never displace a good signature.
 */
export async function mergeSignatures (a: SignedRelease, b: SignedRelease): Promise<SignedRelease> {
  const id = await releaseId(a.record)
  const other = await releaseId(b.record)
  if (id.toString() !== other.toString()) throw new ReleaseIdMismatchError(`cannot merge signatures of ${id.toString()} and ${other.toString()}: they are different releases`)
  const byKey = new Map<string, ReleaseSignature>()
  for (const signature of [...a.signatures, ...b.signatures]) {
    const held = byKey.get(signature.key)
    if (held == null || (!(await checkSignature(id, held)) && await checkSignature(id, signature))) {
      byKey.set(signature.key, signature)
    }
  }
  return { record: a.record, signatures: [...byKey.values()] }
}
