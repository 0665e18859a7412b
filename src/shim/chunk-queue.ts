/**
 * A bounded queue of byte chunks read as an async iterable, by one reader: how bytes
 * cross between the daemon and the worker thread that runs stream simulation objects.
 * The writer keeps within the bound by credit (it learns of every chunk taken through
 * `onTake`); a writer that does not is cut off: the queue fails instead of growing.
 *
 * This module has no imports, and no TypeScript that Node cannot strip: the worker
 * thread loads it as it is.
 *
 * @example
 * ```ts
 * const queue = new ChunkQueue(256 * 1024, n => { credit(n) })
 * queue.push(chunk); queue.end()
 * for await (const chunk of queue) use(chunk)
 * ```
 */

/** A bounded queue of chunks with one reader. */
export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private readonly maxBytes: number
  private readonly onTake: (bytes: number) => void
  private readonly onAbandon: () => void
  private readonly chunks: Uint8Array[] = []
  private bytes = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined

  /**
   * @param maxBytes - the most bytes held at once; a push past it fails the queue
   * @param onTake - called with the size of every chunk the reader takes
   * @param onAbandon - called when the reader stops before the end (breaks out of its loop)
   */
  constructor (maxBytes: number, onTake: (bytes: number) => void = () => {}, onAbandon: () => void = () => {}) {
    this.maxBytes = maxBytes
    this.onTake = onTake
    this.onAbandon = onAbandon
  }

  /** The bytes held now. */
  get queued (): number {
    return this.bytes
  }

  /** True once ended or failed. */
  get closed (): boolean {
    return this.ended || this.error != null
  }

  /** Add a chunk (ignored once the queue is closed). */
  push (chunk: Uint8Array): void {
    if (this.closed) return
    if (this.bytes + chunk.byteLength > this.maxBytes) {
      this.fail(new Error(`more than ${this.maxBytes} bytes were queued: the writer did not wait for credit`))
      return
    }
    this.chunks.push(chunk)
    this.bytes += chunk.byteLength
    this.notify()
  }

  /** No more chunks: the reader ends once it has taken those held. */
  end (): void {
    if (this.closed) return
    this.ended = true
    this.notify()
  }

  /** The reader throws `err` at once (chunks held are dropped). */
  fail (err: Error): void {
    if (this.closed) return
    this.error = err
    this.chunks.length = 0
    this.bytes = 0
    this.notify()
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array> {
    let finished = false
    try {
      while (true) {
        if (this.error != null) throw this.error
        const chunk = this.chunks.shift()
        if (chunk != null) {
          this.bytes -= chunk.byteLength
          this.onTake(chunk.byteLength)
          yield chunk
          continue
        }
        if (this.ended) {
          finished = true
          return
        }
        await new Promise<void>(resolve => { this.wake = resolve })
      }
    } finally {
      if (!finished && this.error == null) this.onAbandon()
    }
  }
}
