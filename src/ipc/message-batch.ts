/**
 * IPC messages sent together: what one side queues in the same turn of the event loop
 * goes out as one `{ t: 'batch', messages }` (one serialisation header, one pipe write,
 * one wake-up of the other side) instead of one message each. Under load (64 calls in
 * flight, say) answers come in bursts; alone, a message goes out by itself on the next
 * check phase of the loop, as soon as what runs now has queued what it will.
 *
 * @example
 * ```ts
 * const batch = new MessageBatch<AppMessage>(m => process.send?.(m))
 * batch.push({ t: 'ready' })
 * batch.push({ t: 'response', id, ok: true, value }, err => { … the value cannot be sent … })
 * ```
 */

/** Several messages of one side, in the order they were queued. */
export interface Batch<M> {
  t: 'batch'
  messages: M[]
}

/** True when `value` is a batch (its messages are checked one by one by whoever reads them). */
export function isBatch (value: unknown): value is Batch<unknown> {
  return value != null && typeof value === 'object' && (value as { t?: unknown }).t === 'batch' && Array.isArray((value as { messages?: unknown }).messages)
}

/** Most messages in one batch (a bound on one serialisation's size under a burst). */
const MAX_BATCH = 256

interface Queued<M> {
  message: M
  failed?: (err: Error) => void
}

/** Queues messages and writes them as batches. */
export class MessageBatch<M> {
  private queue: Array<Queued<M>> = []
  private scheduled = false
  private readonly write: (message: M | Batch<M>) => void

  /** `write` sends one message or one batch; it throws when a value cannot be serialised. */
  constructor (write: (message: M | Batch<M>) => void) {
    this.write = write
  }

  /** Queue `message`; `failed` hears why, if it cannot be sent (a value IPC cannot carry). */
  push (message: M, failed?: (err: Error) => void): void {
    this.queue.push(failed == null ? { message } : { message, failed })
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => { this.flush() })
  }

  /** Send what is queued now. */
  flush (): void {
    this.scheduled = false
    const queue = this.queue
    this.queue = []
    for (let start = 0; start < queue.length; start += MAX_BATCH) {
      const part = queue.slice(start, start + MAX_BATCH)
      if (part.length === 1) {
        this.one(part[0] as Queued<M>)
        continue
      }
      try {
        this.write({ t: 'batch', messages: part.map(q => q.message) })
      } catch {
        // one value that cannot be serialised fails the whole batch: send them one by one
        for (const q of part) this.one(q)
      }
    }
  }

  private one (q: Queued<M>): void {
    try {
      this.write(q.message)
    } catch (err) {
      q.failed?.(err as Error)
    }
  }
}
