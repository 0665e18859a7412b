/**
 * Admission: every releases-topic message, from gossip or sync, gets one verdict, and
 * the verdict says whose fault a refusal is — only the sender's is rejected (gossip
 * scores it down). A real release book on disk; trust updates, events and metrics are
 * stubs handed in through the components object.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.js'
import { Admission, gossipResult } from '../../src/daemon/admission.js'
import type { AdmissionComponents } from '../../src/daemon/admission.js'
import { TurnedDown } from '../../src/daemon/turned-down.js'
import { ReleaseBook, RevocationAppMismatchError, ThresholdNotMetError, TrustPolicy, createRelease, encodeReleasesTopicMessage, generatePublisherKey, releaseId, signRevocation, signRotation } from '../../src/release/index.js'
import type { PublisherKey, SignedRelease } from '../../src/release/index.js'
import { MemoryBlockStore } from '../../src/store/index.js'
import { samplePackage, tempDir } from '../helpers.js'

const NOW = Date.parse('2026-06-01T00:00:00Z')

interface Harness {
  admission: Admission
  turnedDown: TurnedDown
  refused: string[]
  logged: string[]
  heard: number
}

async function harness (key: PublisherKey, trustUpdates: Partial<AdmissionComponents['trustUpdates']> = {}): Promise<Harness> {
  const trust = TrustPolicy.parse({ apps: { kv: { publishers: [key.id], threshold: 1 } } })
  const book = new ReleaseBook({ dir: await tempDir(), trust: () => trust, floor: () => undefined, clock: fixedClock(NOW) })
  await book.load()
  const turnedDown = new TurnedDown()
  const refused: string[] = []
  const logged: string[] = []
  const counts = { heard: 0 }
  const log = (level: string) => (type: string) => { logged.push(`${level}:${type}`) }
  const admission = new Admission({
    book,
    trustUpdates: {
      applyRevocation: trustUpdates.applyRevocation ?? (async () => 'new'),
      applyRotation: trustUpdates.applyRotation ?? (async () => ({ kind: 'known', id: 'rot', app: 'kv', policy: { publishers: [key.id], threshold: 1, sequence: 0 } }))
    },
    pauses: { apply: async () => ({ kind: 'new', id: 'pause', signers: [] }) },
    turnedDown,
    events: { info: log('info'), warn: log('warn'), error: log('error') },
    metrics: { refused: name => { refused.push(name) } },
    heardRelease: () => { counts.heard++ }
  })
  return { admission, turnedDown, refused, logged, get heard () { return counts.heard } }
}

async function release (key: PublisherKey, version = '1.0.0'): Promise<SignedRelease> {
  const made = await createRelease({ dir: await samplePackage(await tempDir(), version), store: new MemoryBlockStore(), keys: [key], clock: fixedClock(NOW - 1000) })
  return made.signed
}

function forge (signed: SignedRelease): SignedRelease {
  const sig = signed.signatures[0]
  if (sig == null) throw new Error('no signature')
  const bad = sig.sig.slice()
  bad[0] = (bad[0] ?? 0) ^ 0xff
  return { ...signed, signatures: [{ key: sig.key, sig: bad }] }
}

describe('admission', () => {
  it('admits a trusted release from gossip (accept, the network is heard) and knows it the second time (ignore)', async () => {
    const key = await generatePublisherKey()
    const h = await harness(key)
    const bytes = encodeReleasesTopicMessage({ type: 'release', signed: await release(key) })
    const first = await h.admission.take(bytes, { kind: 'gossip', from: 'peerA' })
    expect(first.verdict.kind).toBe('new')
    expect(gossipResult(first.verdict)).toBe('accept')
    expect(h.logged).toContain('info:release-admitted')
    const again = await h.admission.take(bytes, { kind: 'gossip', from: 'peerB' })
    expect(again.verdict.kind).toBe('known')
    expect(gossipResult(again.verdict)).toBe('ignore')
    expect(h.heard).toBe(2)
  })

  it('rejects a forged release — the sender\'s fault — counts it and remembers the id', async () => {
    const key = await generatePublisherKey()
    const h = await harness(key)
    const intake = await h.admission.take(encodeReleasesTopicMessage({ type: 'release', signed: forge(await release(key)) }), { kind: 'sync', from: 'peerA' })
    expect(intake.verdict.kind).toBe('rejected')
    expect(gossipResult(intake.verdict)).toBe('reject')
    expect(h.refused).toEqual(['ThresholdNotMetError'])
    expect(h.logged).toContain('warn:release-rejected')
    expect(intake.verdict.kind === 'rejected' && intake.verdict.id != null && h.turnedDown.has(intake.verdict.id)).toBe(true)
    // sync heard no gossip
    expect(h.heard).toBe(0)
  })

  it('ignores a release signed by keys it does not trust yet, counts the refusal, and says a rotation may admit it (retry)', async () => {
    const key = await generatePublisherKey()
    const other = await generatePublisherKey()
    const h = await harness(key)
    const intake = await h.admission.take(encodeReleasesTopicMessage({ type: 'release', signed: await release(other) }), { kind: 'sync', from: 'peerA' })
    expect(intake.verdict.kind).toBe('ignored')
    expect(intake.retry).toBe(true)
    // counted by name (over sync nothing else says it came), not logged: it is not the sender's fault
    expect(h.refused).toEqual(['ThresholdNotMetError'])
    expect(h.logged).toEqual([])
  })

  it('rejects bytes that are not a message, and ignores a message type from a newer peer', async () => {
    const key = await generatePublisherKey()
    const h = await harness(key)
    const garbage = await h.admission.take(new Uint8Array([1, 2, 3]), { kind: 'gossip', from: 'peerA' })
    expect(garbage.verdict.kind).toBe('rejected')
    const newer = await h.admission.take(dagCbor.encode({ type: 'from-the-future', x: 1 }), { kind: 'gossip', from: 'peerA' })
    expect(newer.verdict.kind).toBe('ignored')
    expect(h.refused).toContain(garbage.verdict.kind === 'rejected' ? garbage.verdict.error.name : '')
  })

  it('maps trust updates: a new revocation is accepted, a forged one rejected, an unforged threshold refusal ignored with retry, this peer\'s own trouble ignored', async () => {
    const key = await generatePublisherKey()
    const signed = await release(key)
    const revocation = await signRevocation({ app: 'kv', release: await releaseId(signed.record), issued: new Date(NOW).toISOString(), reason: 'test' }, [key])
    const bytes = encodeReleasesTopicMessage({ type: 'revocation', revocation })
    const outcomes: Array<() => Promise<'new' | 'known'>> = [
      async () => 'new',
      async () => { throw new ThresholdNotMetError('forged', { forged: true }) },
      async () => { throw new ThresholdNotMetError('not yet') },
      async () => { throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }) }
    ]
    const seen: Array<[string, boolean]> = []
    for (const apply of outcomes) {
      const h = await harness(key, { applyRevocation: apply })
      const intake = await h.admission.take(bytes, { kind: 'gossip', from: 'peerA' })
      seen.push([gossipResult(intake.verdict), intake.retry])
    }
    expect(seen).toEqual([['accept', false], ['reject', false], ['ignore', true], ['ignore', false]])
  })

  it('says when a rotation was adopted, so a sync tries the frames it kept aside again', async () => {
    const key = await generatePublisherKey()
    const h = await harness(key, { applyRotation: async () => ({ kind: 'new', id: 'bafyrotation', app: 'kv', policy: { publishers: [key.id], threshold: 1, sequence: 1 }, previous: { publishers: [key.id], threshold: 1, sequence: 0 }, signers: [key.id] }) })
    const rotation = await signRotation({ app: 'kv', sequence: 1, publishers: [key.id], threshold: 1, issued: new Date(NOW).toISOString(), reason: '' }, [key])
    const intake = await h.admission.take(encodeReleasesTopicMessage({ type: 'rotation', rotation }), { kind: 'sync', from: 'peerA' })
    expect(intake).toMatchObject({ verdict: { kind: 'new', id: 'bafyrotation' }, rotated: true, retry: false })
  })
})

describe('revocations across apps', () => {
  it('a revocation signed for one app never revokes a release of another', async () => {
    const key = await generatePublisherKey()
    const trust = TrustPolicy.parse({ apps: { kv: { publishers: [key.id], threshold: 1 }, other: { publishers: [key.id], threshold: 1 } } })
    const book = new ReleaseBook({ dir: await tempDir(), trust: () => trust, floor: () => undefined, clock: fixedClock(NOW) })
    await book.load()
    const signed = await release(key)
    const id = await releaseId(signed.record)
    const asOther = await signRevocation({ app: 'other', release: id, issued: new Date(NOW).toISOString(), reason: 'not yours' }, [key])
    const asKv = await signRevocation({ app: 'kv', release: id, issued: new Date(NOW).toISOString(), reason: 'bad build' }, [key])

    // heard before the release: kept, but it does not turn the kv release away
    expect(await book.revoke(asOther)).toBe(true)
    const screened = await book.screen(signed)
    expect(screened.verdict.kind).toBe('new')
    await screened.stored
    expect(book.isRevoked(id.toString())).toBe(false)
    // once the release is known, another app's revocation of it is refused by name
    await expect(book.revoke(asOther)).rejects.toThrow(RevocationAppMismatchError)
    expect(book.get(id.toString())?.state).not.toBe('revoked')
    // its own app's revocation takes the place of the other one
    expect(await book.revoke(asKv)).toBe(true)
    expect(book.isRevoked(id.toString())).toBe(true)
    expect(book.get(id.toString())?.reason).toBe('revoked: bad build')
  })
})
