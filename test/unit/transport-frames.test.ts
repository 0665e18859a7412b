/**
 * How the app paths hand bytes to the transport: yamux window updates at half the window
 * (src/net/yamux-window.ts), pieces that fill one noise message each (byte-stream.ts, and
 * the socket reader's batches, socket-reader.ts), and short HTTP bodies read whole by their
 * events (http-message.ts).
 */
import { once } from 'node:events'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
import { defaultLogger } from '@libp2p/logger'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { HttpBodyTooLargeError, readBody } from '../../src/host/http-message.js'
import { readSocket } from '../../src/host/socket-reader.js'
// the index loads node.ts, and with it the window patch
import { STREAM_PIECE, pieces } from '../../src/net/index.js'

/** A yamux stream whose frames are recorded, as the muxer would send them. */
function recordedStream (state: StreamState): { stream: YamuxStream, frames: Array<{ type: number, flag: number, length: number }> } {
  const frames: Array<{ type: number, flag: number, length: number }> = []
  const stream = new YamuxStream({
    id: '1',
    direction: 'inbound',
    log: defaultLogger().forComponent('test:yamux'),
    config: { enableKeepAlive: false, keepAliveInterval: 30_000, maxInboundStreams: 10, maxOutboundStreams: 10, initialStreamWindowSize: 256 * 1024, maxStreamWindowSize: 256 * 1024, maxMessageSize: 64 * 1024 },
    state,
    getRTT: () => -1,
    sendFrame: header => { frames.push({ type: header.type, flag: header.flag, length: header.length }) }
  })
  return { stream, frames }
}

/** Deliver `n` bytes to the stream as one data frame, and read them. */
async function deliver (stream: YamuxStream, reader: AsyncIterator<Uint8ArrayList>, n: number): Promise<void> {
  await stream.handleData({ type: 0, flag: 0, streamID: 1, length: n }, async () => new Uint8ArrayList(new Uint8Array(n)))
  const step = await reader.next()
  expect(step.value?.byteLength).toBe(n)
}

describe('yamux window updates', () => {
  it('go once half the window was read, not after every frame', async () => {
    const { stream, frames } = recordedStream(StreamState.Established)
    const reader = stream.source[Symbol.asyncIterator]()
    // 100 small messages, 1 KiB each: 100 KiB of a 256 KiB window, under half of it
    for (let i = 0; i < 100; i++) await deliver(stream, reader, 1024)
    expect(frames.filter(f => f.type === 1)).toEqual([])
    // past half: one update gives the whole window back
    for (let i = 0; i < 40; i++) await deliver(stream, reader, 1024)
    const updates = frames.filter(f => f.type === 1)
    expect(updates.length).toBe(1)
    expect(updates[0]?.length).toBeGreaterThanOrEqual(128 * 1024)
  })

  it('still answer a new stream with its ACK at once', async () => {
    const { stream, frames } = recordedStream(StreamState.SYNReceived)
    stream.sendWindowUpdate()
    expect(frames).toEqual([{ type: 1, flag: 2, length: 0 }])
    expect(stream.state).toBe(StreamState.Established)
  })
})

describe('pieces', () => {
  async function cut (chunks: Array<Uint8Array | Uint8ArrayList>): Promise<Array<Uint8Array | Uint8ArrayList>> {
    const out: Array<Uint8Array | Uint8ArrayList> = []
    for await (const piece of pieces((async function * () { yield * chunks })())) out.push(piece)
    return out
  }

  it('cuts long runs into pieces that fill one noise message, bytes in order, short ones left alone', async () => {
    const long = Uint8Array.from({ length: 3 * STREAM_PIECE + 5 }, (_, i) => i % 251)
    const list = new Uint8ArrayList(long.subarray(0, 70_000), long.subarray(70_000))
    for (const input of [long, list]) {
      const out = await cut([new Uint8Array([1, 2]), input, new Uint8Array([3])])
      expect(out.map(p => p.byteLength)).toEqual([2, STREAM_PIECE, STREAM_PIECE, STREAM_PIECE, 5, 1])
      expect(Buffer.concat(out.slice(1, 5).map(p => p.subarray()))).toEqual(Buffer.from(long))
    }
    // a yamux frame of a piece (12 bytes of header) is one noise message: 65,535 bytes less its 16-byte tag
    expect(STREAM_PIECE + 12).toBe(65_535 - 16)
  })
})

describe('readBody of a Node stream', () => {
  it('reads the body whole, as a plain array of its own', async () => {
    const stream = new PassThrough()
    const reading = readBody(stream, 100)
    stream.write(Buffer.from('hello '))
    stream.end(Buffer.from('world'))
    const body = await reading
    expect(Buffer.from(body).toString()).toBe('hello world')
    expect(Buffer.isBuffer(body)).toBe(false)
  })

  it('past the limit: HttpBodyTooLargeError, and the stream left open (paused) for a 413', async () => {
    const stream = new PassThrough()
    const reading = readBody(stream, 8)
    stream.write(Buffer.from('0123456789'))
    await expect(reading).rejects.toThrow(HttpBodyTooLargeError)
    expect(stream.destroyed).toBe(false)
    expect(stream.isPaused()).toBe(true)
  })

  it('a stream closed before its end rejects', async () => {
    const stream = new PassThrough()
    const reading = readBody(stream, 100)
    stream.write(Buffer.from('part'))
    stream.destroy()
    await expect(reading).rejects.toThrow(/Premature close/)
  })
})

describe('readSocket in pieces', () => {
  it('hands over whole pieces when more than one is there, the tail at the next step when nothing joins it', async () => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const accepted = once(server, 'connection') as Promise<[net.Socket]>
    const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1')
    await once(client, 'connect')
    const [socket] = await accepted
    try {
      const bytes = Uint8Array.from({ length: 250 }, (_, i) => i)
      client.write(bytes)
      const reader = readSocket(socket, undefined, 1024 * 1024, 100)[Symbol.asyncIterator]()
      const first = await reader.next()
      const second = await reader.next()
      // 250 bytes with pieces of 100: two pieces at once, the 50 left alone once nothing came
      expect(first.value?.byteLength).toBe(200)
      expect(second.value?.byteLength).toBe(50)
      expect(Buffer.concat([first.value as Uint8Array, second.value as Uint8Array])).toEqual(Buffer.from(bytes))
      // a batch of at most a piece is not held back
      client.write(bytes.subarray(0, 80))
      expect((await reader.next()).value?.byteLength).toBe(80)
      client.end()
      expect((await reader.next()).done).toBe(true)
    } finally {
      client.destroy()
      socket.destroy()
      server.close()
    }
  })
})
