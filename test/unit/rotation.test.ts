/**
 * Trust rotations: the record codec and its bounds, signing-domain separation, the
 * threshold of the *current* keys, monotonic sequences, the durable trust store (also
 * across restarts with the original trust file), what the release book does with
 * releases the new policy no longer admits, and the daemon's own intake of a sync answer
 * whose rotations come in any order.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.js'
import {
  MalformedReleaseError, MalformedRotationError, REVOCATION_SIGNING_DOMAIN, ROTATION_SIGNING_DOMAIN, ReleaseBook, RotationOutOfOrderError,
  RotationOutdatedError, ThresholdNotMetError, TrustConflictError, TrustPolicy, TrustStore, UntrustedAppError, coSign, createRelease,
  decodeReleasesTopicMessage, decodeRotation, encodeReleasesTopicMessage, encodeRotation, generatePublisherKey, readKeyFilePublicKey,
  rotationId, signReleaseId, signRevocation, signRotation, signingMessage, verifyRevocation, verifyRotation, verifySignedRelease, writeKeyFile
} from '../../src/release/index.js'
import type { PublisherKey, RotationRecord } from '../../src/release/index.js'
import { MemoryBlockStore } from '../../src/store/index.js'
import { Admission } from '../../src/daemon/admission.js'
import { AntiEntropy } from '../../src/daemon/anti-entropy.js'
import { closeLocalParts, openLocalParts } from '../../src/daemon/local-parts.js'
import { resolveDaemonOptions } from '../../src/daemon/options.js'
import type { TurnedDown } from '../../src/daemon/turned-down.js'
import { peerIdFromString } from '../../src/net/index.js'
import { samplePackage, tempDir } from '../helpers.js'

let alice: PublisherKey
let bob: PublisherKey
let carol: PublisherKey
let mallory: PublisherKey
const NOW = Date.parse('2026-11-27T10:00:00Z')
const clock = fixedClock(NOW)

function trust (keys: PublisherKey[], threshold: number, sequence?: number): TrustPolicy {
  return TrustPolicy.parse({ apps: { kv: { publishers: keys.map(k => k.id), threshold, ...(sequence == null ? {} : { sequence }) } } })
}

function record (publishers: PublisherKey[], threshold: number, sequence = 1, extra: Partial<RotationRecord> = {}): RotationRecord {
  return { app: 'kv', publishers: publishers.map(k => k.id), threshold, sequence, issued: new Date(NOW).toISOString(), reason: 'test', ...extra }
}

async function release (keys: PublisherKey[], version = '2.0.0'): Promise<Awaited<ReturnType<typeof createRelease>>> {
  const dir = await samplePackage(await tempDir(), version)
  return await createRelease({ dir, store: new MemoryBlockStore(), keys, clock, expiresIn: 86_400_000 })
}

/** A data directory seeded with a trust file; returns both paths. */
async function seededDir (policy: TrustPolicy): Promise<{ data: string, file: string }> {
  const root = await tempDir()
  const file = path.join(root, 'trust.json')
  await fs.writeFile(file, JSON.stringify(policy.toJSON()))
  const data = path.join(root, 'data')
  await fs.mkdir(data)
  return { data, file }
}

beforeAll(async () => {
  [alice, bob, carol, mallory] = await Promise.all([generatePublisherKey(), generatePublisherKey(), generatePublisherKey(), generatePublisherKey()])
})

describe('rotation records', () => {
  it('round-trip through dag-cbor; the id is the CID of the record and signing does not change it', async () => {
    const signed = await signRotation(record([bob, carol], 2), [alice])
    const decoded = decodeRotation(encodeRotation(signed))
    expect(decoded.record).toEqual(signed.record)
    const id = await rotationId(decoded.record)
    expect(id.code).toBe(0x71)
    const more = await signRotation(decoded, [bob])
    expect((await rotationId(more.record)).equals(id)).toBe(true)
    expect(more.signatures.map(s => s.key)).toEqual([alice.id, bob.id])
    // signing again with a key replaces its signature rather than piling one on
    expect((await signRotation(more, [alice])).signatures).toHaveLength(2)
    // and on the releases topic
    const message = decodeReleasesTopicMessage(encodeReleasesTopicMessage({ type: 'rotation', rotation: signed }))
    expect(message.type === 'rotation' && message.rotation.record).toEqual(signed.record)
  })

  it('refuse malformed records and out-of-bounds policies with a named error', async () => {
    const wire = dagCbor.decode<{ record: Record<string, unknown>, signatures: unknown[] }>(encodeRotation(await signRotation(record([bob], 1), [alice])))
    const many = await Promise.all(Array.from({ length: 65 }, async () => (await generatePublisherKey()).id))
    const bad: Array<[unknown, RegExp]> = [
      [{ ...wire, extra: 1 }, /unknown key "extra"/],
      [{ ...wire, record: { ...wire.record, publishers: [] } }, /publishers/],
      [{ ...wire, record: { ...wire.record, publishers: many, threshold: 1 } }, /publishers/],
      [{ ...wire, record: { ...wire.record, publishers: [bob.id, bob.id] } }, /listed twice/],
      [{ ...wire, record: { ...wire.record, publishers: ['12D3KooWnotakey'] } }, /Ed25519 public key/],
      [{ ...wire, record: { ...wire.record, threshold: 0 } }, /threshold/],
      [{ ...wire, record: { ...wire.record, threshold: 2 } }, /threshold is larger/],
      [{ ...wire, record: { ...wire.record, threshold: 1.5 } }, /threshold/],
      [{ ...wire, record: { ...wire.record, sequence: 0 } }, /sequence/],
      [{ ...wire, record: { ...wire.record, sequence: -1 } }, /sequence/],
      [{ ...wire, record: { ...wire.record, app: 'KV' } }, /app name/],
      [{ ...wire, record: { ...wire.record, issued: 'yesterday' } }, /issued/],
      [{ ...wire, record: { ...wire.record, reason: 'x'.repeat(1001) } }, /reason/],
      [{ ...wire, record: { ...wire.record, bogus: true } }, /unknown key "bogus"/],
      [{ ...wire, signatures: [{ key: alice.id, sig: new Uint8Array(10) }] }, /64-byte/],
      [{ record: wire.record }, /signatures/],
      ['a string', /rotation/]
    ]
    for (const [value, message] of bad) expect(() => decodeRotation(dagCbor.encode(value))).toThrow(message)
    for (const [value] of bad) expect(() => decodeRotation(dagCbor.encode(value))).toThrow(MalformedRotationError)
    expect(() => decodeRotation(new Uint8Array([0xff, 0x01]))).toThrow(MalformedRotationError)
    expect(() => decodeRotation(new Uint8Array(70 * 1024))).toThrow(/limit/)
    // the signer refuses to sign out-of-bounds records too
    await expect(signRotation(record([bob], 2), [alice])).rejects.toThrow(MalformedRotationError)
    // a rotation message with a release's key on it is malformed, not a rotation
    const envelope = dagCbor.decode<Record<string, unknown>>(encodeReleasesTopicMessage({ type: 'rotation', rotation: await signRotation(record([bob], 1), [alice]) }))
    expect(() => decodeReleasesTopicMessage(dagCbor.encode({ ...envelope, release: new Uint8Array(1) }))).toThrow(MalformedReleaseError)
  })
})

describe('signing domains', () => {
  it('a rotation signature is valid only as a rotation signature, and no other signature passes for one', async () => {
    const rotation = await signRotation(record([bob], 1), [alice])
    const id = await rotationId(rotation.record)
    const sig = rotation.signatures[0]?.sig as Uint8Array
    const pub = alice.privateKey.publicKey
    expect(await pub.verify(signingMessage(id, ROTATION_SIGNING_DOMAIN), sig)).toBe(true)
    expect(await pub.verify(signingMessage(id), sig)).toBe(false)
    expect(await pub.verify(signingMessage(id, REVOCATION_SIGNING_DOMAIN), sig)).toBe(false)
    expect(await pub.verify(id.bytes, sig)).toBe(false)
    // the same key's release signature and revocation signature over the very same id do not count
    const asRelease = await signReleaseId(id, alice)
    await expect(verifyRotation({ record: rotation.record, signatures: [asRelease] }, trust([alice], 1))).rejects.toThrow(/1 invalid/)
    const asRevocation = await alice.privateKey.sign(signingMessage(id, REVOCATION_SIGNING_DOMAIN))
    await expect(verifyRotation({ record: rotation.record, signatures: [{ key: alice.id, sig: asRevocation }] }, trust([alice], 1))).rejects.toThrow(ThresholdNotMetError)
    await expect(verifyRotation(rotation, trust([alice], 1))).resolves.toBeDefined()
  })
})

describe('verifying a rotation against the current policy', () => {
  it('needs a threshold of distinct current publishers; forgeries are told apart from missing signatures', async () => {
    const current = trust([alice, bob], 2)
    const next = record([carol], 1)
    const both = await verifyRotation(await signRotation(next, [alice, bob]), current)
    expect(both.signers.sort()).toEqual([alice.id, bob.id].sort())
    expect(both.policy).toEqual({ publishers: [carol.id], threshold: 1, sequence: 1 })

    const one = await signRotation(next, [alice])
    const below = await verifyRotation(one, current).catch((err: Error) => err)
    expect(below).toBeInstanceOf(ThresholdNotMetError)
    expect((below as Error).message).toMatch(/1 valid signature by current publishers, 2 required/)
    expect((below as { forged?: boolean }).forged).toBe(false)
    // a signature by a key the policy does not list does not count (and is no forgery)
    const withMallory = await signRotation(next, [alice, mallory])
    await expect(verifyRotation(withMallory, current)).rejects.toThrow(ThresholdNotMetError)
    // the same key twice counts once
    await expect(verifyRotation({ record: next, signatures: [...one.signatures, ...one.signatures] }, current)).rejects.toThrow(ThresholdNotMetError)
    // the new keys cannot sign their own way in
    await expect(verifyRotation(await signRotation(next, [carol]), current)).rejects.toThrow(ThresholdNotMetError)
    // a current key's signature that does not verify is a forgery
    const forged = { record: next, signatures: [...one.signatures, { key: bob.id, sig: new Uint8Array(64) }] }
    const err = await verifyRotation(forged, current).catch((e: Error) => e)
    expect((err as { forged?: boolean }).forged).toBe(true)
    // a record changed after signing is not covered
    await expect(verifyRotation({ record: { ...next, threshold: 1, publishers: [mallory.id] }, signatures: (await signRotation(next, [alice, bob])).signatures }, current)).rejects.toThrow(ThresholdNotMetError)
    await expect(verifyRotation(await signRotation({ ...next, app: 'other' }, [alice, bob]), current)).rejects.toThrow(UntrustedAppError)
  })

  it('takes only the next sequence', async () => {
    await expect(verifyRotation(await signRotation(record([bob], 1, 2), [alice]), trust([alice], 1, 2))).rejects.toThrow(RotationOutdatedError)
    await expect(verifyRotation(await signRotation(record([bob], 1, 1), [alice]), trust([alice], 1, 2))).rejects.toThrow(RotationOutdatedError)
    await expect(verifyRotation(await signRotation(record([bob], 1, 4), [alice]), trust([alice], 1, 2))).rejects.toThrow(RotationOutOfOrderError)
    await expect(verifyRotation(await signRotation(record([bob], 1, 3), [alice]), trust([alice], 1, 2))).resolves.toBeDefined()
  })
})

describe('the trust store', () => {
  it('adopts a rotation durably; the same one again is known, an older or different one refused; old keys stop counting', async () => {
    const { data, file } = await seededDir(trust([alice], 1))
    const { store } = await TrustStore.open(data, { seed: file })
    const first = await signRotation(record([bob, carol], 2, 1), [alice])
    const outcome = await store.adopt(first)
    expect(outcome.kind).toBe('new')
    expect(store.policy.forApp('kv')).toEqual({ publishers: [bob.id, carol.id], threshold: 2, sequence: 1 })
    expect((await store.adopt(first)).kind).toBe('known')
    // a different rotation to the same sequence (signed by the old key, made before or after) is refused
    await expect(store.adopt(await signRotation(record([mallory], 1, 1), [alice]))).rejects.toThrow(RotationOutdatedError)
    // the removed key cannot rotate any more, not even to the next sequence
    await expect(store.adopt(await signRotation(record([mallory], 1, 2), [alice]))).rejects.toThrow(ThresholdNotMetError)
    await expect(store.adopt(await signRotation(record([mallory], 1, 2), [bob]))).rejects.toThrow(/1 valid signature by current publishers, 2 required/)
    expect(store.policy.forApp('kv')?.sequence).toBe(1)
    expect(store.rotations('kv')).toHaveLength(1)

    // releases and revocations: the old key alone no longer counts, the new ones do
    const byAlice = await release([alice])
    await expect(verifySignedRelease(byAlice.signed, { trust: store.policy, clock })).rejects.toThrow(ThresholdNotMetError)
    const byBobCarol = await release([bob, carol], '3.0.0')
    await expect(verifySignedRelease(byBobCarol.signed, { trust: store.policy, clock })).resolves.toBeDefined()
    const revocation = { app: 'kv', release: byBobCarol.id, issued: new Date(NOW).toISOString(), reason: '' }
    await expect(verifyRevocation(await signRevocation(revocation, [alice]), store.policy)).rejects.toThrow(ThresholdNotMetError)
    await expect(verifyRevocation(await signRevocation(revocation, [bob, carol]), store.policy)).resolves.toBeDefined()

    // a restart — without --trust, or with the original file — keeps the rotated policy
    for (const seed of [undefined, file]) {
      const again = await TrustStore.open(data, { seed })
      expect(again.seeded).toBe(false)
      expect(again.store.policy.forApp('kv')).toEqual({ publishers: [bob.id, carol.id], threshold: 2, sequence: 1 })
      expect(again.store.rotations('kv')).toHaveLength(1)
      expect((await again.store.adopt(first)).kind).toBe('known')
    }
    // a different file is still refused, as before rotations
    const other = path.join(path.dirname(file), 'other.json')
    await fs.writeFile(other, JSON.stringify(trust([mallory], 1).toJSON()))
    await expect(TrustStore.open(data, { seed: other })).rejects.toThrow(TrustConflictError)
  })

  it('adopts kept rotations again on start: after a crash between the two writes, and over --replace-trust with the old file', async () => {
    const { data, file } = await seededDir(trust([alice], 1))
    const { store } = await TrustStore.open(data, { seed: file })
    const first = await signRotation(record([bob], 1, 1), [alice])
    const second = await signRotation(record([carol], 1, 2), [bob])
    await store.adopt(first)
    await store.adopt(second)
    const stored = JSON.parse(await fs.readFile(path.join(data, 'trust.json'), 'utf8')) as unknown
    expect(stored).toEqual({ apps: { kv: { publishers: [carol.id], threshold: 1, sequence: 2 } } })

    // the original file put back over the store: the kept chain is adopted again
    const replaced = await TrustStore.open(data, { seed: file, replace: true })
    expect(replaced.seeded).toBe(true)
    expect(replaced.replayed.map(r => r.record.sequence)).toEqual([1, 2])
    expect(replaced.store.policy.forApp('kv')).toEqual({ publishers: [carol.id], threshold: 1, sequence: 2 })
    expect(replaced.problems).toEqual([])

    // a crash after the record was written but before trust.json: the record wins on start
    await fs.writeFile(path.join(data, 'trust.json'), JSON.stringify(trust([bob], 1, 1).toJSON()))
    const recovered = await TrustStore.open(data)
    expect(recovered.replayed.map(r => r.record.sequence)).toEqual([2])
    expect(recovered.store.policy.forApp('kv')?.sequence).toBe(2)
    expect(recovered.store.rotations('kv').map(r => r.record.sequence)).toEqual([1, 2])

    // an operator who really means to leave the chain replaces the store with keys it does not follow from
    const fresh = path.join(path.dirname(file), 'fresh.json')
    await fs.writeFile(fresh, JSON.stringify(trust([mallory], 1).toJSON()))
    const left = await TrustStore.open(data, { seed: fresh, replace: true })
    expect(left.store.policy.forApp('kv')).toEqual({ publishers: [mallory.id], threshold: 1, sequence: 0 })
    expect(left.problems.join('\n')).toMatch(/does not follow on/)
    // and a rotation of the new chain replaces the files of the old one
    await left.store.adopt(await signRotation(record([alice], 1, 1), [mallory]))
    const reopened = await TrustStore.open(data)
    expect(reopened.problems).toEqual([])
    expect(reopened.store.policy.forApp('kv')).toEqual({ publishers: [alice.id], threshold: 1, sequence: 1 })
  })

  it('a peer seeded with the rotated policy itself takes the rotation as known, and an unreadable file as a problem', async () => {
    const { data, file } = await seededDir(trust([bob], 1, 1))
    const { store } = await TrustStore.open(data, { seed: file })
    expect((await store.adopt(await signRotation(record([bob], 1, 1), [alice]))).kind).toBe('known')
    await fs.mkdir(path.join(data, 'rotations', 'kv'), { recursive: true })
    await fs.writeFile(path.join(data, 'rotations', 'kv', '2.cbor'), 'garbage')
    const reopened = await TrustStore.open(data)
    expect(reopened.problems.join('\n')).toMatch(/2\.cbor/)
    expect(reopened.store.policy.forApp('kv')?.sequence).toBe(1)
  })

  it('serialises concurrent adoptions: of two rotations to one sequence, exactly one wins', async () => {
    const { data, file } = await seededDir(trust([alice], 1))
    const { store } = await TrustStore.open(data, { seed: file })
    const results = await Promise.allSettled([
      store.adopt(await signRotation(record([bob], 1, 1), [alice])),
      store.adopt(await signRotation(record([carol], 1, 1), [alice]))
    ])
    expect(results.filter(r => r.status === 'fulfilled')).toHaveLength(1)
    expect(results.filter(r => r.status === 'rejected').map(r => r.reason.name)).toEqual(['RotationOutdatedError'])
  })

  it('the rotation race (not defended): a thief holding a threshold rotates first; the owners\' rotation is refused, and only a new trust file takes the app back', async () => {
    // alice's key (the whole threshold) is stolen; the thief rotates kv to his own key before the owners rotate it to bob's
    const { data, file } = await seededDir(trust([alice], 1))
    const { store } = await TrustStore.open(data, { seed: file })
    expect((await store.adopt(await signRotation(record([mallory], 1, 1), [alice]))).kind).toBe('new')
    await expect(store.adopt(await signRotation(record([bob], 1, 1), [alice]))).rejects.toThrow(RotationOutdatedError)
    await expect(store.adopt(await signRotation(record([bob], 1, 2), [alice]))).rejects.toThrow(ThresholdNotMetError)
    expect(store.policy.forApp('kv')).toEqual({ publishers: [mallory.id], threshold: 1, sequence: 1 })
    const byThief = await release([mallory])
    const byOwners = await release([bob])
    await expect(verifySignedRelease(byThief.signed, { trust: store.policy, clock })).resolves.toBeDefined()
    await expect(verifySignedRelease(byOwners.signed, { trust: store.policy, clock })).rejects.toThrow(ThresholdNotMetError)

    // the way back: a new trust file, at a sequence at least the thief's, given with --replace-trust
    const fresh = path.join(path.dirname(file), 'fresh.json')
    await fs.writeFile(fresh, JSON.stringify(trust([bob], 1, 1).toJSON()))
    const replaced = await TrustStore.open(data, { seed: fresh, replace: true })
    expect(replaced.store.policy.forApp('kv')).toEqual({ publishers: [bob.id], threshold: 1, sequence: 1 })
    await expect(verifySignedRelease(byOwners.signed, { trust: replaced.store.policy, clock })).resolves.toBeDefined()
    await expect(verifySignedRelease(byThief.signed, { trust: replaced.store.policy, clock })).rejects.toThrow(ThresholdNotMetError)
  })

  it('a rotation to a key nobody holds (not defended): no release or rotation can be signed any more, until a new trust file', async () => {
    const { data, file } = await seededDir(trust([alice], 1))
    const { store } = await TrustStore.open(data, { seed: file })
    // a mistyped key: a valid public key whose private key nobody has
    const lost = (await generatePublisherKey()).id
    expect((await store.adopt(await signRotation({ ...record([], 1, 1), publishers: [lost] }, [alice]))).kind).toBe('new')
    expect(store.policy.forApp('kv')).toEqual({ publishers: [lost], threshold: 1, sequence: 1 })
    // the old key no longer counts, for a release or for the rotation that would repair it
    await expect(verifySignedRelease((await release([alice])).signed, { trust: store.policy, clock })).rejects.toThrow(ThresholdNotMetError)
    await expect(store.adopt(await signRotation(record([alice], 1, 2), [alice]))).rejects.toThrow(ThresholdNotMetError)
    const fresh = path.join(path.dirname(file), 'fresh.json')
    await fs.writeFile(fresh, JSON.stringify(trust([alice], 1, 1).toJSON()))
    const replaced = await TrustStore.open(data, { seed: fresh, replace: true })
    await expect(verifySignedRelease((await release([alice])).signed, { trust: replaced.store.policy, clock })).resolves.toBeDefined()
  })
})

describe('the release book after a rotation', () => {
  it('drops releases not started that the new policy no longer admits; co-signed by the new keys they come back', async () => {
    let policy = trust([alice], 1)
    const dir = await tempDir()
    const book = new ReleaseBook({ dir, trust: () => policy, floor: () => '1.0.0', clock })
    await book.load()
    const old = await release([alice])
    const both = await release([alice, bob], '2.1.0')
    expect((await book.consider(old.signed)).kind).toBe('new')
    expect((await book.consider(both.signed)).kind).toBe('new')
    await book.setState(old.id.toString(), 'staged')

    policy = policy.withApp('kv', { publishers: [bob.id], threshold: 1, sequence: 1 })
    // admitted under alice alone, both entries kept only alice's signature: both go
    const dropped = await book.dropUntrusted('kv')
    expect(dropped.map(e => e.id).sort()).toEqual([old.id.toString(), both.id.toString()].sort())
    expect(book.get(old.id.toString())).toBeUndefined()
    const reloaded = new ReleaseBook({ dir, trust: () => policy, floor: () => '1.0.0', clock })
    expect(await reloaded.load()).toEqual([])
    expect(reloaded.list()).toEqual([])
    // alice's signature alone is refused now; with bob's it is admitted again
    expect((await book.consider(old.signed)).kind).toBe('ignored')
    expect((await book.consider(await coSign(old.signed, bob))).kind).toBe('new')
    // an active release is never dropped
    await book.setState(old.id.toString(), 'active')
    policy = policy.withApp('kv', { publishers: [carol.id], threshold: 1, sequence: 2 })
    expect(await book.dropUntrusted('kv')).toEqual([])
  })
})

describe('key files as publishers', () => {
  it('name the public key, also of an encrypted file without its passphrase', async () => {
    const dir = await tempDir()
    await writeKeyFile(path.join(dir, 'plain.key'), bob)
    await writeKeyFile(path.join(dir, 'secret.key'), carol, 'hunter2')
    expect(await readKeyFilePublicKey(path.join(dir, 'plain.key'))).toBe(bob.id)
    expect(await readKeyFilePublicKey(path.join(dir, 'secret.key'))).toBe(carol.id)
    await expect(readKeyFilePublicKey(path.join(dir, 'missing.key'))).rejects.toThrow(/cannot read/)
  })
})

describe('policies and their JSON', () => {
  it('write sequence only when a rotation happened, so seed hashes of unrotated stores do not change', () => {
    expect(trust([alice], 1).toJSON()).toEqual({ apps: { kv: { publishers: [alice.id], threshold: 1 } } })
    expect(trust([alice], 1, 3).toJSON().apps.kv?.sequence).toBe(3)
    expect(() => TrustPolicy.parse({ apps: { kv: { publishers: [alice.id], threshold: 1, sequence: -1 } } })).toThrow(/sequence/)
  })
})

describe('status beats', () => {
  it('carry the trust sequences of rotated apps, bounded', async () => {
    const { decodeBeat, encodeBeat } = await import('../../src/net/index.js')
    const base = { v: 1 as const, seq: 1, app: 'kv', version: '1.0.0', state: 'running' as const, labels: {}, addrs: [], heads: {}, held: [] }
    expect(decodeBeat(encodeBeat({ ...base, trust: { kv: 2 } })).trust).toEqual({ kv: 2 })
    // an older peer's beat has no trust field: read as "no rotation"
    expect(decodeBeat(encodeBeat(base)).trust).toBeUndefined()
    expect(() => decodeBeat(dagCbor.encode({ ...base, trust: { kv: -1 } }))).toThrow(/trust/)
    expect(() => decodeBeat(dagCbor.encode({ ...base, trust: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`app${i}`, 1])) }))).toThrow(/at most 32 apps/)
  })
})

describe('taking in a sync answer', () => {
  /**
   * The daemon's own intake of a sync answer: its local parts opened on a data directory
   * seeded with alice's policy (the trust store, the release book, trust updates, the
   * event log), and the admission and anti-entropy it wires to them (daemon/parts.ts);
   * only the peer that answers is the test's, handing over `frames`.
   */
  async function syncedWith (frames: Uint8Array[]): Promise<{ trust: TrustPolicy, book: ReleaseBook, turnedDown: TurnedDown, events: Array<{ type: string, message: string }> }> {
    const { data, file } = await seededDir(trust([alice], 1))
    const local = await openLocalParts(resolveDaemonOptions({ data, trust: file, app: 'kv' }), clock)
    try {
      const { book, trustUpdates, pauses, turnedDown, events, metrics, trustStore, nodeState } = local
      const admission = new Admission({ book, trustUpdates, pauses, turnedDown, events, metrics, heardRelease: () => {} })
      const node = { getPeers: () => [], addEventListener: () => {}, removeEventListener: () => {} }
      const antiEntropy = new AntiEntropy({ node, sync: { sync: async () => frames }, admission, book, trustStore, nodeState, turnedDown, events, metrics, clock })
      await antiEntropy.syncWith(peerIdFromString('12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8'))
      return { trust: trustStore.policy, book, turnedDown, events: (await fs.readFile(local.dataDir.events, 'utf8').then(t => t, () => '')).split('\n').filter(Boolean).map(l => JSON.parse(l) as { type: string, message: string }) }
    } finally {
      await closeLocalParts(local)
    }
  }

  let frames: Record<string, Uint8Array>
  let ids: Record<'byCarol' | 'byBob', string>
  beforeAll(async () => {
    const rotation1 = await signRotation(record([bob], 1, 1), [alice])
    const rotation2 = await signRotation(record([carol], 1, 2), [bob])
    const byCarol = await release([carol], '3.0.0')
    const byBob = await release([bob], '2.0.0')
    const revocation = await signRevocation({ app: 'kv', release: byBob.id, issued: new Date(NOW).toISOString(), reason: 'by bob' }, [bob])
    const forgedRelease = { record: byCarol.signed.record, signatures: [{ key: alice.id, sig: new Uint8Array(64) }] }
    ids = { byCarol: byCarol.id.toString(), byBob: byBob.id.toString() }
    frames = {
      rotation1: encodeReleasesTopicMessage({ type: 'rotation', rotation: rotation1 }),
      rotation2: encodeReleasesTopicMessage({ type: 'rotation', rotation: rotation2 }),
      byCarol: encodeReleasesTopicMessage({ type: 'release', signed: byCarol.signed }),
      revocationByBob: encodeReleasesTopicMessage({ type: 'revocation', revocation }),
      forged: encodeReleasesTopicMessage({ type: 'release', signed: forgedRelease })
    }
  })

  it('in the order peers send (revocations, rotations, releases), a revocation made under an intermediate policy counts', async () => {
    const { trust, book, events } = await syncedWith([frames.revocationByBob, frames.rotation1, frames.rotation2, frames.byCarol] as Uint8Array[])
    expect(trust.forApp('kv')?.sequence).toBe(2)
    // bob's revocation was refused at sequence 0, and taken after rotation 1, before rotation 2 removed bob
    expect(book.revocations('kv').map(r => r.record.release.toString())).toEqual([ids.byBob])
    expect(events.filter(e => e.type === 'release-revoked').map(e => e.message)).toEqual([expect.stringContaining(`release ${ids.byBob} of kv was revoked by its publishers`)])
    expect(book.get(ids.byCarol)?.signed.record.version).toBe('3.0.0')
  })

  it('in any order, every rotation is adopted and the release signed by the final keys taken', async () => {
    const names = ['rotation1', 'rotation2', 'byCarol']
    const orders = names.flatMap(a => names.filter(b => b !== a).map(b => [a, b, names.find(c => c !== a && c !== b) as string]))
    expect(orders).toHaveLength(6)
    for (const order of orders) {
      const { trust, book } = await syncedWith(order.map(n => frames[n] as Uint8Array))
      expect(trust.forApp('kv')?.sequence, order.join(', ')).toBe(2)
      expect(book.get(ids.byCarol)?.state, order.join(', ')).toBeDefined()
    }
  })

  it('a forged frame ends the intake', async () => {
    const { trust, book, turnedDown, events } = await syncedWith([frames.byCarol, frames.forged, frames.rotation1] as Uint8Array[])
    // the forgery was judged (and named) …
    expect(events.filter(e => e.type === 'release-rejected').map(e => e.message)).toEqual([expect.stringMatching(/^refused a release via sync with 12D3KooW\w+: .*invalid/)])
    // … and nothing after it was: rotation 1, next in the answer, was never adopted
    expect(trust.forApp('kv')?.sequence).toBe(0)
    expect(book.get(ids.byCarol)).toBeUndefined()
    expect(turnedDown.has(ids.byCarol)).toBe(true)
  })
})
