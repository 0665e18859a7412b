/**
 * The blocks a block store has itself checked against their CIDs lately, kept in memory:
 * a block fetched or published is read again at once — served to other peers, walked
 * by staging, written out by unpack — and each of those reads would otherwise cost a
 * file read, a fresh buffer and a sha-256 of the whole block.
 *
 * @example
 * ```ts
 * const cache = new VerifiedBlockCache({ clock })
 * cache.set(file, bytes) // only bytes checked against their CID
 * cache.get(file) // → bytes, or undefined once evicted, deleted or expired
 * ```
 */
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'

/**
 * Bytes of blocks kept by default: a 16 MiB package whole (fetch, serve, stage, unpack
 * without a read), while a daemon that fetches stays well within its memory budget
 * (docs/benchmarks-analysis.md, "swarm CPU").
 */
export const DEFAULT_BLOCK_CACHE_BYTES = 32 * 1024 * 1024
/**
 * How long the cache keeps its blocks with no use: longer than the gaps between the
 * reads of one fetch → stage → unpack, short enough that an idle daemon gives the memory back.
 */
export const DEFAULT_BLOCK_CACHE_IDLE_MS = 30_000

/** Options of a {@link VerifiedBlockCache}. */
export interface VerifiedBlockCacheInit {
  /** Most bytes of blocks held (default {@link DEFAULT_BLOCK_CACHE_BYTES}; 0: none). */
  maxBytes?: number
  /** With no `get` or `set` for this long, every block is dropped (default {@link DEFAULT_BLOCK_CACHE_IDLE_MS}). */
  idleMs?: number
  clock?: Clock
}

/**
 * A least-recently-used set of verified blocks, by key (the block's file name), bounded
 * by bytes and emptied after a while of no use. The bytes handed out are the ones kept:
 * callers must not modify them.
 */
export class VerifiedBlockCache {
  private readonly blocks = new Map<string, Uint8Array>()
  private held = 0
  private lastUse = 0
  private timer: NodeJS.Timeout | undefined
  private readonly maxBytes: number
  private readonly idleMs: number
  private readonly clock: Clock
  /** Called with the bytes dropped when the idle time emptied the cache: garbage now (the daemon may ask for a collection). */
  onExpired: ((bytes: number) => void) | undefined

  constructor (init: VerifiedBlockCacheInit = {}) {
    this.maxBytes = init.maxBytes ?? DEFAULT_BLOCK_CACHE_BYTES
    this.idleMs = init.idleMs ?? DEFAULT_BLOCK_CACHE_IDLE_MS
    this.clock = init.clock ?? systemClock
  }

  /** Bytes of blocks held now. */
  get bytes (): number {
    return this.held
  }

  /** Blocks held now. */
  get size (): number {
    return this.blocks.size
  }

  /** The block kept under `key`, now the most recently used; undefined if not kept. */
  get (key: string): Uint8Array | undefined {
    if (this.blocks.size === 0) return undefined
    this.expire()
    const bytes = this.blocks.get(key)
    if (bytes == null) return undefined
    this.blocks.delete(key)
    this.blocks.set(key, bytes)
    this.lastUse = this.clock.now()
    return bytes
  }

  /**
   * Keep `bytes`, which the caller checked against the block's CID, evicting the least
   * recently used blocks past the bound. A view into a larger buffer (a block of a whole
   * bundle in memory) is copied, so the cache never keeps more memory alive than it counts.
   */
  set (key: string, bytes: Uint8Array): void {
    if (bytes.byteLength > this.maxBytes) return
    this.expire()
    this.delete(key)
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()
    this.blocks.set(key, own)
    this.held += own.byteLength
    for (const [oldest, old] of this.blocks) {
      if (this.held <= this.maxBytes) break
      this.blocks.delete(oldest)
      this.held -= old.byteLength
    }
    this.lastUse = this.clock.now()
    this.arm()
  }

  /** Drop the block kept under `key`, if any. */
  delete (key: string): void {
    const bytes = this.blocks.get(key)
    if (bytes == null) return
    this.blocks.delete(key)
    this.held -= bytes.byteLength
  }

  /** Drop every block. */
  clear (): void {
    this.blocks.clear()
    this.held = 0
    clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Drop every block if none was used for the idle time; true if it did. */
  expire (): boolean {
    if (this.blocks.size === 0 || this.clock.now() - this.lastUse < this.idleMs) return false
    const bytes = this.held
    this.clear()
    this.onExpired?.(bytes)
    return true
  }

  /** A timer that empties an idle cache even if nothing asks it again (it never keeps the process alive). */
  private arm (): void {
    if (this.timer != null) return
    const wait = Math.min(this.idleMs, Math.max(1000, this.lastUse + this.idleMs - this.clock.now()))
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (!this.expire() && this.blocks.size > 0) this.arm()
    }, wait)
    this.timer.unref()
  }
}
