/**
 * The package bounds' defaults are the exported constants, wherever a caller gives no
 * limit. At their real size (1 GiB, a million blocks, 100,000 entries) they cost too much
 * to reach in a test, so here the constants are made small and the functions the CLI and
 * the daemon call are shown to refuse just past them; limits.test.ts checks each edge and
 * the constants' real values.
 */
import path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { CarMalformedError, PackageDagError, UnsafePathError, listPackageFiles, packDirectory, readCar, readPackageManifest, unpackPackage, walkPackageBlocks, writeCar } from '../../src/package/index.js'
import { readBundle, verifyReleasePackage } from '../../src/release/index.js'
import type { ReleaseRecord } from '../../src/release/index.js'
import { MemoryBlockStore } from '../../src/store/index.js'
import { samplePackage, tempDir } from '../helpers.js'

vi.mock('../../src/package/limits.js', () => ({ MAX_CAR_BYTES: 500, MAX_PACKAGE_BLOCKS: 4, MAX_PACKAGE_FILES: 3 }))

describe('package bounds default to their constants', () => {
  it('readCar, walkPackageBlocks and the package readers refuse past the constants when given no limit', async () => {
    const root = await tempDir()
    const store = new MemoryBlockStore()
    // upgossip.json, server.js, lib/, lib/store.js: 4 entries; 5 blocks with the root
    const { cid } = await packDirectory(await samplePackage(root), store)
    const { cids } = await walkPackageBlocks(cid, store, 100)
    expect(cids).toHaveLength(5)

    await expect(walkPackageBlocks(cid, store)).rejects.toThrow(PackageDagError)
    await expect(walkPackageBlocks(cid, store)).rejects.toThrow('more than 4 blocks')
    // the daemon's admission of a fetched package walks it the same way
    const record = { package: cid, size: 0, manifest: {} } as unknown as ReleaseRecord
    await expect(verifyReleasePackage(record, store)).rejects.toThrow('more than 4 blocks')

    await expect(listPackageFiles(cid, store)).rejects.toThrow(UnsafePathError)
    await expect(readPackageManifest(cid, store)).rejects.toThrow('more than 3 entries')
    await expect(unpackPackage(cid, store, path.join(root, 'out'))).rejects.toThrow('more than 3 entries')

    const car = await writeCar([cid], (async function * () { for (const c of cids) yield { cid: c, bytes: await store.get(c) } })())
    expect(car.byteLength).toBeGreaterThan(500)
    await expect(readCar(car)).rejects.toThrow(CarMalformedError)
    await expect(readCar(car)).rejects.toThrow('more than the 500-byte limit')
    // a bundle is read the same way (verify, inspect, sign, publish, --install)
    await expect(readBundle(car)).rejects.toThrow('more than the 500-byte limit')
  })
})
