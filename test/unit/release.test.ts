import fs from 'node:fs/promises'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.js'
import { writeCar, walkPackageBlocks } from '../../src/package/index.js'
import {
  BundleIncompleteError, KeyFileInvalidError, MalformedReleaseError, ManifestMismatchError, NotABundleError, PassphraseRequiredError,
  ReleaseExpiredError, ReleaseIdMismatchError, ReleaseTooLargeError, SizeMismatchError, ThresholdNotMetError, TrustFileInvalidError,
  TrustPolicy, UntrustedAppError, UntrustedCallError, VersionNotNewerError, WrongPassphraseError, InvalidPublicKeyError, InvalidReleaseIdError,
  coSign, createRelease, decodeKeyFile, decodeSignedRelease, encodeKeyFile, encodeSignedRelease, generatePublisherKey, mergeSignatures,
  parseReleaseId, publicKeyFromString, readBundle, releaseId, signingMessage, verifyBundle, verifyReleasePackage, verifySignedRelease, writeBundle
} from '../../src/release/index.js'
import type { PublisherKey, ReleaseBook, SignedRelease } from '../../src/release/index.js'
import { MemoryBlockStore } from '../../src/store/index.js'
import { samplePackage, tempDir } from '../helpers.js'

let alice: PublisherKey
let bob: PublisherKey
let mallory: PublisherKey
const NOW = Date.parse('2026-11-27T10:00:00Z')
const clock = fixedClock(NOW)

function trust (keys: PublisherKey[], threshold: number, app = 'kv'): TrustPolicy {
  return TrustPolicy.parse({ apps: { [app]: { publishers: keys.map(k => k.id), threshold } } })
}

async function release (keys: PublisherKey[], version = '2.0.0', extra: Record<string, unknown> = {}): Promise<Awaited<ReturnType<typeof createRelease>> & { store: MemoryBlockStore }> {
  const store = new MemoryBlockStore()
  const dir = await samplePackage(await tempDir(), version, extra)
  return { ...await createRelease({ dir, store, keys, clock, expiresIn: 86_400_000 }), store }
}

beforeAll(async () => {
  [alice, bob, mallory] = await Promise.all([generatePublisherKey(), generatePublisherKey(), generatePublisherKey()])
})

describe('publisher keys', () => {
  it('are named z6Mk… and parse back', () => {
    expect(alice.id).toMatch(/^z6Mk/)
    expect(publicKeyFromString(alice.id).equals(alice.privateKey.publicKey)).toBe(true)
    expect(() => publicKeyFromString('zzzz')).toThrow(InvalidPublicKeyError)
    expect(() => publicKeyFromString('not-multibase')).toThrow(InvalidPublicKeyError)
  })

  it('round-trip through plain and encrypted key files; a wrong passphrase is refused', async () => {
    expect((await decodeKeyFile(await encodeKeyFile(alice))).id).toBe(alice.id)
    const sealed = await encodeKeyFile(alice, 'correct horse')
    expect(sealed).not.toContain(Buffer.from(alice.privateKey.raw).toString('base64'))
    expect((await decodeKeyFile(sealed, 'correct horse')).id).toBe(alice.id)
    await expect(decodeKeyFile(sealed, 'battery staple')).rejects.toThrow(WrongPassphraseError)
    await expect(decodeKeyFile(sealed)).rejects.toThrow(PassphraseRequiredError)
    await expect(decodeKeyFile('{}')).rejects.toThrow(KeyFileInvalidError)
    await expect(decodeKeyFile('garbage')).rejects.toThrow(KeyFileInvalidError)
    const swapped = JSON.parse(await encodeKeyFile(alice)) as { publicKey: string }
    swapped.publicKey = bob.id
    await expect(decodeKeyFile(JSON.stringify(swapped))).rejects.toThrow(/inconsistent/)
  })
})

describe('records and signatures', () => {
  it('encode and decode a signed release; the id is the CID of the record', async () => {
    const { signed, id } = await release([alice])
    const decoded = decodeSignedRelease(encodeSignedRelease(signed))
    expect((await releaseId(decoded.record)).toString()).toBe(id.toString())
    expect(id.code).toBe(0x71)
    expect(decoded.record.package.toString()).toBe(signed.record.package.toString())
    expect(parseReleaseId(id.toString()).toString()).toBe(id.toString())
    expect(() => parseReleaseId(signed.record.package.toString())).toThrow(InvalidReleaseIdError)
    expect(() => parseReleaseId('nope')).toThrow(InvalidReleaseIdError)
  })

  it('refuses malformed signed releases with a named error', async () => {
    const { signed } = await release([alice])
    const wire = dagCbor.decode<{ record: Record<string, unknown>, signatures: unknown[] }>(encodeSignedRelease(signed))
    const bad: unknown[] = [
      { ...wire, extra: 1 },
      { ...wire, record: { ...wire.record, version: '2.x' } },
      { ...wire, record: { ...wire.record, app: 'other' } }, // disagrees with its manifest
      { ...wire, record: { ...wire.record, size: -1 } },
      { ...wire, record: { ...wire.record, expires: '2020-01-01T00:00:00Z' } }, // before issued
      { ...wire, record: { ...wire.record, manifest: { ...(wire.record.manifest as object), bogus: true } } },
      { ...wire, signatures: [{ key: alice.id, sig: new Uint8Array(10) }] },
      { record: wire.record },
      'just a string'
    ]
    for (const value of bad) expect(() => decodeSignedRelease(dagCbor.encode(value))).toThrow(MalformedReleaseError)
    expect(() => decodeSignedRelease(new Uint8Array([0xff, 0x00, 0x13]))).toThrow(MalformedReleaseError)
    expect(() => decodeSignedRelease(new Uint8Array(200_000))).toThrow(/limit/)
  })

  it('signs a domain-separated message, so a bare id signature does not count', async () => {
    const { signed, id } = await release([alice])
    const bare = await alice.privateKey.sign(id.bytes)
    const forged: SignedRelease = { record: signed.record, signatures: [{ key: alice.id, sig: bare }] }
    await expect(verifySignedRelease(forged, { trust: trust([alice], 1), clock })).rejects.toThrow(ThresholdNotMetError)
    expect(signingMessage(id).byteLength).toBeGreaterThan(id.bytes.byteLength)
  })

  it('co-signing keeps the id; merging keeps one valid signature per key', async () => {
    const { signed, id } = await release([alice])
    const both = await coSign(signed, bob)
    expect((await releaseId(both.record)).toString()).toBe(id.toString())
    expect(both.signatures.map(s => s.key).sort()).toEqual([alice.id, bob.id].sort())
    const onlyBob = { record: signed.record, signatures: both.signatures.filter(s => s.key === bob.id) }
    const merged = await mergeSignatures(signed, onlyBob)
    expect(merged.signatures).toHaveLength(2)
    // a forged copy of alice's signature never displaces the valid one, whichever side it comes from
    const forgedAlice = { record: signed.record, signatures: [{ key: alice.id, sig: new Uint8Array(64) }] }
    for (const m of [await mergeSignatures(forgedAlice, signed), await mergeSignatures(signed, forgedAlice)]) {
      await expect(verifySignedRelease(m, { trust: trust([alice], 1), clock })).resolves.toBeDefined()
    }
    const other = await release([alice], '3.0.0')
    await expect(mergeSignatures(signed, other.signed)).rejects.toThrow(ReleaseIdMismatchError)
  })
})

describe('verification', () => {
  it('admits a release signed by a threshold of distinct trusted keys', async () => {
    const { signed } = await release([alice, bob])
    const v = await verifySignedRelease(signed, { trust: trust([alice, bob, mallory], 2), clock, floor: '1.0.0' })
    expect(v.signers.sort()).toEqual([alice.id, bob.id].sort())
  })

  it('refuses each failed check with its own error', async () => {
    const { signed } = await release([alice])
    const policy = trust([alice, bob], 2)
    await expect(verifySignedRelease(signed, { trust: policy, clock })).rejects.toThrow(ThresholdNotMetError)
    // the same key signing twice counts once
    const twice = { record: signed.record, signatures: [...signed.signatures, ...signed.signatures] }
    await expect(verifySignedRelease(twice, { trust: policy, clock })).rejects.toThrow(/repeated by the same key/)
    // a signature by a key that is not a publisher
    const byMallory = await coSign(signed, mallory)
    await expect(verifySignedRelease(byMallory, { trust: policy, clock })).rejects.toThrow(/not trusted for kv/)
    // a key trusted only for another app
    await expect(verifySignedRelease(signed, { trust: trust([alice], 1, 'other'), clock })).rejects.toThrow(UntrustedAppError)
    // a tampered signature
    const sig = Uint8Array.from(signed.signatures[0]?.sig ?? [])
    sig[5] ^= 1
    await expect(verifySignedRelease({ record: signed.record, signatures: [{ key: alice.id, sig }] }, { trust: trust([alice], 1), clock })).rejects.toThrow(/1 invalid/)
    // a tampered record: the signatures no longer cover it
    await expect(verifySignedRelease({ ...signed, record: { ...signed.record, size: signed.record.size + 1 } }, { trust: trust([alice], 1), clock })).rejects.toThrow(ThresholdNotMetError)
    // expired, by the injected clock
    await expect(verifySignedRelease(signed, { trust: trust([alice], 1), clock: fixedClock(NOW + 2 * 86_400_000) })).rejects.toThrow(ReleaseExpiredError)
    // not newer than the floor
    await expect(verifySignedRelease(signed, { trust: trust([alice], 1), clock, floor: '2.0.0' })).rejects.toThrow(VersionNotNewerError)
    await expect(verifySignedRelease(signed, { trust: trust([alice], 1), clock, floor: '3.1.0' })).rejects.toThrow(VersionNotNewerError)
    // declared size beyond the limit
    await expect(verifySignedRelease(signed, { trust: trust([alice], 1), clock, maxSize: 10 })).rejects.toThrow(ReleaseTooLargeError)
  })

  it('refuses a release that calls an app this peer does not trust, naming it', async () => {
    const { signed } = await release([alice], '2.0.0', { calls: { store: 2, queue: 1 } })
    const both = TrustPolicy.parse({ apps: { kv: { publishers: [alice.id], threshold: 1 }, store: { publishers: [bob.id], threshold: 1 } } })
    const err = await verifySignedRelease(signed, { trust: both, clock }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(UntrustedCallError)
    expect((err as Error).message).toBe('kv@2.0.0 calls "queue", not in this peer\'s trust policy: it would never see a peer of that app to call; add its publishers to the trust file')
    const all = TrustPolicy.parse({ apps: { kv: { publishers: [alice.id], threshold: 1 }, store: { publishers: [bob.id], threshold: 1 }, queue: { publishers: [bob.id], threshold: 1 } } })
    await expect(verifySignedRelease(signed, { trust: all, clock })).resolves.toBeDefined()
    // a forgery is still a forgery first: the signature check comes before the calls
    await expect(verifySignedRelease({ record: signed.record, signatures: [{ key: alice.id, sig: new Uint8Array(64) }] }, { trust: both, clock })).rejects.toThrow(ThresholdNotMetError)
  })

  it('checks the package against the record: size and manifest', async () => {
    const { signed, store } = await release([alice])
    await expect(verifyReleasePackage(signed.record, store)).resolves.toBeDefined()
    await expect(verifyReleasePackage({ ...signed.record, size: signed.record.size - 1 }, store)).rejects.toThrow(SizeMismatchError)
    const m = signed.record.manifest as Record<string, unknown>
    await expect(verifyReleasePackage({ ...signed.record, manifest: { ...m, protocol: 9 } }, store)).rejects.toThrow(ManifestMismatchError)
  })
})

describe('trust files', () => {
  it('refuse bad shapes with the field named', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ apps: { kv: { publishers: ['nope'], threshold: 1 } } }, /publishers\[0\]/],
      [{ apps: { kv: { publishers: [], threshold: 1 } } }, /publishers/],
      [{ apps: { kv: { publishers: ['z6MkhQLEV2f1qv9Qj7XaqKFkWzqdZzmPN99F2ooH2oNUM6Yt'], threshold: 2 } } }, /threshold is larger/],
      [{ apps: { kv: { publishers: ['z6MkhQLEV2f1qv9Qj7XaqKFkWzqdZzmPN99F2ooH2oNUM6Yt'], threshold: 1, extra: 1 } } }, /unknown key "extra"/],
      [{ apps: {}, more: 1 }, /unknown key "more"/]
    ]
    for (const [value, message] of cases) {
      expect(() => TrustPolicy.parse(value)).toThrow(TrustFileInvalidError)
      expect(() => TrustPolicy.parse(value)).toThrow(message)
    }
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 't.json'), '{')
    await expect(TrustPolicy.read(path.join(dir, 't.json'))).rejects.toThrow(/not valid JSON/)
    await expect(TrustPolicy.read(path.join(dir, 'missing.json'))).rejects.toThrow(/ENOENT/)
  })
})

describe('bundles', () => {
  it('round-trip and verify; co-signed bundles keep their id', async () => {
    const { signed, store, blocks, id } = await release([alice])
    const car = await writeBundle(await coSign(signed, bob), store, blocks)
    const v = await verifyBundle(car, { trust: trust([alice, bob], 2), clock })
    expect(v.id.toString()).toBe(id.toString())
    expect(v.packageBlocks).toHaveLength(blocks.length)
  })

  it('refuse a CAR whose root is not a signed release, several roots, or missing blocks', async () => {
    const { signed, store, blocks } = await release([alice])
    const pkgCar = await writeCar([signed.record.package], await Promise.all(blocks.map(async cid => ({ cid, bytes: await store.get(cid) }))))
    await expect(readBundle(pkgCar)).rejects.toThrow(NotABundleError)
    const junk = dagCbor.encode({ hello: 'world' })
    const junkCid = CID.createV1(0x71, await sha256.digest(junk))
    await expect(readBundle(await writeCar([junkCid], [{ cid: junkCid, bytes: junk }]))).rejects.toThrow(/not a signed release/)
    await expect(readBundle(await writeCar([junkCid], []))).rejects.toThrow(/does not contain its root block/)
    await expect(readBundle(await writeCar([junkCid, signed.record.package], [{ cid: junkCid, bytes: junk }]))).rejects.toThrow(/exactly one root/)
    const { cids } = await walkPackageBlocks(signed.record.package, store)
    const partial = await writeBundle(signed, store, cids.slice(0, -1))
    await expect(verifyBundle(partial, { trust: trust([alice], 1), clock })).rejects.toThrow(BundleIncompleteError)
  })
})

describe('the release book', () => {
  async function book (keys: PublisherKey[], threshold = 1): Promise<ReleaseBook> {
    const { ReleaseBook } = await import('../../src/release/index.js')
    const b = new ReleaseBook({ dir: await tempDir(), trust: () => trust(keys, threshold), floor: () => '1.0.0', clock })
    await b.load()
    return b
  }

  it('admits once, merges new trusted co-signatures, and keeps no untrusted ones', async () => {
    const b = await book([alice, bob], 1)
    const { signed, id } = await release([alice])
    expect((await b.consider(signed)).kind).toBe('new')
    expect((await b.consider(signed)).kind).toBe('known')
    // signatures piled on by keys nobody here trusts are dropped, not forwarded as "merged"
    const piled = { record: signed.record, signatures: [...signed.signatures] }
    for (const k of await Promise.all(Array.from({ length: 10 }, async () => await generatePublisherKey()))) piled.signatures.push((await coSign(signed, k)).signatures.at(-1) as SignedRelease['signatures'][number])
    expect((await b.consider(piled)).kind).toBe('known')
    expect((await b.consider(await coSign(signed, bob))).kind).toBe('merged')
    expect(b.get(id.toString())?.signed.signatures.map(s => s.key).sort()).toEqual([alice.id, bob.id].sort())
  })

  it('rejects only forgeries; ignores old, expired, untrusted-app and untrusted-key releases', async () => {
    const b = await book([alice], 1)
    const forged = await release([alice])
    const badSig = { record: forged.signed.record, signatures: [{ key: alice.id, sig: new Uint8Array(64) }] }
    expect((await b.consider(badSig)).kind).toBe('rejected')
    expect((await b.consider((await release([mallory])).signed)).kind).toBe('ignored')
    expect((await b.consider((await release([alice], '1.0.0')).signed)).kind).toBe('ignored')
    expect((await b.considerBytes(new Uint8Array([1, 2, 3]))).kind).toBe('rejected')
    const otherApp = TrustPolicy.parse({ apps: { other: { publishers: [alice.id], threshold: 1 } } })
    const { ReleaseBook } = await import('../../src/release/index.js')
    const b2 = new ReleaseBook({ dir: await tempDir(), trust: () => otherApp, floor: () => undefined, clock: fixedClock(NOW + 10 * 86_400_000) })
    expect((await b2.consider(forged.signed)).kind).toBe('ignored')
  })

  it('refuses a second, different release signed for a version it already knows (a split view), and names both', async () => {
    const b = await book([alice], 1)
    const first = await release([alice], '2.0.0')
    const twin = await release([alice], '2.0.0', { health: { stableFor: '2s' } })
    expect(twin.id.equals(first.id)).toBe(false)
    expect((await b.consider(first.signed)).kind).toBe('new')
    const verdict = await b.consider(twin.signed)
    expect(verdict).toMatchObject({ kind: 'ignored', id: twin.id.toString() })
    expect(verdict.kind === 'ignored' && verdict.error.name).toBe('EquivocationError')
    expect(verdict.kind === 'ignored' && verdict.reason).toContain(first.id.toString())
    expect(b.list().map(e => e.id)).toEqual([first.id.toString()])
    // an unsigned twin is just not trusted: no alarm about the publishers' keys
    const forged = await release([mallory], '2.0.0', { health: { stableFor: '3s' } })
    expect((await b.consider(forged.signed)).kind === 'ignored' && (await b.consider(forged.signed) as { error: Error }).error.name).toBe('ThresholdNotMetError')
  })

  it('survives a restart', async () => {
    const { ReleaseBook } = await import('../../src/release/index.js')
    const dir = await tempDir()
    const b = new ReleaseBook({ dir, trust: () => trust([alice], 1), floor: () => undefined, clock })
    const { signed, id } = await release([alice])
    await b.consider(signed)
    await b.setState(id.toString(), 'staged')
    const again = new ReleaseBook({ dir, trust: () => trust([alice], 1), floor: () => undefined, clock })
    expect(await again.load()).toEqual([])
    expect(again.get(id.toString())?.state).toBe('staged')
  })
})

describe('ThresholdNotMetError names the keys that signed but are not trusted', () => {
  it('for a release: each untrusted key shortened, with what to do', async () => {
    const { shortKey } = await import('../../src/release/index.js')
    const { signed } = await release([mallory])
    const err = await verifySignedRelease(signed, { trust: trust([alice], 1), clock }).catch((e: unknown) => e as Error)
    expect(err).toBeInstanceOf(ThresholdNotMetError)
    expect(shortKey(mallory.id)).toBe(`${mallory.id.slice(0, 12)}…${mallory.id.slice(-8)}`)
    expect(err.message).toBe(`kv@2.0.0 has 0 valid signatures by trusted keys, 1 required (1 by a key not trusted for kv: ${shortKey(mallory.id)}; if it is a publisher of kv, add it to "publishers" of "kv" in the trust file)`)
    expect(err.message).not.toContain(alice.id.slice(0, 12))
    // several: each named once, a trusted signer is not among them
    const two = await coSign(await coSign(signed, bob), alice)
    const both = await verifySignedRelease(two, { trust: trust([alice, (await generatePublisherKey())], 2), clock }).catch((e: unknown) => e as Error)
    expect(both.message).toMatch(/has 1 valid signature by trusted keys, 2 required \(2 by keys not trusted for kv: /)
    expect(both.message).toContain(shortKey(mallory.id))
    expect(both.message).toContain(shortKey(bob.id))
  })

  it('for a revocation: a key missing from the trust file is named', async () => {
    const { signRevocation, verifyRevocation, shortKey } = await import('../../src/release/index.js')
    const { id } = await release([alice])
    const byBob = await signRevocation({ app: 'kv', release: id, issued: new Date(NOW).toISOString(), reason: 'bad' }, [bob])
    await expect(verifyRevocation(byBob, trust([alice], 1))).rejects.toThrow(`has 0 valid signatures by trusted keys, 1 required (1 by a key not trusted for kv: ${shortKey(bob.id)};`)
  })
})

describe('revocations', () => {
  it('need a threshold of distinct trusted signatures over their own domain', async () => {
    const { decodeRevocation, encodeRevocation, signRevocation, verifyRevocation, MalformedRevocationError } = await import('../../src/release/index.js')
    const { id } = await release([alice])
    const record = { app: 'kv', release: id, issued: new Date(NOW).toISOString(), reason: 'bad' }
    const both = await signRevocation(record, [alice, bob])
    const decoded = decodeRevocation(encodeRevocation(both))
    expect((await verifyRevocation(decoded, trust([alice, bob], 2))).signers.sort()).toEqual([alice.id, bob.id].sort())
    const one = await signRevocation(record, [alice, alice])
    expect(one.signatures).toHaveLength(1)
    await expect(verifyRevocation(one, trust([alice, bob], 2))).rejects.toThrow(ThresholdNotMetError)
    await expect(verifyRevocation(both, trust([alice], 1, 'other'))).rejects.toThrow(UntrustedAppError)
    // a release signature (other domain) does not pass for a revocation signature
    const releaseSig = (await release([alice])).signed.signatures[0]
    const replayed = { record, signatures: [{ key: alice.id, sig: releaseSig?.sig ?? new Uint8Array(64) }] }
    await expect(verifyRevocation(replayed, trust([alice], 1))).rejects.toThrow(/1 invalid/)
    expect(() => decodeRevocation(new Uint8Array([1, 2, 3]))).toThrow(MalformedRevocationError)
  })
})
