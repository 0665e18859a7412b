/**
 * Streamed exchanges on a {@link FramedChannel}: a head frame, the body as frames, and an
 * empty frame that ends it; then the answer the same way. Bodies have no size limit of
 * their own: each frame is bounded, and yamux's window paces the sender. An exchange that
 * goes quiet for the deadline is aborted; one that ends in order leaves the channel ready
 * for the next.
 *
 * @example
 * ```ts
 * const answer = await exchangeStreamed(pool, peer, protocol, head, bodyChunks, 30_000)
 * for await (const chunk of answer.body) res.write(chunk)
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import type { ChannelPool } from './channel-pool.js'
import type { FramedChannel, Served } from './framed-channel.js'
import { StreamEndedError } from './stream-codec.js'

/** Largest frame of a streamed exchange (a head, or a piece of a body). */
export const MAX_STREAMED_FRAME = 256 * 1024
const END = new Uint8Array(0)

/** A head and a body: bytes at hand, or chunks as they come. */
export interface StreamedMessage {
  head: Uint8Array
  body: Uint8Array | AsyncIterable<Uint8Array>
}

/** Answers one streamed exchange; it must not throw (errors go in its answer's head). */
export type StreamedHandler = (from: string, head: Uint8Array, body: AsyncIterable<Uint8Array>) => Promise<StreamedMessage>

/**
 * Aborts the channel when nothing moved on it for `ms`; `touch` on every frame. One timer
 * per exchange, not one per frame: a touch only notes the time, and the timer, when it
 * fires early, waits out the rest (re-arming a timer per frame cost more than the frame).
 */
class Quiet {
  private timer: NodeJS.Timeout | undefined
  private last = performance.now()
  constructor (private readonly channel: FramedChannel, private readonly ms: number, private readonly what: string) {
    this.arm(ms)
  }

  private arm (ms: number): void {
    this.timer = setTimeout(() => {
      const idle = performance.now() - this.last
      if (idle < this.ms) this.arm(this.ms - idle)
      else this.channel.abort(new StreamEndedError(`${this.what}: nothing moved for ${this.ms} ms`))
    }, ms)
  }

  touch (): void {
    this.last = performance.now()
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }
}

/** The body frames that follow a head, up to the empty frame; `done()` says whether it was reached. */
function bodyOf (channel: FramedChannel, quiet: Quiet): { body: AsyncGenerator<Uint8Array>, done: () => boolean } {
  let ended = false
  const body = (async function * () {
    while (true) {
      const frame = await channel.read()
      quiet.touch()
      if (frame == null) throw new StreamEndedError('the stream ended in the middle of a body')
      if (frame.byteLength === 0) {
        ended = true
        return
      }
      yield frame
    }
  })()
  return { body, done: () => ended }
}

/** Write a message: its head, its body and the end, in as few writes as its body allows. */
async function writeMessage (channel: FramedChannel, message: StreamedMessage, quiet: Quiet): Promise<void> {
  const { head, body } = message
  if (body instanceof Uint8Array) {
    const pieces = [head]
    for (let at = 0; at < body.byteLength; at += MAX_STREAMED_FRAME) pieces.push(body.subarray(at, at + MAX_STREAMED_FRAME))
    pieces.push(END)
    await channel.write(pieces)
    return
  }
  await channel.write([head])
  for await (const chunk of body) {
    for (let at = 0; at < chunk.byteLength; at += MAX_STREAMED_FRAME) {
      await channel.write([chunk.subarray(at, at + MAX_STREAMED_FRAME)])
      quiet.touch()
    }
  }
  await channel.write([END])
}

/**
 * Serve streamed exchanges on `channel` until the caller closes it: each head is answered
 * by `handler`; its answer goes back whole before the next exchange is read.
 */
export async function serveStreamed (served: Served, from: string, handler: StreamedHandler, quietMs: number): Promise<void> {
  const { channel } = served
  while (true) {
    const head = await channel.read()
    // an exchange that crossed the end of this channel is not taken: the caller sends it again
    if (head == null || served.stop) break
    served.busy = true
    const quiet = new Quiet(channel, quietMs, 'an exchange')
    try {
      const request = bodyOf(channel, quiet)
      const answer = await handler(from, head, request.body)
      await writeMessage(channel, answer, quiet)
      // an answer given before the whole request was read (an error, say): the rest of it is
      // still on the way, so this channel cannot carry another exchange
      if (!request.done()) {
        channel.abort(new StreamEndedError('answered before the request body was read'))
        return
      }
    } finally {
      quiet.stop()
      served.busy = false
    }
    if (served.stop) break
  }
  await channel.end()
}

/**
 * One streamed exchange with `peer` on `protocol`: the request goes out as it comes while
 * the answer is read; resolves with the answer's head once it arrives (within `timeoutMs`),
 * its body to be read by the caller. The channel goes back to the pool when both bodies
 * ended in order, and is aborted otherwise (the caller stopped reading, say).
 */
export async function exchangeStreamed (pool: ChannelPool, peer: PeerId, protocol: string, request: StreamedMessage, timeoutMs: number): Promise<{ head: Uint8Array, body: AsyncIterable<Uint8Array> }> {
  const { channel, reused } = await pool.take(peer, protocol, timeoutMs, MAX_STREAMED_FRAME)
  try {
    return await exchangeOn(pool, channel, peer, protocol, request, timeoutMs)
  } catch (err) {
    // a kept channel the peer closed before it read this exchange (it stopped speaking that
    // version): sent once more on a new stream, when the body is at hand to send again
    if (!reused || !(err instanceof UnansweredError) || !(request.body instanceof Uint8Array)) throw err
    const fresh = await pool.take(peer, protocol, timeoutMs, MAX_STREAMED_FRAME)
    return await exchangeOn(pool, fresh.channel, peer, protocol, request, timeoutMs)
  }
}

/** The peer closed the channel without answering. */
class UnansweredError extends StreamEndedError {}

async function exchangeOn (pool: ChannelPool, channel: FramedChannel, peer: PeerId, protocol: string, request: StreamedMessage, timeoutMs: number): Promise<{ head: Uint8Array, body: AsyncIterable<Uint8Array> }> {
  const quiet = new Quiet(channel, timeoutMs, `${protocol} to ${peer.toString()}`)
  const writing = writeMessage(channel, request, quiet)
  writing.catch(() => {})
  let head: Uint8Array | undefined
  try {
    head = await channel.read()
    quiet.touch()
    if (head == null) throw new UnansweredError('the peer closed the stream without an answer')
  } catch (err) {
    quiet.stop()
    channel.abort(err as Error)
    throw err
  }
  const answer = bodyOf(channel, quiet)
  const body = (async function * () {
    try {
      yield * answer.body
    } finally {
      quiet.stop()
      const broken = (): void => { channel.abort(new StreamEndedError('the exchange did not end in order')) }
      // the request has gone out whole by now unless the peer answered early (it then aborts the channel)
      if (answer.done()) writing.then(() => { pool.give(peer, protocol, channel) }, broken)
      else broken()
    }
  })()
  return { head, body }
}
