/**
 * Bad input on the app protocol, against real daemons: garbage and oversized frames, an
 * unknown protocol version, a peer that stalls mid-response, and an answer that cannot
 * be encoded. Each is an error for that one request; the daemons and apps go on.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import * as lp from 'it-length-prefixed'
import * as dagCbor from '@ipld/dag-cbor'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerNode } from '../../../src/net/index.js'
import type { BasePeerNode } from '../../../src/net/index.js'
import { TestNet, runCli, waitFor } from '../support/testnet.js'

let net: TestNet | undefined
let hostile: BasePeerNode | undefined

afterEach(async () => {
  await hostile?.stop()
  hostile = undefined
  await net?.close()
  net = undefined
})

const APP = `
import { connect } from 'upgossip/app'
const node = await connect()
node.serve(async (req) => {
  if (req?.op === 'map') return { value: undefined } // dag-cbor has no undefined
  return { echo: req, version: node.version }
})
await node.ready()
`

async function exchange (node: BasePeerNode, addr: string, protocol: string, frames: Uint8Array[]): Promise<Uint8Array[]> {
  const stream = await node.dialProtocol(multiaddr(addr), protocol, { signal: AbortSignal.timeout(10_000) })
  await stream.sink(lp.encode(frames))
  const out: Uint8Array[] = []
  for await (const frame of lp.decode(stream.source, { maxDataLength: 2 * 1024 * 1024 })) out.push(frame.subarray())
  return out
}

describe('bad input on the app protocol', () => {
  it('garbage, oversized frames, unknown versions, stalls and unencodable answers fail one request each', async () => {
    net = await TestNet.create({ callTimeout: '2s' })
    const v1 = await net.releaseFiles({ 'server.js': APP, 'upgossip.json': JSON.stringify({ app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 }) })
    const a = await net.start('a', ['--install', v1.file])
    await a.waitVersion('1.0.0')
    await waitFor('a to serve its app protocol', async () => (await a.call({ op: 'ping' }))?.echo?.op === 'ping')

    hostile = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    // a well-formed request works, for comparison
    const [ok] = await exchange(hostile, a.addr, '/upgossip/app/kv/1', [dagCbor.encode({ op: 'hello' })])
    expect(dagCbor.decode(ok as Uint8Array)).toMatchObject({ ok: true, value: { echo: { op: 'hello' } } })
    // garbage: an error answer for that request
    const [garbage] = await exchange(hostile, a.addr, '/upgossip/app/kv/1', [new Uint8Array([0xff, 0xfe, 0x00])])
    expect(dagCbor.decode(garbage as Uint8Array)).toMatchObject({ ok: false, error: { name: 'MalformedAppMessageError' } })
    // oversized: the stream is reset, and a says why
    await expect(exchange(hostile, a.addr, '/upgossip/app/kv/1', [new Uint8Array(1_100_000)])).rejects.toMatchObject({ name: 'StreamResetError' })
    await waitFor('a to name the oversized request', async () => (await fs.readFile(path.join(a.dataDir, 'events.jsonl'), 'utf8'))
      .includes(`app request from ${hostile?.peerId.toString() ?? ''} on /upgossip/app/kv/1 failed: peer sent a message larger than 1049600 bytes`))
    // an unknown version: not negotiated at all
    await expect(exchange(hostile, a.addr, '/upgossip/app/kv/99', [dagCbor.encode({})])).rejects.toMatchObject({ name: 'UnsupportedProtocolError', message: 'protocol selection failed' })
    // an answer that cannot be encoded (a Map): an error for that request only
    const [map] = await exchange(hostile, a.addr, '/upgossip/app/kv/1', [dagCbor.encode({ op: 'map' })])
    expect(dagCbor.decode(map as Uint8Array)).toMatchObject({ ok: false, error: { name: 'UnencodableValueError' } })

    // a peer that advertises the app and then stalls: a's call times out, nothing else breaks
    await hostile.handle('/upgossip/app/kv/1', () => { /* never answers */ })
    await hostile.dial(multiaddr(a.addr))
    const stalled = await runCli(['call', '--data', a.dataDir, '--peer', hostile.peerId.toString(), '{"op":"hello"}'])
    expect(stalled.code).toBe(1)
    expect(stalled.stderr).toMatch(/no answer within 2000 ms/)
    // a peer that speaks another version only: no common version
    await hostile.unhandle('/upgossip/app/kv/1')
    await hostile.handle('/upgossip/app/kv/7', () => {})
    // identify-push tells a of the change: until it has, a's call is a refused protocol; then no common version
    const other = await waitFor('a to learn that the peer speaks kv/7 only', async () => {
      const r = await runCli(['call', '--data', a.dataDir, '--peer', hostile?.peerId.toString() ?? '', '{"op":"hello"}'])
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/NoCommonVersionError|protocol selection failed/)
      return r.stderr.includes('NoCommonVersionError') ? r : undefined
    }, 20_000, 500)
    expect(other.stderr).toContain('[NoCommonVersionError]')
    // and a still serves
    expect(await a.call({ op: 'after' })).toMatchObject({ echo: { op: 'after' } })
    expect(a.exited).toBeUndefined()
  })
})
