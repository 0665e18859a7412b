/**
 * A block store in memory: for `pack` without output, bundles read into memory, and tests.
 *
 * @example
 * ```ts
 * const store = new MemoryBlockStore()
 * await store.put(cid, bytes) // refused with BlockHashMismatchError if bytes do not match
 * ```
 */
import type { CID } from 'multiformats/cid'
import { BlockNotFoundError, verifyBlock } from './block-store.js'
import type { BlockStore, BlockStoreMeter } from './block-store.js'

/** A block store held in memory (for `pack` without output, and tests). */
export class MemoryBlockStore implements BlockStore {
  private readonly blocks = new Map<string, Uint8Array>()
  meter: BlockStoreMeter | undefined

  /** A store of blocks the caller has just checked against their CIDs (`readCar` does): not hashed again. */
  static ofVerified (blocks: Iterable<{ cid: CID, bytes: Uint8Array }>): MemoryBlockStore {
    const store = new MemoryBlockStore()
    for (const { cid, bytes } of blocks) store.blocks.set(cid.toString(), bytes)
    return store
  }

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
    this.meter?.hashed(bytes.byteLength)
    if (!this.blocks.has(cid.toString())) this.meter?.written(bytes.byteLength)
    this.blocks.set(cid.toString(), bytes)
    return cid
  }

  async delete (cid: CID): Promise<void> {
    this.blocks.delete(cid.toString())
  }

  async holding<T> (fn: () => Promise<T>): Promise<T> {
    return await fn()
  }

  /** Number of blocks held. */
  get count (): number {
    return this.blocks.size
  }
}
