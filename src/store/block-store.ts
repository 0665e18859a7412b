/**
 * Content-addressed block storage: CID → bytes, every block checked against its CID
 * on the way in and on the way out, so a corrupt or forged block is never stored or
 * served.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'uint8arrays/equals'
import { ContentRefusalError, UpgossipError } from '../errors.js'
import { DiskFullError, isDiskFull } from './disk-full.js'

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
  /** The block's bytes, checked against its CID; throws {@link BlockNotFoundError}. */
  get: (cid: CID) => Promise<Uint8Array>
  /** Store a block after checking it against its CID; throws {@link BlockHashMismatchError}. */
  put: (cid: CID, bytes: Uint8Array) => Promise<CID>
  /** Forget a block (no error if absent). */
  delete: (cid: CID) => Promise<void>
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

/** Most blocks whose presence a {@link FsBlockStore} remembers (256 KiB blocks: 64 GiB of packages). */
const MAX_KNOWN = 262_144

/** A block store held in memory (for `pack` without output, and tests). */
export class MemoryBlockStore implements BlockStore {
  private readonly blocks = new Map<string, Uint8Array>()

  async has (cid: CID): Promise<boolean> {
    return this.blocks.has(cid.toString())
  }

  async get (cid: CID): Promise<Uint8Array> {
    const bytes = this.blocks.get(cid.toString())
    if (bytes == null) throw new BlockNotFoundError(`block ${cid.toString()} is not held`)
    return bytes
  }

  async put (cid: CID, bytes: Uint8Array): Promise<CID> {
    await verifyBlock(cid, bytes)
    this.blocks.set(cid.toString(), bytes)
    return cid
  }

  async delete (cid: CID): Promise<void> {
    this.blocks.delete(cid.toString())
  }

  /** Number of blocks held. */
  get count (): number {
    return this.blocks.size
  }
}

/**
 * A block store in a directory (blockstore-fs). Blocks are written to a temporary
 * file and renamed; since a torn write cannot be ruled out without fsync on every
 * block, every read is checked against the CID and a corrupt block is deleted and
 * reported as missing, so it is fetched again. A write that finds the disk full throws
 * {@link DiskFullError} and leaves no partial file behind.
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
  /** Called with every block newly stored (a fetch's, a publish's): peers waiting for one hear of it. */
  onStored: ((cid: CID) => void) | undefined

  constructor (private readonly dir: string) {
    this.inner = new FsBlockstore(dir, { shardingStrategy: this.sharding })
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

  async has (cid: CID): Promise<boolean> {
    const known = this.known.get(cid.toString())
    if (known != null) return known
    await this.open()
    const held = await this.inner.has(cid)
    this.remember(cid, held)
    return held
  }

  async get (cid: CID): Promise<Uint8Array> {
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
    } catch (err) {
      await this.inner.delete(cid)
      this.remember(cid, false)
      throw new BlockNotFoundError(`block ${cid.toString()} was corrupt on disk and has been dropped`, { cause: err })
    }
    return bytes
  }

  async put (cid: CID, bytes: Uint8Array): Promise<CID> {
    await verifyBlock(cid, bytes)
    if (await this.has(cid)) return cid
    try {
      await this.inner.put(cid, bytes)
    } catch (err) {
      if (!isDiskFull(err)) throw err
      // blockstore-fs (steno) writes `.<file>.tmp` next to the block and leaves it when the write fails
      const { dir, file } = this.sharding.encode(cid)
      await fs.rm(path.join(this.dir, dir, `.${file}.tmp`), { force: true }).catch(() => {})
      throw new DiskFullError(`no space left on device for block ${cid.toString()} in ${this.dir}`, { cause: err })
    }
    this.remember(cid, true)
    this.onStored?.(cid)
    return cid
  }

  async delete (cid: CID): Promise<void> {
    await this.open()
    this.remember(cid, false)
    await this.inner.delete(cid)
  }
}
