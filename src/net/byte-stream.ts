/**
 * Raw bytes both ways on a libp2p stream, for apps whose wire is TCP
 * (`/upgossip/app-tcp/<app>/<protocol>`): after one status byte from the answering side
 * (0: its app accepted the connection; 1: refused, followed by a JSON error of at most
 * 4 KiB and the end of the stream) the stream carries the apps' bytes, untouched and with
 * yamux's flow control, for as long as either side keeps it open. Half-closes cross.
 *
 * The bytes pass through here without a copy or an async generator of ours: the stream's
 * chunks (lists of arrays, as yamux cut them) are handed on as they are, and bytes are
 * counted in the metrics once per turn of the event loop, not once per chunk.
 *
 * @example
 * ```ts
 * const bytes = await openByteStream(connectionManager, peer, '/upgossip/app-tcp/chat/1', 30_000, metrics)
 * await Promise.all([bytes.sink(socketSource), writeAll(socket, bytes.source)])
 * ```
 */
import type { PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Uint8ArrayList } from 'uint8arraylist'
import { RemoteNamedError, UpgossipError } from '../errors.js'
import type { NetMetrics } from './metrics.js'
import { StreamEndedError, dialWithDeadline, streamDeadline } from './stream-codec.js'

/** The answering side's app accepted the connection: the app's bytes follow. */
const ACCEPTED = 0
/** Refused: a JSON `{ name, message }` follows, then the end of the stream. */
const REFUSED = 1
/** Longest refusal. */
const MAX_REFUSAL = 4096

/**
 * The most plaintext one noise message carries (65,535 bytes less the 16-byte tag). The
 * node caps yamux frames, header included, at this size (node.ts): yamux's default of
 * 64 KiB made every full frame two noise messages, the second of 17 bytes — two
 * encryptions, two socket writes and two decryptions a frame.
 */
export const NOISE_PLAINTEXT_MAX = 65_519

/** The largest piece of bytes handed to a stream at once: a yamux frame of it (12 bytes of header) fills one noise message. */
export const STREAM_PIECE = NOISE_PLAINTEXT_MAX - 12

/**
 * A run of bytes: one array, or several in a row (a libp2p stream's chunks are lists of
 * arrays: a yamux frame often spans two noise messages), passed on without being copied
 * into one. `subarray()` copies a list into one array, where one is needed.
 */
export type Bytes = Uint8Array | Uint8ArrayList

/** Bytes both ways, in the manner of it-pipe's duplex: read `source`, hand `sink` what to write. */
export interface ByteStream {
  /** The bytes the other side sends; ends when it closes its writing side. */
  source: AsyncIterable<Bytes>
  /** Write everything `source` yields, then close the writing side. */
  sink: (source: AsyncIterable<Bytes>) => Promise<void>
  /** Close both ways at once, as a failure (the other side sees a reset). */
  abort: (err: Error) => void
}

/**
 * What answers an incoming byte stream from `from`: resolves once the app has accepted
 * the connection, with what then carries the bytes; rejects to refuse it.
 */
export type ByteStreamAccept = (from: string) => Promise<(stream: ByteStream) => Promise<void>>

/** The answering side did not speak the byte-stream protocol. */
export class MalformedByteStreamError extends UpgossipError {
  static override name = 'MalformedByteStreamError'
}

/**
 * `source` with `each` called on every chunk as it passes, by a plain iterator: no async
 * generator (and its own promise and state machine) per chunk in between.
 */
export function tapped<T> (source: AsyncIterable<T>, each: (chunk: T) => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => {
      const it = source[Symbol.asyncIterator]()
      return {
        next: async () => await it.next().then(step => {
          if (step.done !== true) each(step.value)
          return step
        }),
        return: async value => await (it.return?.(value) ?? { done: true as const, value })
      }
    }
  }
}

/** `source` with every chunk longer than {@link STREAM_PIECE} cut into pieces of it (views, not copies). */
export function pieces (source: AsyncIterable<Bytes>, size = STREAM_PIECE): AsyncIterable<Bytes> {
  return {
    [Symbol.asyncIterator]: () => {
      const it = source[Symbol.asyncIterator]()
      let rest: Bytes | undefined
      const cut = (chunk: Bytes): IteratorResult<Bytes> => {
        if (chunk.byteLength <= size) {
          rest = undefined
          return { done: false, value: chunk }
        }
        rest = chunk instanceof Uint8Array ? chunk.subarray(size) : chunk.sublist(size)
        return { done: false, value: chunk instanceof Uint8Array ? chunk.subarray(0, size) : chunk.sublist(0, size) }
      }
      return {
        next: async () => rest != null ? cut(rest) : await it.next().then(step => step.done === true ? step : cut(step.value)),
        return: async value => await (it.return?.(value) ?? { done: true as const, value })
      }
    }
  }
}

/**
 * A counter that adds up what it is given and reports the sum once per turn of the event
 * loop: a metric update per batch of chunks rather than per chunk (a labelled prom-client
 * update costs about what a small chunk's handling does), and never later than the turn.
 */
function perTurn (report: (n: number) => void): (n: number) => void {
  let pending = 0
  const flush = (): void => {
    const n = pending
    pending = 0
    report(n)
  }
  return n => {
    if (n === 0) return
    if (pending === 0) setImmediate(flush)
    pending += n
  }
}

/** The status byte first, then `source`: the answering side's app accepted, and its bytes follow. */
function afterStatus (status: number, source: AsyncIterable<Bytes>): AsyncIterable<Bytes> {
  return {
    [Symbol.asyncIterator]: () => {
      let sent = false
      let it: AsyncIterator<Bytes> | undefined
      return {
        next: async () => {
          if (!sent) {
            sent = true
            return { done: false, value: Uint8Array.of(status) }
          }
          it ??= source[Symbol.asyncIterator]()
          return await it.next()
        },
        return: async value => await (it?.return?.(value) ?? { done: true as const, value })
      }
    }
  }
}

/** A libp2p stream as a {@link ByteStream}; `first` and `rest` are what is left of its source once the status byte was read. */
function asByteStream (stream: Stream, protocol: string, metrics: NetMetrics, first: Uint8Array[], rest: AsyncIterator<Uint8ArrayList>): ByteStream {
  const countIn = perTurn(n => { metrics.bytes(protocol, 'in', n) })
  const countOut = perTurn(n => { metrics.bytes(protocol, 'out', n) })
  const source: AsyncIterator<Bytes> = {
    next: async () => {
      const head = first.shift()
      if (head != null) {
        countIn(head.byteLength)
        return { done: false, value: head }
      }
      const step = await rest.next()
      if (step.done !== true) countIn(step.value.byteLength)
      return step
    },
    return: async value => await (rest.return?.(value) ?? { done: true as const, value })
  }
  return {
    source: { [Symbol.asyncIterator]: () => source },
    sink: async bytes => {
      await stream.sink(pieces(tapped(bytes, chunk => { countOut(chunk.byteLength) })))
    },
    abort: err => { stream.abort(err) }
  }
}

/**
 * Answer one incoming byte stream: ask `accept` (within `timeoutMs`), then either the
 * accepted byte and the app's bytes, or the refused byte and why.
 */
export async function serveByteStream (stream: Stream, protocol: string, from: string, accept: ByteStreamAccept, timeoutMs: number, metrics: NetMetrics): Promise<void> {
  const release = streamDeadline(stream, timeoutMs, () => new Error(`the app did not accept the connection within ${timeoutMs} ms`))
  let pipe: (stream: ByteStream) => Promise<void>
  try {
    pipe = await accept(from)
  } catch (err) {
    const error = JSON.stringify({ name: (err as Error).name ?? 'Error', message: String((err as Error).message ?? err).slice(0, MAX_REFUSAL - 200) })
    await stream.sink([Uint8Array.of(REFUSED), new TextEncoder().encode(error)]).catch(() => {})
    await stream.closeRead().catch(() => {})
    release()
    throw err
  }
  release()
  const it = stream.source[Symbol.asyncIterator]()
  const bytes = asByteStream(stream, protocol, metrics, [], it)
  await pipe({
    ...bytes,
    // the status byte goes first, without waiting for the app to say anything
    sink: async source => { await bytes.sink(afterStatus(ACCEPTED, source)) }
  })
}

/**
 * Open a byte stream to `peer` on `protocol` and wait (within `timeoutMs`, the dial
 * included) until its app accepted the connection; a refusal throws the remote error
 * under its own name.
 */
export async function openByteStream (connections: Pick<ConnectionManager, 'openConnection'>, peer: PeerId, protocol: string, timeoutMs: number, metrics: NetMetrics): Promise<ByteStream> {
  const { stream, release } = await dialWithDeadline(connections, peer, protocol, timeoutMs, () => new Error(`the peer's app did not accept the connection within ${timeoutMs} ms`))
  const it = stream.source[Symbol.asyncIterator]()
  try {
    let first: Uint8Array | undefined
    while (first == null) {
      const next = await it.next()
      if (next.done === true) throw new StreamEndedError('the peer closed the stream before its app accepted it')
      const chunk = next.value.subarray()
      if (chunk.byteLength > 0) first = chunk
    }
    if (first[0] === ACCEPTED) {
      release()
      return asByteStream(stream, protocol, metrics, first.byteLength > 1 ? [first.subarray(1)] : [], it)
    }
    if (first[0] !== REFUSED) throw new MalformedByteStreamError(`the peer answered ${protocol} with status byte ${first[0] ?? '?'}`)
    const parts = [first.subarray(1)]
    let size = parts[0]?.byteLength ?? 0
    while (size <= MAX_REFUSAL) {
      const next = await it.next()
      if (next.done === true) break
      const chunk = next.value.subarray()
      parts.push(chunk)
      size += chunk.byteLength
    }
    if (size > MAX_REFUSAL) throw new MalformedByteStreamError(`the peer's refusal on ${protocol} is longer than ${MAX_REFUSAL} bytes`)
    let error: { name?: unknown, message?: unknown }
    try {
      error = JSON.parse(new TextDecoder().decode(Buffer.concat(parts))) as { name?: unknown, message?: unknown }
    } catch {
      throw new MalformedByteStreamError(`the peer refused ${protocol} without a readable reason`)
    }
    throw new RemoteNamedError(typeof error?.name === 'string' ? error.name : '', typeof error?.message === 'string' ? error.message : 'the peer refused the connection')
  } catch (err) {
    release()
    stream.abort(err as Error)
    throw err
  }
}
