/**
 * Rollout pauses: a record that stops (`pause`) or lets go again (`resume`) the
 * network-wide rollout of one release, signed by a threshold of the app's publishers
 * (the same trust policy as releases) over a domain-separated message of its own, so
 * no release, revocation or rotation signature can pass for one. Each record carries a
 * per-release sequence: a record replaces the one a peer holds for that release only
 * when its sequence is higher, so a replayed or late older record never undoes a newer
 * one, whatever order they arrive in.
 *
 * @example
 * ```ts
 * const signed = await signPause({ app: 'kv', release, action: 'pause', sequence: 1, issued: new Date().toISOString(), reason: 'p99 doubled' }, [alice, bob])
 * const { signers } = await verifyPause(decodePause(encodePause(signed)), trust) // throws ThresholdNotMetError, UntrustedAppError, …
 * ```
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { z } from 'zod'
import { decodeDagCbor } from '../dag-cbor.js'
import { MalformedInputError, PolicyRefusalError } from '../errors.js'
import { describeSchemaIssues, safeParse } from '../schema.js'
import { CODEC_DAG_CBOR, toCid } from '../store/index.js'
import type { PublisherKey } from './keys.js'
import { MAX_SIGNATURES } from './record.js'
import type { ReleaseSignature } from './record.js'
import { countTrustedSignatures, shortKey, signingMessage, untrustedKeysNote } from './signing.js'
import { APP_NAME, SequenceSchema } from './trust.js'
import type { TrustPolicy } from './trust.js'
import { ThresholdNotMetError, UntrustedAppError } from './verify.js'

/** Bytes that are not a well-formed signed pause record. */
export class MalformedPauseError extends MalformedInputError {
  static override name = 'MalformedPauseError'
}

/**
 * A pause record that does not replace the one held for its release: an older sequence
 * (a replay, or one that arrived after a newer one), or a losing twin of the same sequence.
 */
export class PauseOutdatedError extends PolicyRefusalError {
  static override name = 'PauseOutdatedError'
  override get routine (): boolean { return true }
}

/** A pause record names a release of another app than the one whose publishers signed it. */
export class PauseAppMismatchError extends PolicyRefusalError {
  static override name = 'PauseAppMismatchError'
}

/** The domain tag of pause signatures. */
export const PAUSE_SIGNING_DOMAIN = 'upgossip/rollout-pause/v1\n'

/** Largest encoded signed pause record. */
export const MAX_PAUSE_BYTES = 64 * 1024

/** What publishers sign to pause or resume the rollout of a release. */
export interface PauseRecord {
  app: string
  /** The release whose rollout is paused or resumed. */
  release: CID
  /** `pause`: no peer starts switching to the release; `resume`: lifts a pause. */
  action: 'pause' | 'resume'
  /**
   * Per app and release, from 1: a record replaces the one held only with a higher
   * sequence. `rollout pause|resume` uses the signing time in milliseconds (or one more
   * than the record its daemon holds, if that is higher), so the last action signed wins
   * even when the daemon it went through had not heard of an earlier one.
   */
  sequence: number
  /** ISO-8601 time of signing. */
  issued: string
  /** Why, for operators (shown as the release's `reason` while paused). */
  reason: string
}

/** A pause record with its signatures. */
export interface SignedPause {
  record: PauseRecord
  signatures: ReleaseSignature[]
}

const RecordSchema = z.strictObject({
  app: z.string().regex(APP_NAME, { message: 'expected an app name' }),
  release: z.custom<CID>(v => CID.asCID(v) != null, { message: 'expected a CID' }).transform(v => toCid(v)),
  action: z.enum(['pause', 'resume']),
  sequence: SequenceSchema.min(1),
  issued: z.iso.datetime({ offset: true }),
  reason: z.string().max(1000)
})
const SignedSchema = z.strictObject({
  record: z.unknown(),
  signatures: z.array(z.strictObject({ key: z.string().min(1).max(128), sig: z.instanceof(Uint8Array).refine(s => s.byteLength === 64, { message: 'expected a 64-byte Ed25519 signature' }) })).max(MAX_SIGNATURES)
})

function plain (r: PauseRecord): PauseRecord {
  return { app: r.app, release: r.release, action: r.action, sequence: r.sequence, issued: r.issued, reason: r.reason }
}

/** Check a record against the schema; throws {@link MalformedPauseError}. */
export function parsePauseRecord (value: unknown): PauseRecord {
  const record = safeParse(RecordSchema, value)
  if (!record.success) throw new MalformedPauseError(describeSchemaIssues('pause record', record.error))
  return record.data
}

/** The pause record's id: CIDv1 (dag-cbor, sha2-256) of its record. */
export async function pauseId (record: PauseRecord): Promise<CID> {
  return CID.createV1(CODEC_DAG_CBOR, await sha256.digest(dagCbor.encode(plain(record))))
}

/** Sign a pause record with every key (once per key); the record is checked first. */
export async function signPause (record: PauseRecord, keys: PublisherKey[]): Promise<SignedPause> {
  const checked = parsePauseRecord(plain(record))
  const message = signingMessage(await pauseId(checked), PAUSE_SIGNING_DOMAIN)
  const signatures: ReleaseSignature[] = []
  for (const key of keys) {
    if (signatures.some(s => s.key === key.id)) continue
    signatures.push({ key: key.id, sig: await key.privateKey.sign(message) })
  }
  if (signatures.length > MAX_SIGNATURES) throw new MalformedPauseError(`a pause record carries at most ${MAX_SIGNATURES} signatures`)
  return { record: checked, signatures }
}

/** The dag-cbor bytes of a signed pause record. */
export function encodePause (signed: SignedPause): Uint8Array {
  return dagCbor.encode({ record: plain(signed.record), signatures: signed.signatures.map(s => ({ key: s.key, sig: s.sig })) })
}

/** Decode a signed pause record; throws {@link MalformedPauseError}. */
export function decodePause (bytes: Uint8Array): SignedPause {
  if (bytes.byteLength > MAX_PAUSE_BYTES) throw new MalformedPauseError(`pause record of ${bytes.byteLength} bytes is over the ${MAX_PAUSE_BYTES}-byte limit`)
  let value: unknown
  try {
    value = decodeDagCbor(bytes)
  } catch (err) {
    throw new MalformedPauseError(`not a pause record (dag-cbor: ${(err as Error).message})`)
  }
  const outer = safeParse(SignedSchema, value)
  if (!outer.success) throw new MalformedPauseError(describeSchemaIssues('pause record', outer.error))
  return { record: parsePauseRecord(outer.data.record), signatures: outer.data.signatures }
}

/**
 * Check a pause record against the trust policy: the app is trusted and at least
 * `threshold` distinct trusted keys signed it. Returns its id, the valid signers and
 * their signatures (what is worth keeping and passing on);
 * throws `UntrustedAppError` or `ThresholdNotMetError` (forged, so the sender's fault,
 * when a trusted key's signature does not verify).
 */
export async function verifyPause (signed: SignedPause, trust: TrustPolicy): Promise<{ id: CID, signers: string[], signatures: ReleaseSignature[] }> {
  const { record } = signed
  const policy = trust.forApp(record.app)
  if (policy == null) throw new UntrustedAppError(`app "${record.app}" is not in the trust policy, so no pause of its rollout can be checked`)
  const id = await pauseId(record)
  const { valid, invalid, kept, untrusted } = await countTrustedSignatures(id, PAUSE_SIGNING_DOMAIN, signed.signatures, key => trust.isPublisher(record.app, key))
  if (valid.length < policy.threshold) {
    const notes = [untrustedKeysNote(untrusted, record.app), invalid > 0 ? `${invalid} invalid` : ''].filter(n => n !== '')
    throw new ThresholdNotMetError(`the ${record.action} of ${record.release.toString()} has ${valid.length} valid signature${valid.length === 1 ? '' : 's'} by trusted keys of ${record.app}, ${policy.threshold} required${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`, { forged: invalid > 0 })
  }
  return { id, signers: valid, signatures: kept }
}

/**
 * Which of two records for one release wins: the higher sequence; at the same sequence a
 * pause over a resume (the safe side), then the smaller id — the same answer on every
 * peer, whatever order the two reached it in. True when `offered` replaces `held`.
 */
export function pauseSupersedes (offered: { record: PauseRecord, id: string }, held: { record: PauseRecord, id: string }): boolean {
  if (offered.record.sequence !== held.record.sequence) return offered.record.sequence > held.record.sequence
  if (offered.record.action !== held.record.action) return offered.record.action === 'pause'
  return offered.id < held.id
}

/**
 * The sequence of a record signed at `issued`: its time in milliseconds, so the last action
 * signed wins on every peer, even over a record the signer's daemon has not heard of
 * (`held`, the sequence it holds); one more than `held` when that is higher (a clock behind).
 */
export function nextPauseSequence (issued: Date, held = 0): number {
  return Math.max(issued.getTime(), held + 1)
}

/** Why a release does not start while `signed` (a pause) is held: who paused it, when and why. */
export function describePause (signed: SignedPause): string {
  const { record } = signed
  const by = signed.signatures.map(s => shortKey(s.key)).join(', ')
  return `paused by the publishers of ${record.app} (${by}) at ${record.issued}${record.reason === '' ? '' : `: ${record.reason}`}; "upgossip rollout resume" with their keys lets it go`
}
