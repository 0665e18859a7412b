/**
 * Multiplexed app calls (`/upgossip/app-mux/<app>/<n>`) between two real libp2p nodes on
 * loopback: once the callee advertises them, many calls share one stream and are answered
 * in whatever order they finish; a call past its deadline fails alone; an oversized request
 * is refused before it is sent and the stream stays; a peer that stops handling the
 * protocol answers what it took and takes nothing more.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { MessageTooLargeError, StreamEndedError, appMuxProtocolId } from '../../src/net/index.js'
import { pair, stopNodes } from './app-stream-nodes.js'
import type { Node } from './app-stream-nodes.js'

afterEach(stopNodes)

/** Wait until a knows (identify) that b speaks `protocol`. */
async function advertised (a: Node, b: Node, protocol: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await a.services.appStreams.protocolsOf(b.peerId)).includes(protocol)) return
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`${protocol} was never advertised`)
}

function streamsOf (a: Node, protocol: string): number {
  return a.getConnections().flatMap(c => c.streams).filter(s => s.protocol === protocol).length
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array): string => new TextDecoder().decode(b)
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('multiplexed app calls', () => {
  it('many calls at once share one stream and each gets its own answer, in the order they finish', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app/kv/1'
    const finished: number[] = []
    await b.services.appStreams.handle(protocol, async (_from, request) => {
      const n = Number(str(request))
      // the first calls take longest: answers come back out of order
      await sleep((64 - n) % 8)
      finished.push(n)
      return text(`echo ${n}`)
    })
    await advertised(a, b, appMuxProtocolId(protocol))
    const answers = await Promise.all(Array.from({ length: 64 }, async (_, i) => str(await a.services.appStreams.request(b.peerId, protocol, text(String(i))))))
    expect(answers).toEqual(Array.from({ length: 64 }, (_, i) => `echo ${i}`))
    expect(finished).not.toEqual([...finished].sort((x, y) => x - y))
    expect(streamsOf(a, appMuxProtocolId(protocol))).toBe(1)
    expect(streamsOf(a, protocol)).toBe(0)
  })

  it('large payloads (written as they are) and small ones interleave intact', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app/kv/1'
    await b.services.appStreams.handle(protocol, async (_from, request) => request)
    await advertised(a, b, appMuxProtocolId(protocol))
    const sizes = [10, 300_000, 7, 65_536, 65_535, 1_000_000, 3]
    const answers = await Promise.all(sizes.map(async (n, i) => await a.services.appStreams.request(b.peerId, protocol, new Uint8Array(n).fill(i + 1))))
    for (const [i, answer] of answers.entries()) {
      expect(answer.byteLength).toBe(sizes[i])
      expect(answer.every(x => x === i + 1)).toBe(true)
    }
  })

  it('a call past its deadline fails alone; an oversized request is refused before it is sent; the stream stays', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app/kv/1'
    await b.services.appStreams.handle(protocol, async (_from, request) => {
      if (str(request) === 'hang') await sleep(2000)
      return request
    }, 60_000, 1024)
    await advertised(a, b, appMuxProtocolId(protocol))
    const hung = a.services.appStreams.request(b.peerId, protocol, text('hang'), 200)
    const quick = a.services.appStreams.request(b.peerId, protocol, text('quick'), 5000)
    await expect(hung).rejects.toThrow(StreamEndedError)
    expect(str(await quick)).toBe('quick')
    await expect(a.services.appStreams.request(b.peerId, protocol, new Uint8Array(4096), 5000, 1024)).rejects.toThrow(MessageTooLargeError)
    expect(str(await a.services.appStreams.request(b.peerId, protocol, text('after'), 5000, 1024))).toBe('after')
    expect(streamsOf(a, appMuxProtocolId(protocol))).toBe(1)
  })

  it('a peer serves at most 128 calls of one stream at once (of 8 streams: the 1024 the one-exchange protocol allows), each within the serving deadline', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app/kv/1'
    const count = { started: 0 }
    // requests that never end, given up after 1 s
    await b.services.appStreams.handle(protocol, async () => {
      count.started++
      return await new Promise<Uint8Array>(() => {})
    }, 1000)
    await advertised(a, b, appMuxProtocolId(protocol))
    const calls = Array.from({ length: 200 }, async () => await a.services.appStreams.request(b.peerId, protocol, text('x'), 4000).catch(() => {}))
    while (count.started < 128) await sleep(20)
    await sleep(300)
    expect(count.started).toBe(128)
    // once the first are given up, their places take the next
    while (count.started < 200) await sleep(20)
    await Promise.all(calls)
  })

  it('a peer that stops handling the protocol answers the call it took, and takes no other', async () => {
    const [a, b] = await pair()
    const protocol = '/upgossip/app/kv/1'
    const seen: string[] = []
    await b.services.appStreams.handle(protocol, async (_from, request) => {
      seen.push(str(request))
      if (str(request) === 'slow') await sleep(300)
      return request
    })
    await advertised(a, b, appMuxProtocolId(protocol))
    const slow = a.services.appStreams.request(b.peerId, protocol, text('slow'))
    while (!seen.includes('slow')) await sleep(10)
    await b.services.appStreams.unhandle(protocol)
    expect(str(await slow)).toBe('slow')
    await expect(a.services.appStreams.request(b.peerId, protocol, text('late'))).rejects.toThrow()
    expect(seen).toEqual(['slow'])
  })
})
