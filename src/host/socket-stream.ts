/**
 * TCP sockets as byte streams ({@link ByteStream}), and the carrying of bytes between an
 * app's socket and a peer's stream: both ways at once, each with backpressure (a socket
 * is read only as fast as the other side takes its bytes, and written only as fast as it
 * drains), half-closes passed on, and a failure of either side resetting both.
 *
 * @example
 * ```ts
 * const app = socketByteStream(await connectPort(port))
 * await carry(app, await shim.openBytes(peer, 2))
 * ```
 */
import net from 'node:net'
import { UpgossipError } from '../errors.js'
import type { ByteStream } from '../net/index.js'

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

/** Resolve once `socket` can take more, reject once it is closed. */
async function drained (socket: net.Socket): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      socket.off('drain', onDrain)
      socket.off('close', onClose)
      if (err == null) resolve()
      else reject(err)
    }
    const onDrain = (): void => { done() }
    const onClose = (): void => { done(new Error('the socket closed')) }
    socket.on('drain', onDrain)
    socket.on('close', onClose)
  })
}

/** A connected socket (half-open allowed) as a byte stream; `head` is what was read from it already. */
export function socketByteStream (socket: net.Socket, head?: Uint8Array): ByteStream {
  // errors surface where the socket is read or written; one left unheard would crash the daemon
  socket.on('error', () => {})
  return {
    source: (async function * () {
      if (head != null && head.byteLength > 0) yield head
      // the socket's own iterator pauses the socket while the consumer is busy; by default
      // it destroys the socket once its reading side ends, which would cut a half-closed
      // connection's other direction (the answer to a client that shut down its writing side)
      for await (const chunk of socket.iterator({ destroyOnReturn: false })) yield chunk as Uint8Array
    })(),
    sink: async source => {
      for await (const chunk of source) {
        if (socket.destroyed || socket.writableEnded) throw new Error('the socket is closed')
        if (!socket.write(chunk)) await drained(socket)
      }
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

/**
 * Carry bytes between the app's side and the peer's side until both directions have
 * ended, through `translate` when given. Resolves when done; a failure on either side
 * (or in the translation) resets both, and resolves with that error.
 */
export async function carry (app: ByteStream, peer: ByteStream, translate?: Translate): Promise<Error | undefined> {
  let failure: Error | undefined
  let translated: Translated | undefined
  const fail = (err: Error): void => {
    if (failure != null) return
    failure = err
    app.abort(err)
    peer.abort(err)
    translated?.abort(err)
  }
  let toApp: AsyncIterable<Uint8Array> = peer.source
  let toPeer: AsyncIterable<Uint8Array> = app.source
  if (translate != null) {
    try {
      translated = translate({ in: peer.source, out: app.source })
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
