/**
 * Fuzz properties of what a package is made of, as blocks arrive from the swarm or from
 * a bundle: dag-pb links, UnixFS DAGs of any shape (files, directories, sharded
 * directories, symlinks, nodes that are not UnixFS, missing blocks, hostile names), CAR
 * archives and release bundles. A package is read, listed, checked against its record
 * and unpacked, or refused by name; nothing unpacked ever lands outside its directory.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../../src/clock.js'
import { blockLinks, listPackageFiles, packDirectory, pathProblem, readCar, readPackageManifest, unpackPackage, walkPackageBlocks, writeCar } from '../../../src/package/index.js'
import { TrustPolicy, createRelease, encodeSignedRelease, generatePublisherKey, readBundle, releaseId, signReleaseId, verifyBundle, verifyReleasePackage, writeBundle } from '../../../src/release/index.js'
import type { PublisherKey } from '../../../src/release/index.js'
import { MemoryBlockStore } from '../../../src/store/index.js'
import { samplePackage, tempDir } from '../../helpers.js'
import { recordArb } from './arbitraries.js'
import { DAG_PB, RAW, materialise, packageArb } from './package-dags.js'
import { FEW_RUNS, RUNS, SLOW_RUNS } from './runs.js'
import { cidArb, valueOrNamedError } from './support.js'

describe('package DAGs', () => {
  it('dag-pb links of any block, under any codec', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 128 }), fc.record({ Data: fc.option(fc.uint8Array({ maxLength: 16 }), { nil: undefined }), Links: fc.array(fc.record({ Hash: cidArb, Name: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }) }), { maxLength: 3 }) }).map(n => dagPb.encode(dagPb.prepare(n)))), fc.constantFrom(RAW, DAG_PB, 0x71, 0x0129), async (bytes, code) => {
      const cid = CID.createV1(code, await sha256.digest(bytes))
      await valueOrNamedError(() => blockLinks(cid, bytes), links => { for (const l of links) expect(l.version).toBe(1) })
    }), { numRuns: RUNS })
  })

  it('structured: packages of any shape are walked, listed and read, or refused by name; every listed path is safe', async () => {
    await fc.assert(fc.asyncProperty(packageArb, async spec => {
      const store = new MemoryBlockStore()
      const root = await materialise(spec, store)
      await valueOrNamedError(async () => await walkPackageBlocks(root, store), walked => {
        expect(walked.size).toBe(walked.cids.length === 0 ? 0 : walked.size)
        expect(new Set(walked.cids.map(String)).size).toBe(walked.cids.length)
      })
      await valueOrNamedError(async () => await listPackageFiles(root, store), files => {
        for (const f of files) expect(pathProblem(f.path)).toBeUndefined()
      })
      await valueOrNamedError(async () => await readPackageManifest(root, store), read => { expect(read.manifest.app).toBe('kv') })
    }), { numRuns: RUNS })
  })

  it('structured: unpacking writes only inside its directory, and nothing at all unless the whole package is valid', async () => {
    const base = await tempDir()
    let n = 0
    await fc.assert(fc.asyncProperty(packageArb, async spec => {
      const store = new MemoryBlockStore()
      const root = await materialise(spec, store)
      const parent = path.join(base, String(n++))
      const dest = path.join(parent, 'pkg')
      const result = await valueOrNamedError(async () => await unpackPackage(root, store, dest))
      const name = String(n - 1)
      const written = await fs.readdir(base, { recursive: true })
      // this case's directory and, inside it, the package: nothing else, anywhere
      for (const entry of written) expect(entry === name || entry === path.join(name, 'pkg') || entry.startsWith(path.join(name, 'pkg') + path.sep)).toBe(true)
      if (result.ok) {
        for (const f of result.value.files) expect((await fs.stat(path.join(dest, ...f.path.split('/')))).size).toBe(f.bytes)
      } else {
        expect(await fs.readdir(parent).catch(() => [])).toEqual([])
      }
      await fs.rm(parent, { recursive: true, force: true })
    }), { numRuns: SLOW_RUNS })
  })
})

describe('checking a package against its record', () => {
  let key: PublisherKey
  beforeAll(async () => { key = await generatePublisherKey() })

  it('structured: any package against any record matches, or is refused by name', async () => {
    await fc.assert(fc.asyncProperty(packageArb, fc.nat(500), async (spec, size) => {
      const store = new MemoryBlockStore()
      const root = await materialise(spec, store)
      const record = { app: 'kv', version: '1.0.0', previous: null, package: root, size, manifest: { app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 }, issued: '2026-01-01T00:00:00Z', expires: '2027-01-01T00:00:00Z' }
      const walked = await walkPackageBlocks(root, store).catch(() => undefined)
      // the right size half of the time, so the manifest check runs too
      if (walked != null && size % 2 === 0) record.size = walked.size
      await valueOrNamedError(async () => await verifyReleasePackage(record, store))
    }), { numRuns: RUNS })
  })

  it('bundles: a CAR of any blocks, with a signed root of any record, is read and verified or refused by name', async () => {
    const trust = TrustPolicy.parse({ apps: { kv: { publishers: [key.id], threshold: 1 } } })
    await fc.assert(fc.asyncProperty(packageArb, recordArb, fc.boolean(), async (spec, fuzzRecord, honest) => {
      const store = new MemoryBlockStore()
      const root = await materialise(spec, store)
      const walked = await walkPackageBlocks(root, store).catch(() => ({ cids: [] as CID[], size: 0 }))
      const record = honest
        ? { app: 'kv', version: '1.0.0', previous: null, package: root, size: walked.size, manifest: { app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 }, issued: '2026-01-01T00:00:00Z', expires: '2027-01-01T00:00:00Z' }
        : fuzzRecord
      let rootBytes: Uint8Array
      try {
        rootBytes = honest ? encodeSignedRelease({ record: record as never, signatures: [await signReleaseId(await releaseId(record as never), key)] }) : dagCbor.encode({ record, signatures: [] })
      } catch {
        return
      }
      const rootCid = CID.createV1(0x71, await sha256.digest(rootBytes))
      const blocks: Array<{ cid: CID, bytes: Uint8Array }> = [{ cid: rootCid, bytes: rootBytes }]
      for (const cid of walked.cids) blocks.push({ cid, bytes: await store.get(cid) })
      const car = await writeCar([rootCid], blocks)
      await valueOrNamedError(async () => await readBundle(car))
      await valueOrNamedError(async () => await verifyBundle(car, { trust, clock: fixedClock(Date.parse('2026-06-01T00:00:00Z')) }))
    }), { numRuns: SLOW_RUNS })
  })
})

describe('CAR archives', () => {
  it('structured: archives with any roots and blocks (some not matching their CID), cut anywhere, are read whole and verified, or refused by name', async () => {
    await fc.assert(fc.asyncProperty(fc.array(cidArb, { maxLength: 2 }), fc.array(fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.constantFrom(RAW, DAG_PB, 0x71)), { maxLength: 4 }), fc.option(fc.nat(), { nil: undefined }), async (roots, blockSpecs, cut) => {
      const blocks = []
      for (const [bytes, honest, code] of blockSpecs) {
        const cid = CID.createV1(code, await sha256.digest(honest ? bytes : Uint8Array.of(...bytes, 1)))
        blocks.push({ cid, bytes })
      }
      let car: Uint8Array
      try {
        car = await writeCar(roots, blocks)
      } catch {
        return
      }
      if (cut != null) car = car.subarray(0, cut % (car.byteLength + 1))
      await valueOrNamedError(async () => await readCar(car), read => {
        expect(read.blocks.size).toBeLessThanOrEqual(blocks.length)
      })
      await valueOrNamedError(async () => await readBundle(car))
    }), { numRuns: RUNS })
  })

  it('round trip: a packed directory goes through a bundle and comes back verified, with the same id and blocks', async () => {
    const key = await generatePublisherKey()
    const trust = TrustPolicy.parse({ apps: { kv: { publishers: [key.id], threshold: 1 } } })
    const dirRoot = await tempDir()
    await fc.assert(fc.asyncProperty(fc.dictionary(fc.constantFrom('a.txt', 'b.bin', 'lib/c.js', 'lib/d/e.js'), fc.uint8Array({ maxLength: 2000 })), async files => {
      const store = new MemoryBlockStore()
      const dir = await samplePackage(dirRoot, '1.0.0', {}, files)
      const made = await createRelease({ dir, store, keys: [key], clock: fixedClock(Date.parse('2026-01-01T00:00:00Z')) })
      const car = await writeBundle(made.signed, store, made.blocks)
      const verified = await verifyBundle(car, { trust, clock: fixedClock(Date.parse('2026-01-02T00:00:00Z')) })
      expect(verified.id.toString()).toBe(made.id.toString())
      expect(verified.packageBlocks.map(String)).toEqual(made.blocks.map(String))
      expect((await packDirectory(dir, new MemoryBlockStore())).cid.toString()).toBe(made.signed.record.package.toString())
    }), { numRuns: FEW_RUNS })
  })
})
