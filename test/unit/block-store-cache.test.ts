import fs from 'node:fs/promises'
import path from 'node:path'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Clock } from '../../src/clock.js'
import { BlockNotFoundError, DiskFullError, FsBlockStore, VerifiedBlockCache } from '../../src/store/index.js'
import type { BlockStoreMeter } from '../../src/store/index.js'
import { tempDir } from '../helpers.js'

const KIB = 1024

/** A clock the test moves. */
function manualClock (): Clock & { advance: (ms: number) => void } {
  let t = Date.parse('2026-12-01T00:00:00Z')
  return { now: () => t, advance: ms => { t += ms } }
}

/** A raw block of `size` bytes, its content picked by `seed`. */
async function block (seed: number, size = 4 * KIB): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = Buffer.alloc(size, seed)
  return { cid: CID.createV1(0x55, await sha256.digest(bytes)), bytes }
}

/** Bytes the store hashed, wrote, and served from its cache. */
function meter (): BlockStoreMeter & { counts: { hashed: number, written: number, cached: number } } {
  const counts = { hashed: 0, written: 0, cached: 0 }
  return { counts, hashed: n => { counts.hashed += n }, written: n => { counts.written += n }, cached: n => { counts.cached += n } }
}

/** The block files of a store directory (temporaries included). */
async function files (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) out.push(path.join(entry.parentPath, entry.name))
  }
  return out.sort()
}

async function fileOf (dir: string, store: FsBlockStore, b: { cid: CID, bytes: Uint8Array }): Promise<string> {
  const before = new Set(await files(dir))
  await store.put(b.cid, b.bytes)
  const added = (await files(dir)).filter(f => !before.has(f))
  expect(added).toHaveLength(1)
  return added[0] as string
}

async function newStore (init: ConstructorParameters<typeof FsBlockStore>[1] = {}): Promise<{ dir: string, store: FsBlockStore, clock: ReturnType<typeof manualClock>, counts: ReturnType<typeof meter>['counts'] }> {
  const dir = path.join(await tempDir(), 'blocks')
  const clock = manualClock()
  const store = new FsBlockStore(dir, { clock, ...init })
  const m = meter()
  store.meter = m
  return { dir, store, clock, counts: m.counts }
}

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe('the block store\'s cache of verified blocks', () => {
  it('serves a block it stored without reading or hashing it again (the file deleted behind its back), and a read after expiry goes to disk', async () => {
    const { dir, store, clock, counts } = await newStore()
    const b = await block(1)
    const file = await fileOf(dir, store, b)
    expect(counts).toEqual({ hashed: b.bytes.byteLength, written: b.bytes.byteLength, cached: 0 })
    await fs.rm(file)
    expect(await store.get(b.cid)).toEqual(b.bytes)
    expect(await store.get(b.cid)).toEqual(b.bytes)
    expect(counts).toEqual({ hashed: b.bytes.byteLength, written: b.bytes.byteLength, cached: 2 * b.bytes.byteLength })
    clock.advance(30_000)
    await expect(store.get(b.cid)).rejects.toThrow(BlockNotFoundError)
  })

  it('serves the bytes it checked while cached, and catches a block corrupted on disk once it was evicted', async () => {
    const { dir, store, counts } = await newStore({ cacheBytes: 8 * KIB })
    const b = await block(2)
    const file = await fileOf(dir, store, b)
    await fs.writeFile(file, 'tampered')
    expect(await store.get(b.cid)).toEqual(b.bytes)
    // two more blocks of 4 KiB push it out of an 8 KiB cache
    await store.put((await block(3)).cid, (await block(3)).bytes)
    await store.put((await block(4)).cid, (await block(4)).bytes)
    const hashed = counts.hashed
    await expect(store.get(b.cid)).rejects.toThrow(/corrupt on disk/)
    expect(counts.hashed).toBe(hashed)
    expect(await store.has(b.cid)).toBe(false)
    expect(await files(dir)).not.toContain(file)
  })

  it('keeps a block read from disk and checked: a second read costs no read and no hash', async () => {
    const { dir, store } = await newStore()
    const b = await block(5)
    const file = await fileOf(dir, store, b)
    // a restarted daemon: a new store over the same directory
    const restarted = new FsBlockStore(dir, { clock: manualClock() })
    const m = meter()
    restarted.meter = m
    expect(await restarted.get(b.cid)).toEqual(b.bytes)
    expect(m.counts.hashed).toBe(b.bytes.byteLength)
    await fs.rm(file)
    expect(await restarted.get(b.cid)).toEqual(b.bytes)
    expect(m.counts).toMatchObject({ hashed: b.bytes.byteLength, cached: b.bytes.byteLength })
  })

  it('holds at most its bound in bytes, evicting the least recently used', async () => {
    const { dir, store } = await newStore({ cacheBytes: 12 * KIB })
    const blocks = await Promise.all([10, 11, 12, 13, 14].map(async seed => await block(seed)))
    for (const b of blocks.slice(0, 3)) await store.put(b.cid, b.bytes)
    // the oldest is used again: the next one out is the second
    await store.get((blocks[0] as { cid: CID }).cid)
    for (const b of blocks.slice(3)) await store.put(b.cid, b.bytes)
    for (const file of await files(dir)) await fs.rm(file)
    const served: number[] = []
    for (const [i, b] of blocks.entries()) {
      if (await store.get(b.cid).then(() => true, () => false)) served.push(i)
    }
    // 0 was used after 1 and 2 were stored, so they went first
    expect(served).toEqual([0, 3, 4])
    // a block larger than the bound is never kept
    const big = await block(15, 16 * KIB)
    await store.put(big.cid, big.bytes)
    for (const file of await files(dir)) await fs.rm(file)
    await expect(store.get(big.cid)).rejects.toThrow(BlockNotFoundError)
  })

  it('drops what delete and a collection remove', async () => {
    const { store } = await newStore()
    const a = await block(20)
    const b = await block(21)
    const c = await block(22)
    for (const x of [a, b, c]) await store.put(x.cid, x.bytes)
    await store.delete(a.cid)
    await expect(store.get(a.cid)).rejects.toThrow(BlockNotFoundError)
    const collected = await store.collect(async () => [c.cid])
    expect(collected).toMatchObject({ kept: 1, removed: 1 })
    await expect(store.get(b.cid)).rejects.toThrow(BlockNotFoundError)
    expect(await store.get(c.cid)).toEqual(c.bytes)
  })

  it('keeps no view into a larger buffer (a block of a bundle in memory), only a copy of the block', () => {
    const cache = new VerifiedBlockCache({ maxBytes: 64 * KIB })
    const whole = new Uint8Array(32 * KIB).fill(7)
    const view = whole.subarray(100, 100 + 4 * KIB)
    cache.set('a', view)
    const kept = cache.get('a') as Uint8Array
    expect(kept).toEqual(view)
    expect(kept.buffer.byteLength).toBe(4 * KIB)
    expect(cache.bytes).toBe(4 * KIB)
    const own = new Uint8Array(4 * KIB)
    cache.set('b', own)
    expect(cache.get('b')).toBe(own)
  })

  it('empties itself after the idle time even when nothing asks it again', () => {
    vi.useFakeTimers()
    const clock = manualClock()
    const cache = new VerifiedBlockCache({ clock, idleMs: 30_000 })
    const expired: number[] = []
    cache.onExpired = bytes => { expired.push(bytes) }
    cache.set('a', new Uint8Array(KIB))
    clock.advance(20_000)
    vi.advanceTimersByTime(20_000)
    expect(cache.get('a')).toBeDefined()
    clock.advance(29_000)
    vi.advanceTimersByTime(29_000)
    expect(cache.size).toBe(1)
    clock.advance(1_000)
    vi.advanceTimersByTime(1_000)
    expect(cache.size).toBe(0)
    expect(cache.bytes).toBe(0)
    // told once, so the daemon can ask for a collection; an empty cache sets no timer again
    expect(expired).toEqual([KIB])
    vi.advanceTimersByTime(120_000)
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('the block store\'s writes', () => {
  it('keeps blockstore-fs\'s layout (NextToLast shards, `<multihash>.data`, no temporary left): each reads what the other wrote', async () => {
    const { dir, store } = await newStore()
    const b = await block(30)
    const file = await fileOf(dir, store, b)
    const { dir: shard, file: name } = new NextToLast().encode(b.cid)
    expect(file).toBe(path.join(dir, shard, name))
    expect(await files(dir)).toEqual([file])
    const theirs = new FsBlockstore(dir, { shardingStrategy: new NextToLast() })
    await theirs.open()
    expect(Buffer.from(await theirs.get(b.cid))).toEqual(b.bytes)
    const c = await block(34)
    await theirs.put(c.cid, c.bytes)
    expect(await store.get(c.cid)).toEqual(c.bytes)
  })

  it('two puts of one block at once write it once', async () => {
    const { dir, store, counts } = await newStore()
    const b = await block(31)
    await Promise.all([store.put(b.cid, b.bytes), store.put(b.cid, b.bytes)])
    expect(counts.written).toBe(b.bytes.byteLength)
    expect(await files(dir)).toHaveLength(1)
  })

  it('a full disk: DiskFullError, no partial file, the block neither held nor cached', async () => {
    const { dir, store } = await newStore()
    const held = await block(32)
    await store.put(held.cid, held.bytes)
    const b = await block(33)
    const real = fs.writeFile
    vi.spyOn(fs, 'writeFile').mockImplementation(async (file, data) => {
      // half the block lands, then the disk is full
      await real(file, (data as Uint8Array).subarray(0, 100))
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
    })
    await expect(store.put(b.cid, b.bytes)).rejects.toThrow(DiskFullError)
    vi.restoreAllMocks()
    expect(await files(dir)).toHaveLength(1)
    expect(await store.has(b.cid)).toBe(false)
    await expect(store.get(b.cid)).rejects.toThrow(BlockNotFoundError)
    await store.put(b.cid, b.bytes)
    expect(await store.get(b.cid)).toEqual(b.bytes)
  })
})
