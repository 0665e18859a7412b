/**
 * `release/` — what a publisher signs and a peer admits: the release record and its id,
 * Ed25519 publisher keys, signatures over a domain-separated message, signature merging,
 * the trust policy and its store, trust rotations, revocations, rollout pauses,
 * verification, and release bundles (CAR).
 *
 * @example
 * ```ts
 * const key = await readKeyFile('publisher.key')
 * const signed = await createRelease({ dir: './kv-v2', store, keys: [key] })
 * const trust = await TrustPolicy.read('trust.json')
 * await verifySignedRelease(signed.signed, { trust }) // throws ThresholdNotMetError, ReleaseExpiredError, …
 * ```
 */
export * from './bundle.js'
export * from './create.js'
export * from './keys.js'
export * from './pause.js'
export * from './pause-book.js'
export * from './record.js'
export * from './release-book.js'
export * from './release-index.js'
export { summarize } from './release-files.js'
export * from './revocation.js'
export * from './rotation.js'
export * from './signing.js'
export * from './topic-message.js'
export * from './trust.js'
export * from './trust-store.js'
export * from './verify.js'
