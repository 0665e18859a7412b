/**
 * TCP sockets as byte streams ({@link ByteStream}), and the carrying of bytes between an
 * app's socket and a peer's stream: both ways at once, each with backpressure (a socket
 * is read only as fast as the other side takes its bytes, and written only as fast as it
 * drains), half-closes passed on as half-closes, and a failure of either side resetting
 * both. Reading and writing a socket in batches: socket-reader.ts, socket-writer.ts.
 *
 * @example
 * ```ts
 * const app = socketByteStream(await connectPort(port))
 * await carry(app, await shim.openBytes(peer, 2))
 * ```
 */
import net from 'node:net'
import { UpgossipError } from '../errors.js'
import { tapped } from '../net/index.js'
import type { ByteStream, Bytes } from '../net/index.js'
import { readSocket } from './socket-reader.js'
import { writeSocket } from './socket-writer.js'

/** The app's port did not accept a connection. */
export class AppPortUnreachableError extends UpgossipError {
  static override name = 'AppPortUnreachableError'
}

/** The translation of a connection: what the app reads (`in`) and what the peer reads (`out`), and how to stop it. */
export interface Translated {
  in: AsyncIterable<Uint8Array>
  out: AsyncIterable<Uint8Array>
  abort: (err: Error) => void
}

/** Translate a connection from what each side sent: `in` the peer's bytes, `out` the app's. */
export type Translate = (sources: { in: AsyncIterable<Uint8Array>, out: AsyncIterable<Uint8Array> }) => Translated

/** A connected socket (half-open allowed) as a byte stream; `head` is what was read from it already. */
export function socketByteStream (socket: net.Socket, head?: Uint8Array): ByteStream {
  // errors surface where the socket is read or written; one left unheard would crash the daemon
  socket.on('error', () => {})
  return {
    source: readSocket(socket, head),
    sink: async source => {
      await writeSocket(socket, source)
      // a half-close: the other direction goes on until the app closes its side
      if (!socket.destroyed) socket.end()
    },
    abort: () => {
      if (!socket.destroyed) socket.resetAndDestroy()
    }
  }
}

/** Connect to the app's port on 127.0.0.1 (within `timeoutMs`). */
export async function connectPort (port: number, timeoutMs = 10_000): Promise<net.Socket> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new AppPortUnreachableError(`the app did not accept a connection on port ${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.setNoDelay(true)
      resolve(socket)
    })
    socket.once('error', err => {
      clearTimeout(timer)
      reject(new AppPortUnreachableError(`the app's port ${port} did not accept a connection: ${(err as NodeJS.ErrnoException).code ?? err.message}`))
    })
  })
}

/** How {@link carry} carries a connection. */
export interface CarryOptions {
  /** Translate the connection (through stream SOs); carried as it is when absent. */
  translate?: Translate
  /** Told the size of every chunk that moves, either way, as it moves (the app's activity). */
  onBytes?: (n: number) => void
}

/** Chunks as single arrays, for a translation (the SOs read arrays, never lists). */
function flattened (source: AsyncIterable<Bytes>): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]: () => {
      const it = source[Symbol.asyncIterator]()
      return {
        next: async () => await it.next().then(step => step.done === true ? step : { done: false, value: step.value instanceof Uint8Array ? step.value : step.value.subarray() }),
        return: async value => {
          await it.return?.(value)
          return { done: true, value }
        }
      }
    }
  }
}

/**
 * Carry bytes between the app's side and the peer's side until both directions have
 * ended, through `translate` when given. Resolves when done; a failure on either side
 * (or in the translation) resets both, and resolves with that error.
 */
export async function carry (app: ByteStream, peer: ByteStream, options: CarryOptions = {}): Promise<Error | undefined> {
  const { translate, onBytes } = options
  let failure: Error | undefined
  let translated: Translated | undefined
  const fail = (err: Error): void => {
    if (failure != null) return
    failure = err
    app.abort(err)
    peer.abort(err)
    translated?.abort(err)
  }
  const count = (chunk: Bytes): void => { onBytes?.(chunk.byteLength) }
  const fromPeer = onBytes == null ? peer.source : tapped(peer.source, count)
  const fromApp = onBytes == null ? app.source : tapped(app.source, count)
  let toApp: AsyncIterable<Bytes> = fromPeer
  let toPeer: AsyncIterable<Bytes> = fromApp
  if (translate != null) {
    try {
      translated = translate({ in: flattened(fromPeer), out: flattened(fromApp) })
      toApp = translated.in
      toPeer = translated.out
    } catch (err) {
      fail(err as Error)
      return failure
    }
  }
  await Promise.all([
    peer.sink(toPeer).catch(fail),
    app.sink(toApp).catch(fail)
  ])
  return failure
}
