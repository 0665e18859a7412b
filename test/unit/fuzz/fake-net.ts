/**
 * In-memory stand-ins for libp2p streams and for the libp2p components a protocol
 * service takes, just enough for the protocol classes (sync, block exchange, app streams)
 * to run their real framing and decoding against bytes a test chooses: no sockets, no
 * libp2p.
 */
import type { PeerId, Stream } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import type { AppStreamsComponents, BlockExchangeComponents, SyncComponents } from '../../../src/net/index.js'

type Chunk = Uint8Array | { subarray: () => Uint8Array }

/** One direction of a stream: written chunks, read in order, then an end or an error. */
class Pipe implements AsyncIterable<Uint8Array> {
  private readonly items: Uint8Array[] = []
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined

  push (chunk: Uint8Array): void { this.items.push(chunk); this.wake?.() }
  end (error?: Error): void { this.ended = true; this.error ??= error; this.wake?.() }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array> {
    while (true) {
      const next = this.items.shift()
      if (next != null) { yield next; continue }
      if (this.error != null) throw this.error
      if (this.ended) return
      await new Promise<void>(resolve => { this.wake = resolve })
      this.wake = undefined
    }
  }
}

/** A test's end of a stream: what the code under test wrote, and how it ended. */
export interface StreamProbe {
  stream: Stream
  /** Everything written, as one byte string (the length prefixes included). */
  written: () => Uint8Array
  /** Resolves when the code under test finished writing or aborted the stream. */
  finished: Promise<void>
  /** The error the code under test aborted the stream with, if it did. */
  aborted: () => Error | undefined
}

function concat (chunks: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(chunks))
}

/** A stream whose incoming side is `inbound` (then an end, or nothing more when `hang`), recording what is written. */
export function scriptedStream (inbound: Uint8Array[], options: { hang?: boolean } = {}): StreamProbe {
  const source = new Pipe()
  for (const chunk of inbound) source.push(chunk)
  if (options.hang !== true) source.end()
  const out: Uint8Array[] = []
  let abortError: Error | undefined
  let finish: () => void = () => {}
  const finished = new Promise<void>(resolve => { finish = resolve })
  const stream = {
    source,
    sink: async (chunks: AsyncIterable<Chunk> | Iterable<Chunk>) => {
      for await (const chunk of chunks) out.push(chunk instanceof Uint8Array ? chunk : chunk.subarray())
      finish()
    },
    abort: (err: Error) => { abortError = err; source.end(err); finish() },
    close: async () => { source.end(); finish() },
    closeWrite: async () => {},
    closeRead: async () => {}
  }
  return { stream: stream as unknown as Stream, written: () => concat(out), finished, aborted: () => abortError }
}

/** Two connected ends: what one side's sink writes, the other's source reads. */
export function streamPair (): [Stream, Stream] {
  const ab = new Pipe()
  const ba = new Pipe()
  const end = (inbound: Pipe, outbound: Pipe): Stream => ({
    source: inbound,
    sink: async (chunks: AsyncIterable<Chunk> | Iterable<Chunk>) => {
      for await (const chunk of chunks) outbound.push(Uint8Array.from(chunk instanceof Uint8Array ? chunk : chunk.subarray()))
      outbound.end()
    },
    abort: (err: Error) => { inbound.end(err); outbound.end(err) },
    close: async () => { outbound.end() }
  }) as unknown as Stream
  return [end(ba, ab), end(ab, ba)]
}

type Handler = (data: { stream: Stream, connection: { remotePeer: PeerId } }) => void

/** A peer id that is only a name. */
export function fakePeer (name: string): PeerId {
  return { toString: () => name, equals: (o: unknown) => String(o) === name } as unknown as PeerId
}

/** What the fake libp2p hands a protocol service, and the handlers registered with it. */
export type FakeComponents = BlockExchangeComponents & SyncComponents & AppStreamsComponents & { handlers: Map<string, Handler> }

/**
 * Libp2p components whose registrar records handlers and whose connections open
 * streams with `dial(protocol)` — a scripted stream, or one end of a pair whose other end
 * goes to another fake's handler.
 */
export function fakeComponents (dial: (protocol: string | string[]) => Stream = () => { throw new Error('this fake node does not dial') }): FakeComponents {
  const handlers = new Map<string, Handler>()
  return {
    handlers,
    registrar: {
      handle: async (protocol: string, handler: Handler) => { handlers.set(protocol, handler) },
      unhandle: async (protocol: string) => { handlers.delete(protocol) }
    },
    connectionManager: {
      openConnection: async () => ({ newStream: async (protocol: string | string[]) => dial(protocol) })
    },
    logger: defaultLogger()
  } as unknown as FakeComponents
}

/** Connect `client` dials to `server`'s handlers, as two peers over one connection (the first protocol of a list the server handles, as multistream-select picks). */
export function connect (server: { handlers: Map<string, Handler> }, from = fakePeer('client')): (protocol: string | string[]) => Stream {
  return protocols => {
    const protocol = (Array.isArray(protocols) ? protocols : [protocols]).find(p => server.handlers.has(p)) ?? String(protocols)
    const handler = server.handlers.get(protocol)
    if (handler == null) throw new Error(`no handler for ${protocol}`)
    const [a, b] = streamPair()
    Object.assign(a, { protocol })
    Object.assign(b, { protocol })
    handler({ stream: b, connection: { remotePeer: from } })
    return a
  }
}
