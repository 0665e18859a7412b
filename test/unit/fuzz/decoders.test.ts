import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../../src/clock.js'
import { parseDuration } from '../../../src/duration.js'
import { UpgossipError } from '../../../src/errors.js'
import { parseManifest, readCar } from '../../../src/package/index.js'
import {
  TrustPolicy, createRelease, decodeKeyFile, decodeSignedRelease, encodeSignedRelease, generatePublisherKey, readBundle, releaseId,
  verifyBundle, writeBundle
} from '../../../src/release/index.js'
import type { PublisherKey, SignedRelease } from '../../../src/release/index.js'
import { MemoryBlockStore } from '../../../src/store/index.js'
import { samplePackage, tempDir } from '../../helpers.js'
import { RUNS, SLOW_RUNS } from './runs.js'
import { valueOrNamedError } from './support.js'

/** Run `fn`; a throw must be one of our named errors, never a crash or an anonymous Error. */
async function onlyNamedErrors (fn: () => unknown): Promise<void> {
  await valueOrNamedError(fn)
}

const NOW = Date.parse('2026-11-27T10:00:00Z')
let key: PublisherKey
let signed: SignedRelease
let bundle: Uint8Array
let trust: TrustPolicy

beforeAll(async () => {
  key = await generatePublisherKey()
  const store = new MemoryBlockStore()
  const dir = await samplePackage(await tempDir(), '1.2.3', {}, { 'data.txt': 'some data '.repeat(50) })
  const made = await createRelease({ dir, store, keys: [key], clock: fixedClock(NOW) })
  signed = made.signed
  bundle = await writeBundle(signed, store, made.blocks)
  trust = TrustPolicy.parse({ apps: { kv: { publishers: [key.id], threshold: 1 } } })
})

const semverArb = fc.tuple(fc.nat(99), fc.nat(99), fc.nat(99)).map(([a, b, c]) => `${a}.${b}.${c}`)

describe('decoders never crash and never throw unnamed errors', () => {
  it('signed releases from arbitrary bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async bytes => {
      await onlyNamedErrors(() => decodeSignedRelease(bytes))
    }), { numRuns: RUNS })
  })

  it('signed releases from arbitrary dag-cbor values', async () => {
    await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async value => {
      let bytes: Uint8Array
      try {
        bytes = dagCbor.encode(value)
      } catch {
        return // not encodable (e.g. -0); nothing reaches the decoder
      }
      await onlyNamedErrors(() => decodeSignedRelease(bytes))
    }), { numRuns: RUNS })
  })

  it('signed releases with one byte changed', async () => {
    const good = encodeSignedRelease(signed)
    await fc.assert(fc.asyncProperty(fc.nat(good.byteLength - 1), fc.integer({ min: 1, max: 255 }), async (at, mask) => {
      const bytes = Uint8Array.from(good)
      bytes[at] = (bytes[at] as number) ^ mask
      await onlyNamedErrors(() => decodeSignedRelease(bytes))
    }), { numRuns: RUNS })
  })

  it('manifests, trust files and key files from arbitrary JSON', async () => {
    await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async value => {
      await onlyNamedErrors(() => parseManifest(value))
      await onlyNamedErrors(() => TrustPolicy.parse(value))
      await onlyNamedErrors(async () => await decodeKeyFile(JSON.stringify(value) ?? 'null'))
    }), { numRuns: RUNS })
  })

  it('durations from arbitrary strings', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 24 }), async text => {
      await onlyNamedErrors(() => parseDuration(text))
    }), { numRuns: RUNS })
  })

  it('releases-topic messages, revocations, status beats and journals from arbitrary bytes', async () => {
    const { decodeReleasesTopicMessage, decodeRevocation } = await import('../../../src/release/index.js')
    const { decodeBeat } = await import('../../../src/net/index.js')
    const { readJournal } = await import('../../../src/upgrade/index.js')
    const fs = await import('node:fs/promises')
    const path = await import('node:path')
    const dir = await tempDir()
    const journal = path.join(dir, 'journal.json')
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), fc.jsonValue({ maxDepth: 3 }), async (bytes, json) => {
      await onlyNamedErrors(() => decodeReleasesTopicMessage(bytes))
      await onlyNamedErrors(() => decodeRevocation(bytes))
      await onlyNamedErrors(() => decodeBeat(bytes))
      let cbor: Uint8Array | undefined
      try { cbor = dagCbor.encode(json) } catch {}
      if (cbor != null) {
        await onlyNamedErrors(() => decodeReleasesTopicMessage(cbor))
        await onlyNamedErrors(() => decodeBeat(cbor))
      }
      await fs.writeFile(journal, bytes)
      await onlyNamedErrors(async () => await readJournal(journal))
      await fs.writeFile(journal, JSON.stringify(json) ?? 'null')
      await onlyNamedErrors(async () => await readJournal(journal))
    }), { numRuns: RUNS })
  })

  it('status beats with arbitrary optional fields decode within bounds or are refused by name', async () => {
    const { decodeBeat, MAX_WAITING_REASON } = await import('../../../src/net/index.js')
    const base = { v: 1, seq: 1, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [] }
    const waitingArb = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.record({ id: fc.string({ maxLength: 140 }), on: fc.string({ maxLength: 70 }), reason: fc.string({ maxLength: MAX_WAITING_REASON + 10 }) }, { requiredKeys: ['id', 'on'] })
    )
    await fc.assert(fc.asyncProperty(waitingArb, fc.option(fc.jsonValue({ maxDepth: 2 })), async (waiting, failed) => {
      let bytes: Uint8Array
      try {
        bytes = dagCbor.encode({ ...base, waiting, ...(failed == null ? {} : { failed }) })
      } catch {
        return
      }
      await onlyNamedErrors(() => {
        const beat = decodeBeat(bytes)
        if (beat.waiting != null) {
          expect(beat.waiting.on).toMatch(/^[a-z][a-z0-9-]{0,63}$/)
          expect(beat.waiting.id.length).toBeLessThanOrEqual(128)
          expect((beat.waiting.reason ?? '').length).toBeLessThanOrEqual(MAX_WAITING_REASON)
        }
      })
    }), { numRuns: RUNS })
  })

  it('CARs and bundles from arbitrary bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async bytes => {
      await onlyNamedErrors(async () => await readCar(bytes))
      await onlyNamedErrors(async () => await readBundle(bytes))
    }), { numRuns: RUNS })
  })
})

describe('codec round-trips', () => {
  it('records keep their content and id through encode/decode', async () => {
    await fc.assert(fc.asyncProperty(semverArb, fc.nat(), fc.integer({ min: 1, max: 1000 }), fc.boolean(), async (version, size, protocol, withPrevious) => {
      const record = {
        ...signed.record,
        version,
        size,
        previous: withPrevious ? await releaseId(signed.record) : null,
        manifest: { app: 'kv', version, main: 'server.js', protocol }
      }
      const decoded = decodeSignedRelease(encodeSignedRelease({ record, signatures: signed.signatures }))
      expect((await releaseId(decoded.record)).toString()).toBe((await releaseId(record)).toString())
      expect(decoded.record.version).toBe(version)
      expect(decoded.record.size).toBe(size)
      expect(decoded.record.previous?.toString()).toBe(record.previous?.toString())
    }), { numRuns: RUNS })
  })
})

describe('bundle integrity', () => {
  it('flipping any single byte of a bundle makes verify fail, or leaves the verified content unchanged', async () => {
    const clock = fixedClock(NOW)
    const original = await verifyBundle(bundle, { trust, clock })
    const files = async (v: typeof original): Promise<string[]> => {
      const out: string[] = []
      for (const cid of v.packageBlocks) out.push(`${cid.toString()}:${Buffer.from(await v.bundle.blocks.get(cid)).toString('base64')}`)
      return out
    }
    const expected = await files(original)
    await fc.assert(fc.asyncProperty(fc.nat(bundle.byteLength - 1), fc.integer({ min: 1, max: 255 }), async (at, mask) => {
      const bytes = Uint8Array.from(bundle)
      bytes[at] = (bytes[at] as number) ^ mask
      let result: typeof original
      try {
        result = await verifyBundle(bytes, { trust, clock })
      } catch (err) {
        expect(err).toBeInstanceOf(UpgossipError)
        return
      }
      expect(result.id.toString()).toBe(original.id.toString())
      expect(await files(result)).toEqual(expected)
    }), { numRuns: SLOW_RUNS })
  })
})

describe('bundle integrity, exhaustively', () => {
  it('every byte position, flipped by one bit, fails verify or leaves the content unchanged', async () => {
    const clock = fixedClock(NOW)
    const original = await verifyBundle(bundle, { trust, clock })
    let refused = 0
    for (let at = 0; at < bundle.byteLength; at++) {
      const bytes = Uint8Array.from(bundle)
      bytes[at] = (bytes[at] as number) ^ 0x01
      try {
        const result = await verifyBundle(bytes, { trust, clock })
        expect(result.id.toString()).toBe(original.id.toString())
        expect(result.packageBlocks.map(String)).toEqual(original.packageBlocks.map(String))
      } catch (err) {
        expect(err).toBeInstanceOf(UpgossipError)
        refused++
      }
    }
    // nearly every byte is covered by a hash or a signature; the few others are CAR framing
    expect(refused).toBeGreaterThan(bundle.byteLength * 0.9)
  })
})
