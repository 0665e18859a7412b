/**
 * A TCP socket as a byte stream (src/host/socket-stream.ts), on real loopback sockets: a
 * half-close crosses as a half-close while the other direction keeps flowing (a client
 * that shuts down its writing side still reads the answer; an app that does still gets
 * what the peer sends after it), a reset crosses as a reset, many MiB cross intact, and
 * neither side reads faster than the other takes.
 */
import { once } from 'node:events'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { carry, connectPort, socketByteStream } from '../../src/host/index.js'
import type { ByteStream } from '../../src/net/index.js'

/** Everything a socket sends until its end, and how it ended: `end` (a half-close or close in order) or `error` (a reset). */
async function readAll (socket: net.Socket): Promise<{ text: string, bytes: Buffer, ended: 'end' | 'error' }> {
  const chunks: Buffer[] = []
  socket.on('data', (d: Buffer) => chunks.push(d))
  const ended = await new Promise<'end' | 'error'>(resolve => {
    socket.once('end', () => { resolve('end') })
    socket.once('error', () => { resolve('error') })
  })
  const bytes = Buffer.concat(chunks)
  return { text: bytes.toString(), bytes, ended }
}

/** A peer in memory: reads everything the app side sends until its end, then answers with `answer(what it read)` and ends. */
function answeringPeer (answer: (received: string) => string): ByteStream & { received: Promise<string>, aborted?: Error } {
  let got!: (text: string) => void
  const received = new Promise<string>(resolve => { got = resolve })
  const peer: ByteStream & { received: Promise<string>, aborted?: Error } = {
    received,
    source: (async function * () {
      yield Buffer.from(answer(await received))
    })(),
    sink: async source => {
      const chunks: Uint8Array[] = []
      for await (const c of source) chunks.push(c instanceof Uint8Array ? c : c.subarray())
      got(Buffer.concat(chunks).toString())
    },
    abort: err => { peer.aborted = err }
  }
  return peer
}

const servers: net.Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise(resolve => s.close(resolve))
})

/** A loopback server (half-open connections allowed); resolves with its port and its connections as they come. */
async function listen (onConnection: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, onConnection)
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

describe('a socket as a byte stream', () => {
  it('a client that half-closes its side (shutdown(SHUT_WR)) still reads the answer', async () => {
    const peer = answeringPeer(question => `answer to ${question}`)
    let carried: Promise<Error | undefined> | undefined
    // the daemon's side of the client's connection, as the proxy holds it
    const port = await listen(socket => { carried = carry(socketByteStream(socket), peer) })
    const client = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    await once(client, 'connect')
    const reading = readAll(client)
    client.end('the question')
    expect(await reading).toMatchObject({ text: 'answer to the question', ended: 'end' })
    expect(await carried).toBeUndefined()
    expect(peer.aborted).toBeUndefined()
  })

  it('an app that half-closes its side still gets what the peer sends afterwards, then an orderly end', async () => {
    let app!: Promise<{ text: string, ended: 'end' | 'error' }>
    // the app: says hello, shuts down its writing side, then reads to the end
    const port = await listen(socket => {
      app = readAll(socket)
      socket.end('hello')
    })
    const peer = answeringPeer(greeting => `reply to ${greeting}`)
    const failure = await carry(socketByteStream(await connectPort(port)), peer)
    expect(failure).toBeUndefined()
    expect(await peer.received).toBe('hello')
    expect(await app).toMatchObject({ text: 'reply to hello', ended: 'end' })
  })
})
