/**
 * A libp2p stream as a channel of length-prefixed frames that outlives one exchange: the
 * app streams keep such channels open and send exchange after exchange on them, so a call
 * costs no stream setup, no protocol negotiation and no peer-store write on the far side.
 *
 * Writes wait until the stream has taken the previous one (yamux's window is the
 * backpressure), and the frames of one write go out as one chunk (one yamux frame, one
 * noise frame): one `Uint8ArrayList` of each frame's length prefix and its pieces, so a
 * frame given as pieces (a block beside its small header) is never copied into one array
 * here — yamux cuts its frames out of the list. Reads take one frame at a time, each within the channel's limit.
 *
 * @example
 * ```ts
 * const channel = new FramedChannel(stream, MAX_APP_FRAME)
 * await channel.write([request])
 * const response = await channel.read() // undefined: the other side closed its writing side
 * ```
 */
import type { Stream } from '@libp2p/interface'
import * as lp from 'it-length-prefixed'
import { Uint8ArrayList } from 'uint8arraylist'
import { MessageTooLargeError, StreamEndedError } from './stream-codec.js'

interface Pending {
  promise: Promise<void>
  resolve: () => void
  reject: (err: Error) => void
}

function pending (): Pending {
  let resolve: () => void = () => {}
  let reject: (err: Error) => void = () => {}
  const promise = new Promise<void>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
  return { promise, resolve, reject }
}

/** A channel a peer serves: answering now (`busy`), and to be closed after that (`stop`). */
export interface Served {
  channel: FramedChannel
  busy: boolean
  stop: boolean
}

/** Frames both ways on one libp2p stream. */
export class FramedChannel {
  readonly stream: Stream
  private readonly maxFrame: number
  private readonly frames: AsyncIterator<{ subarray: () => Uint8Array }>
  /** A read started while the channel was idle (see {@link watch}): the next read takes it. */
  private ahead: Promise<IteratorResult<{ subarray: () => Uint8Array }>> | undefined
  /** What the stream's sink waits for, and whom to tell once it took it. */
  private next: { chunk: Uint8ArrayList | null, taken: Pending } | undefined
  private wanted: Pending | undefined
  private readonly sinking: Promise<void>
  private failure: Error | undefined
  private ended = false

  private readonly counted: (direction: 'in' | 'out', bytes: number) => void

  /** `counted` hears of every frame's size as it is read or written. */
  constructor (stream: Stream, maxFrame: number, counted: (direction: 'in' | 'out', bytes: number) => void = () => {}) {
    this.stream = stream
    this.maxFrame = maxFrame
    this.counted = counted
    this.frames = lp.decode(stream.source, { maxDataLength: maxFrame })[Symbol.asyncIterator]()
    this.sinking = stream.sink(this.source()).catch((err: Error) => { this.fail(err) })
  }

  /** What the stream's sink reads: each write's chunk, when it is given; null ends it. */
  private async * source (): AsyncGenerator<Uint8ArrayList> {
    while (true) {
      if (this.next == null) {
        this.wanted = pending()
        await this.wanted.promise
      }
      const next = this.next
      if (next == null) continue
      this.next = undefined
      if (next.chunk == null) {
        next.taken.resolve()
        return
      }
      yield next.chunk
      // the sink asks for the next chunk once it wrote this one
      next.taken.resolve()
    }
  }

  private fail (err: Error): void {
    this.failure ??= err
    this.next?.taken.reject(this.failure)
    this.next = undefined
  }

  /** True once the channel cannot carry another exchange (ended, failed or reset). */
  get closed (): boolean {
    return this.ended || this.failure != null || this.stream.status !== 'open' || (this.stream.writeStatus !== 'writing' && this.stream.writeStatus !== 'ready')
  }

  /** Write `frames` (each one array, or a list of its pieces) as one chunk, uncopied; resolves once the stream took it. */
  async write (frames: Array<Uint8Array | Uint8ArrayList>): Promise<void> {
    if (this.failure != null) throw new StreamEndedError(`the stream failed: ${this.failure.message}`)
    if (this.ended) throw new StreamEndedError('the channel was closed for writing')
    const chunk = new Uint8ArrayList()
    let bytes = 0
    for (const frame of frames) {
      // the length prefix, then the frame's own arrays (appended, not copied)
      chunk.append(lp.encode.single(frame))
      bytes += frame.byteLength
    }
    this.counted('out', bytes)
    await this.hand(chunk)
  }

  private async hand (chunk: Uint8ArrayList | null): Promise<void> {
    if (this.next != null) throw new Error('FramedChannel: one write at a time')
    const taken = pending()
    this.next = { chunk, taken }
    this.wanted?.resolve()
    this.wanted = undefined
    await taken.promise
  }

  /** The next frame; undefined when the other side closed its writing side. */
  async read (): Promise<Uint8Array | undefined> {
    const ahead = this.ahead
    this.ahead = undefined
    let result
    try {
      result = await (ahead ?? this.frames.next())
    } catch (err) {
      this.failure ??= err as Error
      throw mapReadError(err, this.maxFrame)
    }
    if (result.done === true) return undefined
    const frame = result.value.subarray()
    this.counted('in', frame.byteLength)
    return frame
  }

  /**
   * While the channel is idle, read ahead: `onClose` is called if the other side closes
   * or resets it, or sends a frame nobody asked for. The next {@link read} takes the result.
   */
  watch (onClose: () => void): void {
    if (this.ahead != null) return
    const ahead = this.frames.next()
    this.ahead = ahead
    ahead.then(() => { if (this.ahead === ahead) onClose() }, () => { if (this.ahead === ahead) onClose() })
  }

  /** Close the writing side (the other side reads the end); resolves once it is closed. */
  async end (): Promise<void> {
    if (this.ended) return
    this.ended = true
    // a write in flight goes out first
    while (this.next != null) await this.next.taken.promise.catch(() => {})
    if (this.failure == null) await this.hand(null).catch(() => {})
    await this.sinking
  }

  /** Close both ways at once, as a failure (the other side sees a reset). */
  abort (err: Error): void {
    this.fail(err)
    this.stream.abort(err)
  }
}

function mapReadError (err: unknown, maxBytes: number): Error {
  const name = (err as Error)?.name ?? ''
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError' || name === 'InvalidMessageLengthError') {
    return new MessageTooLargeError(`peer sent a message larger than ${maxBytes} bytes`)
  }
  return new StreamEndedError(`stream failed: ${(err as Error)?.message ?? String(err)}`)
}
