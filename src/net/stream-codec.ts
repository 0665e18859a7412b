/**
 * Length-prefixed messages on libp2p streams, with a size limit on every frame and
 * a deadline on every exchange, so a peer can neither flood nor stall us.
 */
import type { PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import * as lp from 'it-length-prefixed'
import { UpgossipError } from '../errors.js'

/** A frame larger than the protocol allows. */
export class MessageTooLargeError extends UpgossipError {
  static override name = 'MessageTooLargeError'
}

/** The stream ended or broke before the expected message arrived. */
export class StreamEndedError extends UpgossipError {
  static override name = 'StreamEndedError'
}

function mapError (err: unknown, maxBytes: number): Error {
  const name = (err as Error)?.name ?? ''
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError' || name === 'InvalidMessageLengthError') {
    return new MessageTooLargeError(`peer sent a message larger than ${maxBytes} bytes`)
  }
  if (err instanceof UpgossipError) return err
  return new StreamEndedError(`stream failed: ${(err as Error)?.message ?? String(err)}`)
}

/** Read the frames of a stream, each at most `maxBytes`. */
export async function * readFrames (stream: Stream, maxBytes: number): AsyncGenerator<Uint8Array> {
  try {
    for await (const frame of lp.decode(stream.source, { maxDataLength: maxBytes })) {
      yield frame.subarray()
    }
  } catch (err) {
    throw mapError(err, maxBytes)
  }
}

/** Read exactly one frame; throws {@link StreamEndedError} when the stream ends first. */
export async function readFrame (stream: Stream, maxBytes: number): Promise<Uint8Array> {
  // eslint-disable-next-line no-unreachable-loop -- the first frame is the answer; the rest of the stream is not read
  for await (const frame of readFrames(stream, maxBytes)) return frame
  throw new StreamEndedError('stream ended before a message arrived')
}

/**
 * Abort `stream` with `onTimeout()` unless the returned release is called within
 * `timeoutMs`: every exchange, served or asked for, has a deadline.
 */
export function streamDeadline (stream: Stream, timeoutMs: number, onTimeout: () => Error): () => void {
  const timer = setTimeout(() => { stream.abort(onTimeout()) }, timeoutMs)
  return () => { clearTimeout(timer) }
}

/** Libp2p's use priority for a dial: ahead of its own background dials, as its `dialProtocol` does. */
const USER_DIAL_PRIORITY = 75

/**
 * Open a stream for `protocol` (the first of a list the peer speaks) to `peer`, with the
 * dial and the exchange after it bounded together by `timeoutMs`.
 */
export async function dialWithDeadline (connections: Pick<ConnectionManager, 'openConnection'>, peer: PeerId, protocol: string | string[], timeoutMs: number, onTimeout: () => Error): Promise<{ stream: Stream, release: () => void }> {
  const deadline = Date.now() + timeoutMs
  const signal = AbortSignal.timeout(timeoutMs)
  const connection = await connections.openConnection(peer, { priority: USER_DIAL_PRIORITY, signal })
  const stream = await connection.newStream(protocol, { signal })
  return { stream, release: streamDeadline(stream, Math.max(0, deadline - Date.now()), onTimeout) }
}

/** Write frames and close the writing side. */
export async function writeFrames (stream: Stream, frames: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
  await stream.sink(lp.encode(frames))
}
