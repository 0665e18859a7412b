/**
 * Giving memory back after a burst of work. V8 keeps the garbage of a burst (the daemon's
 * start compiles ~800 modules; a package is fetched, checked and unpacked) and the young
 * generation the burst grew (up to 32 MB) until its memory reducer gets round to it: in an
 * idle daemon 15-35 s later, measured. A daemon that has gone quiet for `quietMs` after a
 * burst asks for one full, memory-reducing collection instead, so its resident memory is
 * its idle size from then on. It costs one pause of tens of milliseconds per burst.
 *
 * @example
 * ```ts
 * const settle = new MemorySettle({ busy: () => fetches.size > 0 }, { quietMs: 3000 })
 * settle.start()
 * settle.burstEnded() // after start-up, after a fetch or an upgrade
 * ```
 */
import v8 from 'node:v8'
import vm from 'node:vm'

/** A full collection; resolves to nothing, never throws. */
export type FullCollection = () => void

/** What the settler needs from its owner. */
export interface MemorySettleComponents {
  /** True while work is under way (a fetch, an upgrade): the collection waits until it ends. */
  busy: () => boolean
  /** The collection to run; tests hand in a stub. Default: {@link fullCollection}. */
  collect?: FullCollection
}

/** Options. */
export interface MemorySettleInit {
  /** How long the daemon must stay quiet after a burst before the collection runs. */
  quietMs?: number
}

/** Default quiet time after a burst. */
export const DEFAULT_SETTLE_QUIET_MS = 3000

type GcFunction = (options?: { type?: string, execution?: string, flavor?: string }) => void

/**
 * V8's collection of all available garbage (`flavor: 'last-resort'`: full, compacting,
 * shrinks the young generation). `gc` is not exposed to the daemon's own context: it is
 * taken from a fresh context made while `--expose-gc` is on for a moment, and the flag is
 * turned off again, so neither this context nor later ones (workers, `vm`) see it.
 */
export function fullCollection (): void {
  let gc = (globalThis as { gc?: GcFunction }).gc
  if (gc == null) {
    try {
      v8.setFlagsFromString('--expose-gc')
      gc = vm.runInNewContext('gc') as GcFunction | undefined
    } catch {
      gc = undefined
    } finally {
      v8.setFlagsFromString('--no-expose-gc')
    }
  }
  try {
    gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' })
  } catch {
    // a Node whose V8 has no such collection: the memory reducer will do it later
  }
}

/** Runs one full collection once the daemon has been quiet for a while after a burst. */
export class MemorySettle {
  private readonly quietMs: number
  private readonly busy: () => boolean
  private readonly collect: FullCollection
  private timer: NodeJS.Timeout | undefined
  private running = false
  /** Collections run so far (for tests and metrics). */
  collections = 0

  constructor (components: MemorySettleComponents, init: MemorySettleInit = {}) {
    this.busy = components.busy
    this.collect = components.collect ?? fullCollection
    this.quietMs = init.quietMs ?? DEFAULT_SETTLE_QUIET_MS
  }

  /** Start accepting bursts. */
  start (): void {
    this.running = true
  }

  /** Stop; a pending collection is dropped. */
  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    this.timer = undefined
  }

  /** A burst of work ended: collect once the daemon has been quiet for `quietMs` (a later burst moves that on). */
  burstEnded (): void {
    if (!this.running) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.fire() }, this.quietMs)
    this.timer.unref()
  }

  private fire (): void {
    this.timer = undefined
    if (!this.running) return
    if (this.busy()) {
      this.burstEnded()
      return
    }
    this.collections++
    this.collect()
  }
}
