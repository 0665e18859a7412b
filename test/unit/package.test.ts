import fs from 'node:fs/promises'
import path from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import {
  DestinationExistsError, DuplicatePathError, ManifestFileMissingError, ManifestMissingError, UnsafePathError, UnsupportedEntryError,
  listPackageFiles, packDirectory, readCar, unpackPackage, walkPackageBlocks, writeCar, CarMalformedError
} from '../../src/package/index.js'
import { NextToLast } from 'blockstore-fs/sharding'
import { BlockHashMismatchError, BlockNotFoundError, DEFAULT_BLOCK_CACHE_IDLE_MS, FsBlockStore, MemoryBlockStore } from '../../src/store/index.js'
import type { BlockStore } from '../../src/store/index.js'
import { manifest, samplePackage, tempDir, writeTree } from '../helpers.js'

async function put (store: BlockStore, code: number, bytes: Uint8Array): Promise<CID> {
  const cid = CID.createV1(code, await sha256.digest(bytes))
  await store.put(cid, bytes)
  return cid
}

/** A hand-made UnixFS directory with arbitrary link names, as a hostile publisher could build. */
async function hostileDirectory (store: BlockStore, entries: Record<string, CID>): Promise<CID> {
  const node = dagPb.prepare({
    Data: new UnixFS({ type: 'directory' }).marshal(),
    Links: Object.entries(entries).map(([Name, Hash]) => ({ Name, Hash, Tsize: 1 }))
  })
  return await put(store, 0x70, dagPb.encode(node))
}

describe('pack', () => {
  it('is deterministic whatever the order, mtimes, modes or Unicode normalisation', async () => {
    const root = await tempDir()
    const a = path.join(root, 'a')
    const b = path.join(root, 'b')
    await writeTree(a, { 'upgossip.json': manifest(), 'server.js': 'x', 'caf\u00e9.txt': 'coffee', 'lib/z.js': 'z', 'lib/a.js': 'a' })
    await writeTree(b, { 'lib/a.js': 'a', 'lib/z.js': 'z', 'cafe\u0301.txt': 'coffee', 'server.js': 'x', 'upgossip.json': manifest() })
    await fs.mkdir(path.join(b, 'empty', 'nested'), { recursive: true })
    await fs.chmod(path.join(b, 'server.js'), 0o755)
    await fs.utimes(path.join(b, 'lib/a.js'), new Date(0), new Date(0))
    const one = await packDirectory(a, new MemoryBlockStore())
    const two = await packDirectory(b, new MemoryBlockStore())
    expect(two.cid.toString()).toBe(one.cid.toString())
    expect(two.size).toBe(one.size)
    expect(one.cid.toString()).toMatch(/^bafy/)
    expect(one.files.map(f => f.path)).toEqual(['caf\u00e9.txt', 'lib/a.js', 'lib/z.js', 'server.js', 'upgossip.json'])
  })

  it('changes the CID when any byte or name changes, and shares unchanged blocks', async () => {
    const root = await tempDir()
    const big = new Uint8Array(600_000).map((_, i) => i % 251)
    const one = await samplePackage(root, '1.0.0', {}, { 'data.bin': big })
    const two = await samplePackage(root, '1.0.0', {}, { 'data.bin': big, 'server.js': 'changed' })
    const s1 = new MemoryBlockStore()
    const s2 = new MemoryBlockStore()
    const p1 = await packDirectory(one, s1)
    const p2 = await packDirectory(two, s2)
    expect(p2.cid.toString()).not.toBe(p1.cid.toString())
    const b1 = new Set((await walkPackageBlocks(p1.cid, s1)).cids.map(String))
    const b2 = (await walkPackageBlocks(p2.cid, s2)).cids.map(String)
    const shared = b2.filter(c => b1.has(c))
    // the 600 kB file's leaves (3 chunks) and its root, plus lib/store.js, are the same blocks
    expect(shared.length).toBeGreaterThanOrEqual(5)
  })

  it('reports size as the sum of distinct block lengths', async () => {
    const root = await tempDir()
    const dir = await samplePackage(root, '1.0.0', {}, { 'same1.txt': 'dup', 'same2.txt': 'dup' })
    const store = new MemoryBlockStore()
    const packed = await packDirectory(dir, store)
    const walked = await walkPackageBlocks(packed.cid, store)
    expect(packed.size).toBe(walked.size)
    expect(packed.blocks).toBe(walked.cids.length)
    expect(store.count).toBe(walked.cids.length)
  })

  it('refuses a symlink leaving the tree, keeps one inside as a copy, refuses one to a directory', async () => {
    const root = await tempDir()
    const dir = await samplePackage(root)
    await fs.writeFile(path.join(root, 'secret'), 'outside')
    await fs.symlink(path.join(root, 'secret'), path.join(dir, 'leak'))
    await expect(packDirectory(dir, new MemoryBlockStore())).rejects.toThrow(UnsafePathError)
    await fs.rm(path.join(dir, 'leak'))
    await fs.symlink('server.js', path.join(dir, 'alias.js'))
    const packed = await packDirectory(dir, new MemoryBlockStore())
    expect(packed.files.find(f => f.path === 'alias.js')?.bytes).toBe((await fs.stat(path.join(dir, 'server.js'))).size)
    await fs.symlink('lib', path.join(dir, 'libdir'))
    await expect(packDirectory(dir, new MemoryBlockStore())).rejects.toThrow(UnsupportedEntryError)
  })

  it('refuses two names equal after NFC, a missing manifest, and files the manifest names but lacks', async () => {
    const root = await tempDir()
    const dup = await samplePackage(root, '1.0.0', {}, { 'caf\u00e9.txt': '1', 'cafe\u0301.txt': '2' })
    await expect(packDirectory(dup, new MemoryBlockStore())).rejects.toThrow(DuplicatePathError)
    const none = path.join(root, 'none')
    await writeTree(none, { 'server.js': 'x' })
    await expect(packDirectory(none, new MemoryBlockStore())).rejects.toThrow(ManifestMissingError)
    const missing = await samplePackage(root, '1.0.0', { transform: { up: 'migrate/up.js' } })
    await expect(packDirectory(missing, new MemoryBlockStore())).rejects.toThrow(ManifestFileMissingError)
    await expect(packDirectory(missing, new MemoryBlockStore())).rejects.toThrow(/transform.up/)
    const noProgram = await samplePackage(root, '1.0.0', { transform: { up: { command: ['./migrate/up.sh', 'fast'] } } })
    await expect(packDirectory(noProgram, new MemoryBlockStore())).rejects.toThrow(/"transform.up.command\[0\]" names migrate\/up.sh, which is not in the package/)
    // a program looked up on PATH is not a package file
    const onPath = await samplePackage(root, '1.0.0', { transform: { up: { command: ['python3', 'not-checked.py'] } } })
    await expect(packDirectory(onPath, new MemoryBlockStore())).resolves.toMatchObject({ manifest: { transform: { up: { command: ['python3', 'not-checked.py'] } } } })
  })
})

describe('unpack', () => {
  it('round-trips a package into a directory', async () => {
    const root = await tempDir()
    const dir = await samplePackage(root, '1.0.0', {}, { 'deep/a/b/c.txt': 'deep', 'data.bin': new Uint8Array(300_000).fill(7) })
    const store = new MemoryBlockStore()
    const packed = await packDirectory(dir, store)
    const out = path.join(root, 'out')
    const result = await unpackPackage(packed.cid, store, out)
    expect(result.manifest.app).toBe('kv')
    for (const f of packed.files) {
      expect(Buffer.compare(await fs.readFile(path.join(out, f.path)), await fs.readFile(path.join(dir, f.path)))).toBe(0)
    }
    await expect(unpackPackage(packed.cid, store, out)).rejects.toThrow(DestinationExistsError)
    expect((await listPackageFiles(packed.cid, store)).map(f => f.path)).toEqual(packed.files.map(f => f.path))
  })

  it('writes a file of many blocks as they come, in batches, without joining it: the bytes on disk are the packed ones', async () => {
    const root = await tempDir()
    // 9 MiB of varied bytes: three write batches of 256 KiB leaves
    const big = Buffer.alloc(9 * 1024 * 1024 + 12_345)
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i)
    const dir = await samplePackage(root, '1.0.0', {}, { 'big.bin': big, 'empty.txt': '' })
    const store = new MemoryBlockStore()
    const packed = await packDirectory(dir, store)
    const out = path.join(root, 'out')
    await unpackPackage(packed.cid, store, out)
    expect(Buffer.compare(await fs.readFile(path.join(out, 'big.bin')), big)).toBe(0)
    expect((await fs.stat(path.join(out, 'empty.txt'))).size).toBe(0)
  })

  it('makes the programs the manifest runs executable for their owner only (a package keeps no modes), and nothing else', async () => {
    const root = await tempDir()
    const dir = await samplePackage(root, '2.0.0', { transform: { up: { command: ['./migrate/up.sh'] }, down: { command: ['python3', 'migrate/down.py'] } } }, {
      'migrate/up.sh': '#!/bin/sh\ncp -r "$UPGOSSIP_FROM"/. "$UPGOSSIP_TO"\n',
      'migrate/down.py': 'print("down")\n'
    })
    const store = new MemoryBlockStore()
    const out = path.join(root, 'out')
    await unpackPackage((await packDirectory(dir, store)).cid, store, out)
    // chmod does not apply the daemon's umask 077: the program gets no bits for others itself
    expect((await fs.stat(path.join(out, 'migrate', 'up.sh'))).mode & 0o777).toBe(0o700)
    expect((await fs.stat(path.join(out, 'migrate', 'down.py'))).mode & 0o111).toBe(0)
    expect((await fs.stat(path.join(out, 'server.js'))).mode & 0o111).toBe(0)
  })

  it('refuses a block tampered with in the store on disk, and a missing block, and leaves nothing behind', async () => {
    const root = await tempDir()
    const dir = await samplePackage(root)
    const blocksDir = path.join(root, 'blocks')
    // the daemon's own store: blocks in files, checked against their CIDs when read from disk
    let now = Date.parse('2026-12-01T00:00:00Z')
    const store = new FsBlockStore(blocksDir, { clock: { now: () => now } })
    const packed = await packDirectory(dir, store)
    const { cids } = await walkPackageBlocks(packed.cid, store)
    const leaf = cids.find(c => c.code === 0x55) as CID
    // one block's file changed after it was stored (a bad disk, a torn write, a hand)
    const shard = new NextToLast().encode(leaf)
    await fs.writeFile(path.join(blocksDir, shard.dir, shard.file), 'evil')
    // unused for a while, the store's cache of the blocks it checked is emptied: the next read is from disk
    now += DEFAULT_BLOCK_CACHE_IDLE_MS
    const out = path.join(root, 'out')
    const tampered = await unpackPackage(packed.cid, store, out).then(() => undefined, (err: Error) => err)
    expect(tampered).toBeInstanceOf(BlockNotFoundError)
    expect(tampered?.message).toBe(`block ${leaf.toString()} was corrupt on disk and has been dropped`)
    expect(tampered?.cause).toBeInstanceOf(BlockHashMismatchError)
    // dropped, so that a fetch asks peers for it again; unpacking now finds it missing
    expect(await store.has(leaf)).toBe(false)
    await expect(unpackPackage(packed.cid, store, out)).rejects.toThrow(new BlockNotFoundError(`block ${leaf.toString()} is not held`))
    expect((await fs.readdir(root)).filter(n => n.startsWith('out'))).toEqual([])
  })

  for (const name of ['..', '.', 'a/b', '', 'x\\y', 'cafe\u0301']) {
    it(`refuses a hostile entry name ${JSON.stringify(name)}`, async () => {
      const root = await tempDir()
      const store = new MemoryBlockStore()
      const file = await put(store, 0x55, new TextEncoder().encode('pwned'))
      const m = await put(store, 0x55, new TextEncoder().encode(manifest()))
      const s = await put(store, 0x55, new TextEncoder().encode('x'))
      const dirCid = await hostileDirectory(store, { [name]: file, 'upgossip.json': m, 'server.js': s })
      await expect(unpackPackage(dirCid, store, path.join(root, 'out'))).rejects.toThrow(UnsafePathError)
      expect(await fs.readdir(root)).toEqual([])
    })
  }

  it('refuses a symlink entry and a package without a manifest', async () => {
    const root = await tempDir()
    const store = new MemoryBlockStore()
    const link = await put(store, 0x70, dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'symlink', data: new TextEncoder().encode('/etc/passwd') }).marshal() })))
    const m = await put(store, 0x55, new TextEncoder().encode(manifest()))
    const s = await put(store, 0x55, new TextEncoder().encode('x'))
    const withLink = await hostileDirectory(store, { passwd: link, 'upgossip.json': m, 'server.js': s })
    await expect(unpackPackage(withLink, store, path.join(root, 'a'))).rejects.toThrow(UnsupportedEntryError)
    const noManifest = await hostileDirectory(store, { 'server.js': s })
    await expect(unpackPackage(noManifest, store, path.join(root, 'b'))).rejects.toThrow(ManifestMissingError)
    const noMain = await hostileDirectory(store, { 'upgossip.json': m })
    await expect(unpackPackage(noMain, store, path.join(root, 'c'))).rejects.toThrow(ManifestFileMissingError)
    expect(await fs.readdir(root)).toEqual([])
  })
})

describe('CAR archives', () => {
  it('round-trips blocks and verifies each on read', async () => {
    const root = await tempDir()
    const store = new MemoryBlockStore()
    const packed = await packDirectory(await samplePackage(root), store)
    const { cids } = await walkPackageBlocks(packed.cid, store)
    const blocks = await Promise.all(cids.map(async cid => ({ cid, bytes: await store.get(cid) })))
    const car = await writeCar([packed.cid], blocks)
    const read = await readCar(car)
    expect(read.roots.map(String)).toEqual([packed.cid.toString()])
    expect([...read.blocks.keys()].sort()).toEqual(cids.map(String).sort())
    await expect(readCar(car.subarray(0, car.byteLength - 3))).rejects.toThrow(CarMalformedError)
    await expect(readCar(new Uint8Array([1, 2, 3, 4, 5]))).rejects.toThrow(CarMalformedError)
    await expect(readCar(car, 10)).rejects.toThrow(/limit/)
    // flip the last byte: it lies inside the last block's data
    const flipped = Uint8Array.from(car)
    flipped[flipped.length - 1] ^= 0xff
    await expect(readCar(flipped)).rejects.toThrow(BlockHashMismatchError)
  })
})
