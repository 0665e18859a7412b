/**
 * App streams between two real libp2p nodes on loopback: exchanges reuse kept streams (one
 * stream for many calls), calls in parallel each get their own answer, a peer that stops
 * handling a protocol closes its kept streams without taking a request twice, a peer that
 * answers one request per stream (as daemons before kept streams did) still answers every
 * call, frames over the limit are refused, and streamed exchanges carry bodies of many MiB
 * both ways and survive an answer given before the request's body was read.
 */
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { readFrame, writeFrames } from '../../src/net/index.js'
import { pair, stopNodes } from './app-stream-nodes.js'
import type { Node } from './app-stream-nodes.js'

afterEach(stopNodes)

/** Streams of `protocol` open on a's connections to b now. */
function streamsOf (a: Node, protocol: string): number {
  return a.getConnections().flatMap(c => c.streams).filter(s => s.protocol === protocol).length
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array): string => new TextDecoder().decode(b)

describe('app streams', () => {
  it('one kept stream carries many calls in turn; calls in parallel each get their own answer', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app/kv/1'
    let served = 0
    await b.services.appStreams.handle(protocol, async (_from, request) => { served++; return text(`echo ${str(request)}`) })
    for (let i = 0; i < 25; i++) expect(str(await a.services.appStreams.request(b.peerId, protocol, text(`n${i}`)))).toBe(`echo n${i}`)
    expect(served).toBe(25)
    expect(streamsOf(a, protocol)).toBe(1)
    const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) => str(await a.services.appStreams.request(b.peerId, protocol, text(`p${i}`)))))
    expect(answers).toEqual(Array.from({ length: 8 }, (_, i) => `echo p${i}`))
    expect(streamsOf(a, protocol)).toBeLessThanOrEqual(8)
  })

  it('a peer that stops handling a protocol closes its kept streams, and no request is taken twice', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app/kv/1'
    const seen: string[] = []
    await b.services.appStreams.handle(protocol, async (_from, request) => { seen.push(str(request)); return request })
    expect(str(await a.services.appStreams.request(b.peerId, protocol, text('one')))).toBe('one')
    await b.services.appStreams.unhandle(protocol)
    await expect(a.services.appStreams.request(b.peerId, protocol, text('two'))).rejects.toThrow()
    expect(seen).toEqual(['one'])
    // handled again: calls go through again
    await b.services.appStreams.handle(protocol, async (_from, request) => { seen.push(str(request)); return request })
    expect(str(await a.services.appStreams.request(b.peerId, protocol, text('three')))).toBe('three')
    expect(seen).toEqual(['one', 'three'])
  })

  it('a peer that answers one request per stream and closes it still answers every call', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app/old/1'
    let served = 0
    await b.handle(protocol, ({ stream }) => {
      void (async () => {
        const request = await readFrame(stream, 1024)
        served++
        await writeFrames(stream, [request])
        await stream.close()
      })()
    })
    for (let i = 0; i < 10; i++) expect(str(await a.services.appStreams.request(b.peerId, protocol, text(`o${i}`)))).toBe(`o${i}`)
    expect(served).toBe(10)
  })

  it('a frame over the limit is refused, and the next call goes through', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app/kv/1'
    await b.services.appStreams.handle(protocol, async (_from, request) => request, 60_000, 1024)
    await expect(a.services.appStreams.request(b.peerId, protocol, new Uint8Array(4096))).rejects.toThrow()
    expect(str(await a.services.appStreams.request(b.peerId, protocol, text('small')))).toBe('small')
  })

  it('streamed exchanges carry many MiB both ways, and an answer given before the body was read', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app-http/kv/1'
    await b.services.appStreams.handleStreamed(protocol, async (_from, head, body) => {
      if (str(head) === 'early') return { head: text('refused'), body: new Uint8Array(0) }
      // echo the body back as it comes, then its hash in a trailer-like last chunk
      const hash = createHash('sha256')
      return {
        head: text(`ok ${str(head)}`),
        body: (async function * () {
          for await (const chunk of body) {
            hash.update(chunk)
            yield chunk
          }
          yield text(hash.digest('hex'))
        })()
      }
    })
    const size = 6 * 1024 * 1024 + 17
    const sent = createHash('sha256')
    const chunks = (async function * () {
      for (let at = 0; at < size; at += 100_000) {
        const chunk = new Uint8Array(Math.min(100_000, size - at)).fill(at % 251)
        sent.update(chunk)
        yield chunk
      }
    })()
    const answer = await a.services.appStreams.exchange(b.peerId, protocol, { head: text('big'), body: chunks })
    expect(str(answer.head)).toBe('ok big')
    const got: Uint8Array[] = []
    for await (const chunk of answer.body) got.push(chunk)
    const all = Buffer.concat(got)
    const digest = sent.digest('hex')
    expect(all.byteLength).toBe(size + 64)
    expect(createHash('sha256').update(all.subarray(0, size)).digest('hex')).toBe(digest)
    expect(all.subarray(size).toString()).toBe(digest)

    // answered before the body was read: the caller gets the answer, and the next exchange works
    const early = await a.services.appStreams.exchange(b.peerId, protocol, { head: text('early'), body: (async function * () { for (let i = 0; i < 50; i++) yield new Uint8Array(100_000) })() })
    expect(str(early.head)).toBe('refused')
    for await (const chunk of early.body) expect(chunk.byteLength).toBe(-1)
    const small = await a.services.appStreams.exchange(b.peerId, protocol, { head: text('small'), body: text('hello') })
    const parts: Uint8Array[] = []
    for await (const chunk of small.body) parts.push(chunk)
    expect(str(small.head)).toBe('ok small')
    expect(str(Buffer.concat(parts))).toBe(`hello${createHash('sha256').update('hello').digest('hex')}`)
  })
})
