/**
 * A TCP socket as a byte stream (src/host/socket-stream.ts), on real loopback sockets: a
 * half-close crosses as a half-close while the other direction keeps flowing (a client
 * that shuts down its writing side still reads the answer; an app that does still gets
 * what the peer sends after it), a reset crosses as a reset, many MiB cross intact, and
 * neither side reads faster than the other takes. Chunks that are ready together are
 * written together.
 */
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { carry, connectPort, readSocket, socketByteStream, writeSocket } from '../../src/host/index.js'
import type { ByteStream, Bytes } from '../../src/net/index.js'

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
/** Sockets a test may leave open (a half-open connection stays open): destroyed after it. */
const sockets: net.Socket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  for (const s of servers.splice(0)) await new Promise(resolve => s.close(resolve))
})

/** A loopback server (half-open connections allowed); resolves with its port and its connections as they come. */
async function listen (onConnection: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, socket => {
    sockets.push(socket)
    onConnection(socket)
  })
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

/** A connected pair of loopback sockets: `near` is the daemon's side, `far` the app's (or the client's). */
async function socketPair (): Promise<{ near: net.Socket, far: net.Socket }> {
  let accepted!: (socket: net.Socket) => void
  const far = new Promise<net.Socket>(resolve => { accepted = resolve })
  const port = await listen(socket => { accepted(socket) })
  const near = await connectPort(port)
  sockets.push(near)
  return { near, far: await far }
}

/** `total` bytes of a pattern that a shifted or dropped chunk would break, in chunks of `size`. */
function * pattern (total: number, size: number): Generator<Uint8Array> {
  for (let at = 0; at < total; at += size) {
    const chunk = Buffer.alloc(Math.min(size, total - at))
    for (let i = 0; i + 4 <= chunk.byteLength; i += 4) chunk.writeUInt32BE((at + i) >>> 0, i)
    yield chunk
  }
}

function sha256 (chunks: Iterable<Uint8Array>): string {
  const hash = createHash('sha256')
  for (const c of chunks) hash.update(c)
  return hash.digest('hex')
}

describe('carrying many bytes', () => {
  it('16 MiB each way at once cross intact, through an app that echoes them', async () => {
    // the app echoes what it reads, and ends its side when the peer ended its own
    const port = await listen(socket => { socket.pipe(socket) })
    const sent = [...pattern(16 * 1024 * 1024, 50_000)]
    const received: Uint8Array[] = []
    const peer: ByteStream = {
      source: (async function * () { yield * sent })(),
      sink: async source => { for await (const c of source) received.push(c instanceof Uint8Array ? c : c.subarray()) },
      abort: () => {}
    }
    expect(await carry(socketByteStream(await connectPort(port)), peer)).toBeUndefined()
    expect(sha256(received)).toBe(sha256(sent))
  })

  it('a peer that fails resets the app\'s connection (not an orderly end)', async () => {
    const { near, far } = await socketPair()
    const app = readAll(far)
    const peer: ByteStream = {
      source: (async function * () {
        yield Buffer.from('partial')
        // a moment later (node turns a reset right behind a write into an orderly close)
        await new Promise(resolve => setTimeout(resolve, 50))
        throw new Error('the peer went away')
      })(),
      sink: async source => { for await (const c of source) void c },
      abort: () => {}
    }
    expect((await carry(socketByteStream(near), peer))?.message).toBe('the peer went away')
    expect((await app).ended).toBe('error')
  })
})

describe('backpressure', () => {
  it('an app is read no faster than its peer takes the bytes: the socket pauses', async () => {
    const { near, far } = await socketPair()
    const source = readSocket(near)[Symbol.asyncIterator]()
    // the app writes 64 MiB as fast as its socket takes them; nobody pulls from the source yet
    let written = 0
    const writing = (async () => {
      for (const chunk of pattern(64 * 1024 * 1024, 64 * 1024)) {
        written += chunk.byteLength
        if (!far.write(chunk)) await once(far, 'drain')
      }
      far.end()
    })()
    await new Promise(resolve => setTimeout(resolve, 300))
    // the daemon read a few batches' worth at most; the rest waits in the app (TCP's flow control)
    expect(near.bytesRead).toBeLessThan(1024 * 1024)
    expect(written).toBeLessThan(64 * 1024 * 1024)
    // once pulled, everything arrives, in order
    const got: Uint8Array[] = []
    while (true) {
      const step = await source.next()
      if (step.done === true) break
      got.push(step.value)
    }
    await writing
    expect(sha256(got)).toBe(sha256(pattern(64 * 1024 * 1024, 64 * 1024)))
  })

  it('a peer\'s stream is pulled no faster than the app reads: the writer waits for the socket to drain', async () => {
    const { near, far } = await socketPair()
    far.pause()
    let pulled = 0
    const endless = (async function * () {
      const chunk = Buffer.alloc(64 * 1024)
      while (true) {
        pulled += chunk.byteLength
        yield chunk
      }
    })()
    const writing = writeSocket(near, endless).catch((err: Error) => err)
    await new Promise(resolve => setTimeout(resolve, 300))
    const early = pulled
    await new Promise(resolve => setTimeout(resolve, 300))
    // it stopped: what was pulled sits in the socket and the kernel's buffers, a few MiB at most
    expect(pulled).toBe(early)
    expect(pulled).toBeLessThan(32 * 1024 * 1024)
    near.resetAndDestroy()
    expect(await writing).toMatchObject({ name: 'ConnectionResetError' })
  })
})

describe('writing in batches', () => {
  /** A stand-in for a socket that records how the writer uses it. */
  function recordingSocket (): net.Socket & { log: string[] } {
    const log: string[] = []
    let corked = 0
    const socket = {
      log,
      destroyed: false,
      writableEnded: false,
      writableLength: 0,
      writableNeedDrain: false,
      cork: () => { corked++ },
      uncork: () => { if (--corked === 0) log.push('flush') },
      write: (chunk: Uint8Array) => { log.push(`write ${chunk.byteLength}`); return true },
      on: () => socket,
      off: () => socket
    }
    return socket as unknown as net.Socket & { log: string[] }
  }

  it('chunks that are ready together go out in one flush, each list of arrays without being joined first', async () => {
    const socket = recordingSocket()
    const list = { byteLength: 30, * [Symbol.iterator] () { yield new Uint8Array(10); yield new Uint8Array(20) } } as unknown as Bytes
    const source = (async function * (): AsyncGenerator<Bytes> {
      yield new Uint8Array(1)
      yield list
      yield new Uint8Array(2)
      // later: after the event loop had its turn
      await new Promise(resolve => setTimeout(resolve, 20))
      yield new Uint8Array(3)
    })()
    await writeSocket(socket, source)
    expect(socket.log).toEqual(['write 1', 'write 10', 'write 20', 'write 2', 'flush', 'write 3', 'flush'])
  })
})
