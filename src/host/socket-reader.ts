/**
 * What a TCP socket receives, as an async iterable of batches: each step hands over every
 * byte that arrived since the last one, in one array. A libp2p stream cuts what it is
 * given into frames of up to 64 KiB, and each frame costs a noise message, a socket write
 * and the peer's window update; a socket's reads come in whatever sizes the kernel had
 * (often 16 KiB or less), so handing them on one by one made several small frames where
 * one full frame would do. Joining a batch costs one copy, far less than the frames saved.
 *
 * The socket is paused while more than `maxQueued` bytes wait for the consumer, so a slow
 * peer slows the app's writes down (TCP's own flow control) instead of filling memory.
 * The end of the socket's reading side ends the iteration and nothing else: its writing
 * side stays open for the answer to a client that half-closed (`shutdown(SHUT_WR)`).
 *
 * @example
 * ```ts
 * for await (const batch of readSocket(socket)) await send(batch)
 * ```
 */
import type net from 'node:net'
import { UpgossipError } from '../errors.js'
import { STREAM_PIECE } from '../net/index.js'

/** The connection was reset (or destroyed) before its reading side ended in order. */
export class ConnectionResetError extends UpgossipError {
  static override name = 'ConnectionResetError'
}

/** Bytes waiting for the consumer before the socket is paused: a few full frames. */
const MAX_QUEUED = 256 * 1024

/** Reads one socket in batches; see the module's comment. */
class SocketReader implements AsyncIterator<Uint8Array> {
  private queue: Buffer[] = []
  private queued = 0
  private ended = false
  private error: Error | undefined
  private paused = false
  /** Only the tail a {@link take} kept is queued (nothing arrived since). */
  private kept = false
  /** Wakes a consumer waiting in `next()`. */
  private wake: (() => void) | undefined

  constructor (private readonly socket: net.Socket, head: Uint8Array | undefined, private readonly maxQueued: number, private readonly piece: number) {
    if (head != null && head.byteLength > 0) this.onData(Buffer.from(head.buffer, head.byteOffset, head.byteLength))
    socket.on('data', this.onData)
    socket.once('end', this.onEnd)
    socket.once('close', this.onClose)
    socket.once('error', this.onError)
    // the socket may come paused (an HTTP server hands over a CONNECT's socket as it was)
    socket.resume()
  }

  private readonly onData = (chunk: Buffer): void => {
    this.kept = false
    this.queue.push(chunk)
    this.queued += chunk.byteLength
    if (this.queued >= this.maxQueued && !this.paused) {
      this.paused = true
      this.socket.pause()
    }
    this.notify()
  }

  private readonly onEnd = (): void => {
    this.ended = true
    this.notify()
  }

  private readonly onClose = (): void => {
    if (!this.ended) this.error ??= new ConnectionResetError('the connection closed before its end')
    this.notify()
  }

  private readonly onError = (err: Error): void => {
    this.error ??= err
    this.notify()
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /**
   * Everything queued, as one array, and the socket read again if it was paused. When more
   * than a piece is queued, a tail shorter than a piece stays for the next step: the kernel
   * hands over reads of 64 KiB, a noise message holds 65,507 bytes of them, and the 29
   * left of each read went out as a noise message, a socket write and a decryption of their
   * own. Kept, the tail is joined with what arrived meanwhile (a stream in full flow), or
   * goes alone at the next step (nothing arrived: it is not held back).
   */
  private take (): Uint8Array {
    const batch = this.queue.length === 1 ? this.queue[0] as Buffer : Buffer.concat(this.queue, this.queued)
    const whole = batch.byteLength > this.piece ? batch.byteLength - batch.byteLength % this.piece : batch.byteLength
    this.queue = whole < batch.byteLength ? [batch.subarray(whole)] : []
    this.queued = batch.byteLength - whole
    this.kept = this.queued > 0
    if (this.paused) {
      this.paused = false
      if (!this.socket.destroyed) this.socket.resume()
    }
    return whole < batch.byteLength ? batch.subarray(0, whole) : batch
  }

  async next (): Promise<IteratorResult<Uint8Array>> {
    while (true) {
      // a kept tail waits one turn of the event loop (the next reads) for bytes to join it
      if (this.queued > 0 && this.kept && !this.ended && this.error == null) await this.nextTurn()
      if (this.queued > 0) return { done: false, value: this.take() }
      if (this.error != null) {
        this.stop()
        throw this.error
      }
      if (this.ended) {
        this.stop()
        return { done: true, value: undefined }
      }
      await new Promise<void>(resolve => { this.wake = resolve })
    }
  }

  /** Until the socket's next reads have run (the check phase after the next poll), or data came. */
  private async nextTurn (): Promise<void> {
    this.kept = false
    await new Promise<void>(resolve => {
      this.wake = resolve
      setImmediate(() => { setImmediate(resolve) })
    })
  }

  /** The consumer stopped: stop listening (and reading), but leave the socket to its owner. */
  async return (): Promise<IteratorResult<Uint8Array>> {
    this.stop()
    if (!this.socket.destroyed) this.socket.pause()
    return { done: true, value: undefined }
  }

  private stop (): void {
    this.socket.off('data', this.onData)
    this.socket.off('end', this.onEnd)
    this.socket.off('close', this.onClose)
    this.socket.off('error', this.onError)
  }
}

/** What `socket` receives (after `head`, bytes already read from it), in batches of whole `piece`s when more than one is there; see the module's comment. */
export function readSocket (socket: net.Socket, head?: Uint8Array, maxQueued = MAX_QUEUED, piece = STREAM_PIECE): AsyncIterable<Uint8Array> {
  let reader: SocketReader | undefined
  return {
    [Symbol.asyncIterator]: () => {
      reader ??= new SocketReader(socket, head, maxQueued, piece)
      return reader
    }
  }
}
