/**
 * Content-addressed block storage: CID → bytes, every block checked against its CID
 * on the way in and on the way out (from disk, or from memory where this store checked
 * it lately), so a corrupt or forged block is never stored or served.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import { base32upper } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'uint8arrays/equals'
import type { Clock } from '../clock.js'
import { ContentRefusalError, UpgossipError } from '../errors.js'
import { DiskFullError, isDiskFull } from './disk-full.js'
import { VerifiedBlockCache } from './verified-block-cache.js'

/** Codecs a package or release may contain: raw (file bytes, UnixFS raw leaves). */
export const CODEC_RAW = 0x55
/** dag-pb (UnixFS directories and files). */
export const CODEC_DAG_PB = 0x70
/** dag-cbor (release records). */
export const CODEC_DAG_CBOR = 0x71
const SHA2_256 = 0x12

/** A block's bytes do not hash to its CID. */
export class BlockHashMismatchError extends ContentRefusalError {
  static override name = 'BlockHashMismatchError'
}

/** A CID uses a hash or codec this project never produces or accepts. */
export class UnsupportedCidError extends ContentRefusalError {
  static override name = 'UnsupportedCidError'
}

/** The store does not hold the requested block. */
export class BlockNotFoundError extends UpgossipError {
  static override name = 'BlockNotFoundError'
}

/** Where blocks live; the rest of the code speaks CIDs, never paths. */
export interface BlockStore {
  /** True when the block is held. */
  has: (cid: CID) => Promise<boolean>
  /**
   * The block's bytes, checked against its CID; throws {@link BlockNotFoundError}. The
   * bytes may be the store's own copy (a cache, a memory store): callers must not modify them.
   */
  get: (cid: CID) => Promise<Uint8Array>
  /**
   * Store a block after checking it against its CID; throws {@link BlockHashMismatchError}.
   * The store may keep `bytes` as they are: callers must not modify them afterwards.
   */
  put: (cid: CID, bytes: Uint8Array) => Promise<CID>
  /** Forget a block (no error if absent). */
  delete: (cid: CID) => Promise<void>
  /** Run `fn` while no collection runs: blocks it stores before a release names them are not collected meanwhile. */
  holding: <T>(fn: () => Promise<T>) => Promise<T>
  /** Told the cost of what the store does (the block exchange counts it in metrics). */
  meter?: BlockStoreMeter
}

/** What a block store reports of its work: bytes hashed (checked against a CID), bytes written, and bytes read from its cache of verified blocks instead of the disk. */
export interface BlockStoreMeter {
  hashed: (bytes: number) => void
  written: (bytes: number) => void
  cached?: (bytes: number) => void
}

/**
 * Coerce a CID that may come from another copy of `multiformats` (some libraries
 * bring their own major) into this project's `CID` class.
 */
export function toCid (value: unknown): CID {
  const cid = CID.asCID(value)
  if (cid != null) return cid
  const bytes = value instanceof Uint8Array ? value : (value as { bytes?: unknown } | null)?.bytes
  if (bytes instanceof Uint8Array) {
    try {
      return CID.decode(bytes)
    } catch (err) {
      throw new UnsupportedCidError(`bytes that are not a CID: ${(err as Error).message}`)
    }
  }
  throw new UnsupportedCidError('value is not a CID')
}

/** Check that a CID is one this project handles: CIDv1, sha2-256, raw / dag-pb / dag-cbor. */
export function assertSupportedCid (cid: CID): void {
  if (cid.version !== 1) throw new UnsupportedCidError(`CID ${cid.toString()} is not CIDv1`)
  if (cid.multihash.code !== SHA2_256) throw new UnsupportedCidError(`CID ${cid.toString()} does not use sha2-256`)
  if (cid.code !== CODEC_RAW && cid.code !== CODEC_DAG_PB && cid.code !== CODEC_DAG_CBOR) {
    throw new UnsupportedCidError(`CID ${cid.toString()} has codec 0x${cid.code.toString(16)}, expected raw, dag-pb or dag-cbor`)
  }
}

/** Throw unless `bytes` hash to `cid`. */
export async function verifyBlock (cid: CID, bytes: Uint8Array): Promise<void> {
  assertSupportedCid(cid)
  const digest = await sha256.digest(bytes)
  if (!equals(digest.digest, cid.multihash.digest)) {
    throw new BlockHashMismatchError(`block ${cid.toString()} does not match its hash; it was corrupted or forged`)
  }
}

/** What one collection of a block store did ({@link FsBlockStore.collect}). */
export interface BlockCollection {
  /** Blocks left, and their bytes on disk. */
  kept: number
  keptBytes: number
  /** Blocks deleted, and the bytes freed. */
  removed: number
  freedBytes: number
}

/** Extension of a block file (blockstore-fs). */
const BLOCK_FILE = '.data'

/** Most blocks whose presence a {@link FsBlockStore} remembers (256 KiB blocks: 64 GiB of packages). */
const MAX_KNOWN = 262_144

/** Options of a {@link FsBlockStore}. */
export interface FsBlockStoreInit {
  /** Bytes of verified blocks kept in memory (default: DEFAULT_BLOCK_CACHE_BYTES; 0: none). */
  cacheBytes?: number
  /** With no use for this long the cache of verified blocks is emptied (default: DEFAULT_BLOCK_CACHE_IDLE_MS). */
  cacheIdleMs?: number
  clock?: Clock
}

/**
 * A block store in a directory, laid out as blockstore-fs lays it out (NextToLast
 * shards, `<multihash base32>.data`). Blocks are written to a temporary file and
 * renamed; since a torn write cannot be ruled out without fsync on every block, every
 * read from disk is checked against the CID and a corrupt block is deleted and reported
 * as missing, so it is fetched again (sha-256 costs about 0.001 CPU-s per MiB: cheaper
 * than serving a block nobody checked). The blocks this store checked lately (stored, or
 * read and checked) are kept in memory ({@link VerifiedBlockCache}): a block just fetched
 * is served, staged and unpacked without another read or hash. A write that finds the
 * disk full throws {@link DiskFullError} and leaves no partial file behind.
 */
export class FsBlockStore implements BlockStore {
  private readonly inner: FsBlockstore
  private readonly sharding = new NextToLast()
  private opened: Promise<void> | undefined
  /**
   * What this store knows it holds or lacks, by CID. The daemon's store is the only
   * writer of its directory (the data directory is locked), so what it wrote, dropped
   * or looked up once stays true; peers ask "which of these do you hold" all through a
   * fetch, and each miss on disk was a failed system call (docs/benchmarks-analysis.md).
   */
  private readonly known = new Map<string, boolean>()
  /** Blocks checked against their CIDs lately, by file name. */
  private readonly verified: VerifiedBlockCache
  /** Shard directories known to exist (a collection deletes files, never shards). */
  private readonly shards = new Set<string>()
  /** Writes in progress, by file name: a second put of the same block waits for the first. */
  private readonly writing = new Map<string, Promise<void>>()
  /** Called with every block newly stored (a fetch's, a publish's): peers waiting for one hear of it. */
  onStored: ((cid: CID) => void) | undefined
  /** Called with the bytes dropped when the cache of verified blocks was emptied for want of use: garbage now. */
  onCacheExpired: ((bytes: number) => void) | undefined
  meter: BlockStoreMeter | undefined
  /**
   * While a collection runs: the blocks (by file name) looked up, read or stored since it
   * began. The collection never deletes them, so a fetch that found a block held, or stored
   * one, after the kept DAGs were marked keeps it (a write barrier).
   */
  private touched: Set<string> | undefined
  /** Blocks being deleted by a collection, by file name: reported missing, and a put waits for the delete. */
  private readonly deleting = new Map<string, Promise<void>>()
  private collecting: Promise<unknown> = Promise.resolve()
  /** Deletions begun by collections so far. */
  private deletions = 0

  constructor (private readonly dir: string, init: FsBlockStoreInit = {}) {
    this.inner = new FsBlockstore(dir, { shardingStrategy: this.sharding })
    this.verified = new VerifiedBlockCache({ maxBytes: init.cacheBytes, idleMs: init.cacheIdleMs, clock: init.clock })
    this.verified.onExpired = bytes => { this.onCacheExpired?.(bytes) }
  }

  private async open (): Promise<void> {
    this.opened ??= this.inner.open()
    await this.opened
  }

  private remember (cid: CID, held: boolean): void {
    const key = cid.toString()
    this.known.delete(key)
    this.known.set(key, held)
    if (this.known.size > MAX_KNOWN) this.known.delete(this.known.keys().next().value as string)
  }

  /** The block's file name (its multihash): what a collection keeps or deletes. */
  private fileOf (cid: CID): string {
    return this.sharding.encode(cid).file
  }

  async has (cid: CID): Promise<boolean> {
    const file = this.fileOf(cid)
    if (this.deleting.has(file)) return false
    this.touched?.add(file)
    const known = this.known.get(cid.toString())
    if (known != null) return known
    await this.open()
    const deletions = this.deletions
    const held = await this.inner.has(cid)
    // a collection deleted blocks meanwhile: what the disk said may be stale
    if (deletions !== this.deletions) return await this.has(cid)
    this.remember(cid, held)
    return held
  }

  /** The block, from the cache of verified blocks if it is there, else read from disk and checked. */
  async get (cid: CID): Promise<Uint8Array> {
    try {
      assertSupportedCid(cid)
    } catch (err) {
      throw new BlockNotFoundError(`block ${cid.toString()} is not held: ${(err as Error).message}`, { cause: err })
    }
    const file = this.fileOf(cid)
    this.touched?.add(file)
    await this.deleting.get(file)
    const cached = this.verified.get(file)
    if (cached != null) {
      this.meter?.cached?.(cached.byteLength)
      return cached
    }
    await this.open()
    let bytes: Uint8Array
    try {
      bytes = await this.inner.get(cid)
    } catch {
      this.remember(cid, false)
      throw new BlockNotFoundError(`block ${cid.toString()} is not held`)
    }
    try {
      await verifyBlock(cid, bytes)
      this.meter?.hashed(bytes.byteLength)
    } catch (err) {
      await this.inner.delete(cid)
      this.remember(cid, false)
      throw new BlockNotFoundError(`block ${cid.toString()} was corrupt on disk and has been dropped`, { cause: err })
    }
    this.verified.set(file, bytes)
    return bytes
  }

  /** Store a block: hashed once, here (the hash is its file name), unless already held. */
  async put (cid: CID, bytes: Uint8Array): Promise<CID> {
    await verifyBlock(cid, bytes)
    this.meter?.hashed(bytes.byteLength)
    const file = this.fileOf(cid)
    this.touched?.add(file)
    // a collection deleting this very block finishes first, or it would delete the new copy
    await this.deleting.get(file)
    if (!(await this.has(cid))) {
      let write = this.writing.get(file)
      const first = write == null
      if (write == null) {
        write = this.write(cid, bytes).finally(() => this.writing.delete(file))
        this.writing.set(file, write)
      }
      await write
      if (first) {
        this.remember(cid, true)
        this.meter?.written(bytes.byteLength)
        this.onStored?.(cid)
      }
    }
    this.verified.set(file, bytes)
    return cid
  }

  /** Write a block file: a temporary file in its shard, renamed into place; nothing left behind on failure. */
  private async write (cid: CID, bytes: Uint8Array, again = true): Promise<void> {
    await this.open()
    const { dir, file } = this.sharding.encode(cid)
    const shard = path.join(this.dir, dir)
    // blockstore-fs's (steno's) name for the temporary: a collection skips it
    const temp = path.join(shard, `.${file}.tmp`)
    try {
      if (!this.shards.has(dir)) {
        await fs.mkdir(shard, { recursive: true })
        this.shards.add(dir)
      }
      await fs.writeFile(temp, bytes)
      await fs.rename(temp, path.join(shard, file))
    } catch (err) {
      await fs.rm(temp, { force: true }).catch(() => {})
      // the shard went away behind this store's back: make it again, once
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && again && this.shards.delete(dir)) return await this.write(cid, bytes, false)
      if (isDiskFull(err)) throw new DiskFullError(`no space left on device for block ${cid.toString()} in ${this.dir}`, { cause: err })
      throw err
    }
  }

  async delete (cid: CID): Promise<void> {
    await this.open()
    this.remember(cid, false)
    this.verified.delete(this.fileOf(cid))
    await this.inner.delete(cid)
  }

  /**
   * Delete every block that is neither in the set `mark` returns nor looked up, read or
   * stored while the collection runs (so a fetch that starts meanwhile keeps what it found
   * held). Collections run one at a time.
   */
  async collect (mark: () => Promise<Iterable<CID>>): Promise<BlockCollection> {
    return await this.holding(async () => await this.sweep(mark))
  }

  async holding<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.collecting.then(fn)
    this.collecting = run.catch(() => {})
    return await run
  }

  private async sweep (mark: () => Promise<Iterable<CID>>): Promise<BlockCollection> {
    await this.open()
    const touched = this.touched = new Set<string>()
    const out: BlockCollection = { kept: 0, keptBytes: 0, removed: 0, freedBytes: 0 }
    try {
      const keep = new Set<string>()
      for (const cid of await mark()) keep.add(this.fileOf(cid))
      for (const shard of await fs.readdir(this.dir, { withFileTypes: true })) {
        if (!shard.isDirectory()) continue
        const dir = path.join(this.dir, shard.name)
        for (const file of await fs.readdir(dir).catch(() => [] as string[])) {
          // temporaries of a write in progress start with "."
          if (file.startsWith('.') || !file.endsWith(BLOCK_FILE)) continue
          const size = await fs.stat(path.join(dir, file)).then(s => s.size, () => undefined)
          if (size == null) continue
          // checked and marked in one synchronous step: a lookup before it protects the block, one after it finds it missing
          if (keep.has(file) || touched.has(file) || this.deleting.has(file)) {
            out.kept++
            out.keptBytes += size
            continue
          }
          this.deletions++
          const deleted = this.deleteFile(dir, file)
          this.deleting.set(file, deleted)
          try {
            await deleted
            out.removed++
            out.freedBytes += size
          } finally {
            this.deleting.delete(file)
          }
        }
      }
    } finally {
      this.touched = undefined
    }
    return out
  }

  private async deleteFile (dir: string, file: string): Promise<void> {
    this.forgetFile(file)
    await fs.rm(path.join(dir, file), { force: true })
  }

  /** Forget what the presence cache says of the block in `file`, under every codec a block may have. */
  private forgetFile (file: string): void {
    this.verified.delete(file)
    let digest: Digest.Digest<number, number>
    try {
      digest = Digest.decode(base32upper.decode(file.slice(0, -BLOCK_FILE.length)))
    } catch {
      return
    }
    for (const code of [CODEC_RAW, CODEC_DAG_PB, CODEC_DAG_CBOR]) this.known.delete(CID.createV1(code, digest).toString())
  }
}
