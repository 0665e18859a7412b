/**
 * Writing bytes to a TCP socket in as few system calls as the flow allows: the socket is
 * corked while chunks that are already there keep coming (a libp2p stream hands its
 * frames over one by one, up to 64 KiB each, often several in a row) and uncorked once the
 * event loop has nothing more for it this turn, so they go out in one `writev`. Written
 * one by one, each frame cost a system call and a wake-up of the app, and the app read its
 * bytes in small pieces.
 *
 * Backpressure: once `maxBuffered` bytes wait in the socket (the kernel took no more), the
 * writer waits for the socket to drain before it takes the next chunk, so the peer's
 * stream is read only as fast as the app reads.
 *
 * @example
 * ```ts
 * await writeSocket(socket, bytes.source)
 * socket.end()
 * ```
 */
import type net from 'node:net'
import type { Bytes } from '../net/index.js'
import { ConnectionResetError } from './socket-reader.js'

/** Bytes waiting in the socket, beyond what the kernel took, before the writer waits for it to drain. */
const MAX_BUFFERED = 1024 * 1024

/** Resolve once `socket` has drained, reject once it is closed. */
async function drained (socket: net.Socket): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      socket.off('drain', onDrain)
      socket.off('close', onClose)
      if (err == null) resolve()
      else reject(err)
    }
    const onDrain = (): void => { done() }
    const onClose = (): void => { done(new ConnectionResetError('the connection closed while bytes waited to be written')) }
    socket.on('drain', onDrain)
    socket.on('close', onClose)
  })
}

/** Write everything `source` yields to `socket`, coalesced and with backpressure; see the module's comment. Does not end the socket. */
export async function writeSocket (socket: net.Socket, source: AsyncIterable<Bytes>, maxBuffered = MAX_BUFFERED): Promise<void> {
  let corked = false
  const uncork = (): void => {
    if (!corked) return
    corked = false
    socket.uncork()
  }
  try {
    for await (const chunk of source) {
      if (socket.destroyed || socket.writableEnded) throw new ConnectionResetError('the connection is closed')
      if (!corked) {
        corked = true
        socket.cork()
        // after the chunks that are ready now: they resolve in microtasks, before this runs
        setImmediate(uncork)
      }
      if (chunk instanceof Uint8Array) socket.write(chunk)
      else for (const buf of chunk) socket.write(buf)
      if (socket.writableLength >= maxBuffered) {
        uncork()
        // the kernel took less than was written: wait until the socket caught up
        if (socket.writableNeedDrain) await drained(socket)
      }
    }
  } finally {
    uncork()
  }
}
