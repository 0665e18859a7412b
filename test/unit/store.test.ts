import fs from 'node:fs/promises'
import path from 'node:path'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { BlockHashMismatchError, BlockNotFoundError, DataDirLockedError, FsBlockStore, MemoryBlockStore, UnsupportedCidError, dataDirIdentity, describeTakeOver, lockDataDir, lockHolderState, readDataDirLock, toCid, writeFileAtomic, writeJsonAtomic } from '../../src/store/index.js'
import { tempDir } from '../helpers.js'

async function rawBlock (text: string): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.createV1(0x55, await sha256.digest(bytes)), bytes }
}

describe('atomic files', () => {
  it('writes the whole content with the requested mode and leaves no temp file', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'sub', 'control.json')
    await writeJsonAtomic(file, { a: 1 }, { mode: 0o600 })
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual({ a: 1 })
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600)
    await writeFileAtomic(file, 'second')
    expect(await fs.readFile(file, 'utf8')).toBe('second')
    expect(await fs.readdir(path.dirname(file))).toEqual(['control.json'])
  })
})

describe('block stores', () => {
  for (const [name, make] of [['memory', async () => new MemoryBlockStore()], ['fs', async () => new FsBlockStore(path.join(await tempDir(), 'blocks'))]] as const) {
    it(`${name}: stores a block that matches its CID and refuses one that does not`, async () => {
      const store = await make()
      const good = await rawBlock('hello')
      await store.put(good.cid, good.bytes)
      expect(await store.has(good.cid)).toBe(true)
      expect(new TextDecoder().decode(await store.get(good.cid))).toBe('hello')
      const forged = await rawBlock('other')
      await expect(store.put(forged.cid, good.bytes)).rejects.toThrow(BlockHashMismatchError)
      expect(await store.has(forged.cid)).toBe(false)
      await expect(store.get(forged.cid)).rejects.toThrow(BlockNotFoundError)
      await store.delete(good.cid)
      expect(await store.has(good.cid)).toBe(false)
    })
  }

  it('fs: a block corrupted on disk is dropped and reported missing, never served', async () => {
    const dir = path.join(await tempDir(), 'blocks')
    // no cache of verified blocks: every read goes to disk (block-store-cache.test.ts: corruption after eviction)
    const store = new FsBlockStore(dir, { cacheBytes: 0 })
    const good = await rawBlock('precious bytes')
    await store.put(good.cid, good.bytes)
    const files: string[] = []
    for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) files.push(path.join(entry.parentPath, entry.name))
    }
    expect(files).toHaveLength(1)
    await fs.writeFile(files[0] as string, 'tampered')
    await expect(store.get(good.cid)).rejects.toThrow(BlockNotFoundError)
    expect(await store.has(good.cid)).toBe(false)
  })

  it('refuses CIDs with other hashes or codecs', async () => {
    const store = new MemoryBlockStore()
    const good = await rawBlock('x')
    const v0 = CID.createV0(await sha256.digest(good.bytes))
    await expect(store.put(v0 as unknown as CID, good.bytes)).rejects.toThrow(UnsupportedCidError)
    const json = CID.createV1(0x0200, await sha256.digest(good.bytes))
    await expect(store.put(json, good.bytes)).rejects.toThrow(UnsupportedCidError)
  })

  it('toCid accepts CIDs from other multiformats copies through bytes', async () => {
    const { cid } = await rawBlock('y')
    const foreign = { bytes: cid.bytes, version: 1, code: 0x55 }
    expect(toCid(foreign).equals(cid)).toBe(true)
    expect(toCid(cid.bytes).equals(cid)).toBe(true)
    expect(() => toCid('nope')).toThrow(UnsupportedCidError)
  })
})

describe('data-dir lock', () => {
  it('lets one holder in, refuses a second, and frees on release', async () => {
    const dir = await tempDir()
    const lock = await lockDataDir(dir)
    await expect(lockDataDir(dir)).rejects.toThrow(DataDirLockedError)
    await lock.release()
    const again = await lockDataDir(dir)
    await again.release()
  })

  it('refuses a lock held by another live process and takes over a stale one', async () => {
    const dir = await tempDir()
    const os = await import('node:os')
    await fs.writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: process.ppid, host: os.hostname(), since: 'x' }))
    await expect(lockDataDir(dir)).rejects.toThrow(/in use by process/)
    // a pid far above pid_max belongs to no process: the lock is stale
    await fs.writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: 2 ** 30, host: os.hostname(), since: 'x' }))
    const lock = await lockDataDir(dir)
    expect(JSON.parse(await fs.readFile(lock.file, 'utf8')).pid).toBe(process.pid)
    await lock.release()
  })

  it('says why it took a lock over: a process gone from this host, or a lock copied in with the directory', async () => {
    const os = await import('node:os')
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: 2 ** 30, host: os.hostname(), since: '2026-01-01T00:00:00Z' }))
    const gone = await lockDataDir(dir)
    expect(gone.tookOver?.why).toBe('gone')
    expect(describeTakeOver(dir, gone.tookOver ?? { why: 'damaged' })).toBe(`cleared a stale lock of ${dir}: process ${2 ** 30} since 2026-01-01T00:00:00Z no longer runs on this host`)
    // the lock names the directory it was taken on
    const held = await readDataDirLock(dir)
    expect(held?.dir).toBe(await dataDirIdentity(dir))
    expect(await lockHolderState(dir, held ?? { pid: 0, host: '' })).toBe('live')
    await gone.release()
    // a copy of a directory in use: the lock names a live process, but another directory
    const copy = await tempDir()
    await fs.writeFile(path.join(copy, 'lock'), JSON.stringify({ pid: process.ppid, host: os.hostname(), since: 'x', dir: '1:2' }))
    const copied = await lockDataDir(copy)
    expect(copied.tookOver?.why).toBe('copied')
    // a lock alone is no content: the directory counts as empty, and undo leaves it so
    expect(copied.before).toBe('empty')
    await copied.release({ undo: true })
    expect(await fs.readdir(copy)).toEqual([])
  })

  it('a lock from another host is refused, naming --take-over, and taken over with it', async () => {
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: 17042, host: 'vm-that-is-gone', since: '2026-01-01T00:00:00Z', dir: '1:2' }))
    await expect(lockDataDir(dir)).rejects.toThrow(`data directory ${dir} is locked by process 17042 on vm-that-is-gone since 2026-01-01T00:00:00Z; if vm-that-is-gone no longer runs a daemon on it (the directory was copied, moved or restored from there), use --take-over`)
    expect(JSON.parse(await fs.readFile(path.join(dir, 'lock'), 'utf8')).host).toBe('vm-that-is-gone')
    const lock = await lockDataDir(dir, { takeOver: true })
    expect(lock.tookOver).toEqual({ why: 'other-host', holder: { pid: 17042, host: 'vm-that-is-gone', since: '2026-01-01T00:00:00Z', dir: '1:2' } })
    expect(describeTakeOver(dir, lock.tookOver ?? { why: 'damaged' })).toMatch(/took over the lock .* from process 17042 on vm-that-is-gone since .* \(--take-over\)/)
    await lock.release()
    expect(await fs.readdir(dir)).toEqual([])
  })
})
