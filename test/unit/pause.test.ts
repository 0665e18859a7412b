/**
 * Rollout pause records: the codec and its bounds, the signature domain of their own, the
 * threshold of the app's publishers, forgeries, and the per-release sequence that makes
 * replays and out-of-order records harmless — in the record and in the durable pause book
 * (also across a reload), and through admission to the verdict gossip acts on.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { beforeAll, describe, expect, it } from 'vitest'
import { Admission, gossipResult } from '../../src/daemon/admission.js'
import { RolloutPauses } from '../../src/daemon/rollout-pauses.js'
import { TurnedDown } from '../../src/daemon/turned-down.js'
import {
  MalformedPauseError, PAUSE_SIGNING_DOMAIN, PauseAppMismatchError, PauseBook, PauseOutdatedError, REVOCATION_SIGNING_DOMAIN, ThresholdNotMetError,
  TrustPolicy, UntrustedAppError, decodePause, decodeReleasesTopicMessage, describePause, encodePause, encodeReleasesTopicMessage, generatePublisherKey,
  nextPauseSequence, pauseId, pauseSupersedes, revocationId, shortKey, signPause, signRevocation, signingMessage, verifyPause, verifyRevocation
} from '../../src/release/index.js'
import type { PauseRecord, PublisherKey, ReleaseBook, SignedPause } from '../../src/release/index.js'
import { tempDir } from '../helpers.js'

let alice: PublisherKey
let bob: PublisherKey
let mallory: PublisherKey
const RELEASE = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
const ISSUED = '2026-11-27T10:00:00.000Z'

function trust (keys: PublisherKey[], threshold: number): TrustPolicy {
  return TrustPolicy.parse({ apps: { kv: { publishers: keys.map(k => k.id), threshold } } })
}

function record (action: 'pause' | 'resume', sequence: number, extra: Partial<PauseRecord> = {}): PauseRecord {
  return { app: 'kv', release: RELEASE, action, sequence, issued: ISSUED, reason: action === 'pause' ? 'p99 doubled' : '', ...extra }
}

beforeAll(async () => {
  [alice, bob, mallory] = await Promise.all([generatePublisherKey(), generatePublisherKey(), generatePublisherKey()])
})

describe('pause records', () => {
  it('round-trip through their codec and the releases topic, and say who paused and why', async () => {
    const signed = await signPause(record('pause', 1), [alice, bob])
    const back = decodePause(encodePause(signed))
    expect(back.record.release.equals(RELEASE)).toBe(true)
    expect(back.record).toMatchObject({ app: 'kv', action: 'pause', sequence: 1, reason: 'p99 doubled' })
    expect(back.signatures.map(s => s.key)).toEqual([alice.id, bob.id])
    const message = decodeReleasesTopicMessage(encodeReleasesTopicMessage({ type: 'pause', pause: signed }))
    expect(message.type).toBe('pause')
    const reason = describePause(signed)
    expect(reason).toContain(shortKey(alice.id))
    expect(reason).toContain('p99 doubled')
    expect(reason).toContain('rollout resume')
  })

  it('refuses malformed bytes and records with named errors', async () => {
    expect(() => decodePause(randomBytes(40))).toThrow(MalformedPauseError)
    expect(() => decodePause(new Uint8Array(64 * 1024 + 1))).toThrow(/over the/)
    const good = await signPause(record('pause', 1), [alice])
    const bad = (r: Record<string, unknown>): Uint8Array => dagCbor.encode({ record: { ...record('pause', 1), ...r }, signatures: good.signatures })
    expect(() => decodePause(bad({ action: 'stop' }))).toThrow(MalformedPauseError)
    expect(() => decodePause(bad({ sequence: 0 }))).toThrow(/sequence/)
    expect(() => decodePause(bad({ extra: 1 }))).toThrow(MalformedPauseError)
    expect(() => decodeReleasesTopicMessage(dagCbor.encode({ type: 'pause', pause: encodePause(good), rotation: new Uint8Array(1) }))).toThrow(/unknown keys/)
    await expect(signPause(record('pause', 1, { app: 'Not An App' }), [alice])).rejects.toThrow(MalformedPauseError)
  })

  it('need a threshold of the app\'s publishers; a forged signature is the sender\'s fault, too few or untrusted ones are not', async () => {
    const policy = trust([alice, bob], 2)
    const both = await signPause(record('pause', 1), [alice, bob])
    expect((await verifyPause(both, policy)).signers.sort()).toEqual([alice.id, bob.id].sort())
    // under the threshold: refused, named, not forged (it may pass under another policy)
    const one = await signPause(record('pause', 1), [alice])
    const under = await verifyPause(one, policy).catch((err: unknown) => err)
    expect(under).toBeInstanceOf(ThresholdNotMetError)
    expect((under as ThresholdNotMetError).fault).toBe('trust')
    // an untrusted key does not count, and is named
    const withMallory = await signPause(record('pause', 1), [alice, mallory])
    await expect(verifyPause(withMallory, policy)).rejects.toThrow(`1 by a key not trusted for kv: ${shortKey(mallory.id)}; if it is a publisher of kv, add it`)
    // a signature that claims bob but does not verify: forged
    const forged: SignedPause = { record: one.record, signatures: [...one.signatures, { key: bob.id, sig: randomBytes(64) }] }
    const error = await verifyPause(forged, policy).catch((err: unknown) => err) as ThresholdNotMetError
    expect(error.forged).toBe(true)
    expect(error.fault).toBe('sender')
    // the record is covered: a changed action or sequence no longer matches the signatures
    const flipped: SignedPause = { record: { ...both.record, action: 'resume' }, signatures: both.signatures }
    expect((await verifyPause(flipped, policy).catch((err: unknown) => err) as ThresholdNotMetError).forged).toBe(true)
    await expect(verifyPause(both, TrustPolicy.parse({ apps: {} }))).rejects.toThrow(UntrustedAppError)
  })

  it('are signed in a domain of their own: a revocation signature never passes for a pause, nor the other way round', async () => {
    const policy = trust([alice], 1)
    const pause = record('pause', 1)
    const id = await pauseId(pause)
    expect(PAUSE_SIGNING_DOMAIN).not.toBe(REVOCATION_SIGNING_DOMAIN)
    const revocationSig = await alice.privateKey.sign(signingMessage(id, REVOCATION_SIGNING_DOMAIN))
    const replayed = await verifyPause({ record: pause, signatures: [{ key: alice.id, sig: revocationSig }] }, policy).catch((err: unknown) => err)
    expect(replayed).toBeInstanceOf(ThresholdNotMetError)
    // a pause signature over the same bytes as a revocation id does not make a revocation
    const revocation = await signRevocation({ app: 'kv', release: RELEASE, issued: ISSUED, reason: '' }, [])
    const pauseSig = await alice.privateKey.sign(signingMessage(await revocationId(revocation.record), PAUSE_SIGNING_DOMAIN))
    await expect(verifyRevocation({ record: revocation.record, signatures: [{ key: alice.id, sig: pauseSig }] }, policy)).rejects.toThrow(ThresholdNotMetError)
  })

  it('supersede by sequence; at the same sequence a pause wins over a resume, then the smaller id, whatever the order', async () => {
    const p1 = { record: record('pause', 1), id: 'b' }
    const r2 = { record: record('resume', 2), id: 'a' }
    expect(pauseSupersedes(r2, p1)).toBe(true)
    expect(pauseSupersedes(p1, r2)).toBe(false)
    const r1 = { record: record('resume', 1), id: 'a' }
    expect(pauseSupersedes(p1, r1)).toBe(true)
    expect(pauseSupersedes(r1, p1)).toBe(false)
    const p1b = { record: record('pause', 1, { reason: 'other' }), id: 'a' }
    expect(pauseSupersedes(p1b, p1)).toBe(true)
    expect(pauseSupersedes(p1, p1b)).toBe(false)
  })
})

describe('the pause book', () => {
  it('keeps the winning record per release durably; replays are known, older and out-of-order ones refused, never re-applied', async () => {
    const dir = await tempDir()
    const policy = trust([alice], 1)
    const book = new PauseBook(path.join(dir, 'pauses'))
    await book.load()
    const pause1 = await signPause(record('pause', 1), [alice])
    const resume2 = await signPause(record('resume', 2), [alice])
    const pause3 = await signPause(record('pause', 3, { reason: 'again' }), [alice])
    expect((await book.take(pause1, policy)).kind).toBe('new')
    expect(book.pausedReason('kv', RELEASE.toString())).toContain('p99 doubled')
    expect(book.pausedReason('other', RELEASE.toString())).toBeUndefined()
    expect((await book.take(pause1, policy)).kind).toBe('known')
    // out of order: pause 3 arrives before resume 2; resume 2 then is older and refused
    expect((await book.take(pause3, policy)).kind).toBe('new')
    await expect(book.take(resume2, policy)).rejects.toThrow(PauseOutdatedError)
    expect(book.pausedReason('kv', RELEASE.toString())).toContain('again')
    // a replay of the first pause does not bring its reason back
    await expect(book.take(pause1, policy)).rejects.toThrow(PauseOutdatedError)
    const resume4 = await signPause(record('resume', 4), [alice])
    expect((await book.take(resume4, policy)).kind).toBe('new')
    expect(book.pausedReason('kv', RELEASE.toString())).toBeUndefined()
    // only the verified signatures are kept; a reload finds the same record
    const again = new PauseBook(path.join(dir, 'pauses'))
    expect(await again.load()).toEqual([])
    expect(again.get('kv', RELEASE.toString())?.record.sequence).toBe(4)
    expect(again.list('kv')).toHaveLength(1)
    await expect(again.take(pause3, policy)).rejects.toThrow(PauseOutdatedError)
    // a damaged file is reported and skipped
    await fs.writeFile(path.join(dir, 'pauses', 'kv', `${RELEASE.toString()}.cbor`), 'garbage')
    const damaged = new PauseBook(path.join(dir, 'pauses'))
    expect(await damaged.load()).toHaveLength(1)
  })

  it('a record signed later wins, even when its signer\'s daemon had not heard of the one before (sequence = time of signing)', async () => {
    const policy = trust([alice], 1)
    const book = new PauseBook(path.join(await tempDir(), 'pauses'))
    const t1 = new Date('2026-12-06T10:00:00.000Z')
    const t2 = new Date('2026-12-06T10:05:00.000Z')
    // the network holds a pause signed at t1; a stale daemon (holding nothing) signs a resume at t2
    const pause = await signPause(record('pause', nextPauseSequence(t1), { issued: t1.toISOString() }), [alice])
    const resume = await signPause(record('resume', nextPauseSequence(t2), { issued: t2.toISOString() }), [alice])
    expect((await book.take(pause, policy)).kind).toBe('new')
    expect((await book.take(resume, policy)).kind).toBe('new')
    expect(book.pausedReason('kv', RELEASE.toString())).toBeUndefined()
    // a signer's clock behind the record its daemon holds still goes one above it
    expect(nextPauseSequence(t1, t2.getTime())).toBe(t2.getTime() + 1)
    // sync lists records by time, whatever offset each names
    const other = await signPause({ ...record('pause', 1, { issued: '2026-12-06T11:00:00.000+02:00' }), release: await pauseId(record('pause', 9)) }, [alice])
    await book.take(other, policy)
    expect(book.list('kv').map(s => s.record.issued)).toEqual(['2026-12-06T11:00:00.000+02:00', t2.toISOString()])
  })

  it('keeps only the signatures that verified', async () => {
    const policy = trust([alice, bob], 1)
    const book = new PauseBook(path.join(await tempDir(), 'pauses'))
    const signed = await signPause(record('pause', 1), [alice])
    const noisy: SignedPause = { record: signed.record, signatures: [{ key: mallory.id, sig: randomBytes(64) }, ...signed.signatures] }
    await book.take(noisy, policy)
    expect(book.get('kv', RELEASE.toString())?.signatures.map(s => s.key)).toEqual([alice.id])
  })
})

describe('pause records through admission', () => {
  async function harness (threshold: number, known?: { app: string }): Promise<{ admission: Admission, pauses: RolloutPauses, refused: string[], changed: string[] }> {
    const policy = trust([alice, bob], threshold)
    const refused: string[] = []
    const changed: string[] = []
    const bookStub = { summary: (id: string) => known != null && id === RELEASE.toString() ? { app: known.app, version: '2.0.0' } : undefined } as unknown as Pick<ReleaseBook, 'summary'>
    const pauses = new RolloutPauses({
      pauses: new PauseBook(path.join(await tempDir(), 'pauses')),
      trustStore: { policy },
      book: bookStub,
      events: { event: () => {} },
      metrics: { refused: name => { refused.push(name) } },
      changes: { changed: () => {} }
    })
    pauses.on('changed', (app, id) => { changed.push(`${app} ${id}`) })
    const admission = new Admission({
      book: { screen: async () => { throw new Error('no releases in this test') } },
      trustUpdates: { applyRevocation: async () => 'new', applyRotation: async () => { throw new Error('no rotations in this test') } },
      pauses,
      turnedDown: new TurnedDown(),
      events: { info: () => {}, warn: () => {}, error: () => {} },
      metrics: { refused: () => {} },
      heardRelease: () => {}
    })
    return { admission, pauses, refused, changed }
  }
  const via = { kind: 'gossip' as const, from: 'peerA' }
  const message = (pause: SignedPause): Uint8Array => encodeReleasesTopicMessage({ type: 'pause', pause })

  it('accepts a valid pause (so gossip forwards it), ignores a known or under-threshold one, rejects a forged one', async () => {
    const h = await harness(2)
    const valid = await signPause(record('pause', 1), [alice, bob])
    const accepted = await h.admission.take(message(valid), via)
    expect(gossipResult(accepted.verdict)).toBe('accept')
    expect(h.changed).toEqual([`kv ${RELEASE.toString()}`])
    expect(gossipResult((await h.admission.take(message(valid), via)).verdict)).toBe('ignore')
    const under = await h.admission.take(message(await signPause(record('resume', 2), [alice])), via)
    expect(gossipResult(under.verdict)).toBe('ignore')
    expect(under.retry).toBe(true)
    const one = await signPause(record('resume', 2), [alice])
    const forged = await h.admission.take(message({ record: one.record, signatures: [...one.signatures, { key: bob.id, sig: randomBytes(64) }] }), via)
    expect(gossipResult(forged.verdict)).toBe('reject')
    const garbage = await h.admission.take(dagCbor.encode({ type: 'pause', pause: randomBytes(30) }), via)
    expect(gossipResult(garbage.verdict)).toBe('reject')
    expect(h.refused).toEqual(['ThresholdNotMetError', 'ThresholdNotMetError'])
    expect(h.pauses.pausedReason('kv', RELEASE.toString())).toContain('p99 doubled')
  })

  it('refuses a pause signed for one app that names a release of another', async () => {
    const h = await harness(1, { app: 'store' })
    await expect(h.pauses.apply(await signPause(record('pause', 1), [alice]), 'test')).rejects.toThrow(PauseAppMismatchError)
    expect(h.refused).toEqual(['PauseAppMismatchError'])
  })
})
