/**
 * Raw bytes both ways on a libp2p stream, for apps whose wire is TCP
 * (`/upgossip/app-tcp/<app>/<protocol>`): after one status byte from the answering side
 * (0: its app accepted the connection; 1: refused, followed by a JSON error of at most
 * 4 KiB and the end of the stream) the stream carries the apps' bytes, untouched and with
 * yamux's flow control, for as long as either side keeps it open. Half-closes cross.
 *
 * @example
 * ```ts
 * const bytes = await openByteStream(connectionManager, peer, '/upgossip/app-tcp/chat/1', 30_000, metrics)
 * await Promise.all([bytes.sink(socketSource), writeAll(socket, bytes.source)])
 * ```
 */
import type { PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { RemoteNamedError, UpgossipError } from '../errors.js'
import type { NetMetrics } from './metrics.js'
import { StreamEndedError, dialWithDeadline, streamDeadline } from './stream-codec.js'

/** The answering side's app accepted the connection: the app's bytes follow. */
const ACCEPTED = 0
/** Refused: a JSON `{ name, message }` follows, then the end of the stream. */
const REFUSED = 1
/** Longest refusal. */
const MAX_REFUSAL = 4096

/** Bytes both ways, in the manner of it-pipe's duplex: read `source`, hand `sink` what to write. */
export interface ByteStream {
  /** The bytes the other side sends; ends when it closes its writing side. */
  source: AsyncIterable<Uint8Array>
  /** Write everything `source` yields, then close the writing side. */
  sink: (source: AsyncIterable<Uint8Array>) => Promise<void>
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

/** A libp2p stream as a {@link ByteStream}; `head` and `rest` are what is left of its source once the status byte was read. */
function asByteStream (stream: Stream, protocol: string, metrics: NetMetrics, first: Uint8Array[], rest: AsyncIterator<{ subarray: () => Uint8Array }>): ByteStream {
  return {
    source: (async function * () {
      for (const chunk of first) {
        metrics.bytes(protocol, 'in', chunk.byteLength)
        yield chunk
      }
      try {
        while (true) {
          const next = await rest.next()
          if (next.done === true) return
          const chunk = next.value.subarray()
          metrics.bytes(protocol, 'in', chunk.byteLength)
          yield chunk
        }
      } finally {
        await rest.return?.()
      }
    })(),
    sink: async source => {
      await stream.sink((async function * () {
        for await (const chunk of source) {
          metrics.bytes(protocol, 'out', chunk.byteLength)
          yield chunk
        }
      })())
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
    sink: async source => {
      await bytes.sink((async function * () {
        // the status byte goes first, without waiting for the app to say anything
        yield Uint8Array.of(ACCEPTED)
        yield * source
      })())
    }
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
