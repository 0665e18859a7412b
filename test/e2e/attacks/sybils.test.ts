/**
 * Sybil identities against real daemons: peer ids cost nothing, so a hostile peer can
 * grind one whose rank makes it a release's canary (and then say it ran the release
 * healthily), or relay validly signed beats of 4097 ids to overflow the network view.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { RPC } from '@chainsafe/libp2p-gossipsub/message'
import * as lp from 'it-length-prefixed'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerNode, encodeBeat, statusTopic } from '../../../src/net/index.js'
import type { BasePeerNode, StatusBeat } from '../../../src/net/index.js'
import { rank } from '../../../src/schedule/index.js'
import { kvVersion } from '../support/kv-app.js'
import { TestNet, runCli, waitFor } from '../support/testnet.js'

let net: TestNet | undefined
let hostile: BasePeerNode | undefined

afterEach(async () => {
  await hostile?.stop()
  hostile = undefined
  await net?.close()
  net = undefined
})

function beat (seq: number, fields: Partial<StatusBeat> = {}): Uint8Array {
  return encodeBeat({ v: 1, seq, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [], ...fields })
}

/** What gossipsub signs (StrictSign): "libp2p-pubsub:" and the message without its signature and key. */
const SIGN_PREFIX = new TextEncoder().encode('libp2p-pubsub:')

/** A gossipsub message from `key`'s peer id, signed by it, as any peer relays one. */
async function signedMessage (key: PrivateKey, topic: string, data: Uint8Array, seq: number): Promise<RPC.Message> {
  const seqno = new Uint8Array(8)
  new DataView(seqno.buffer).setBigUint64(0, BigInt(seq))
  const message = { from: peerIdFromPrivateKey(key).toMultihash().bytes, data, seqno, topic }
  const encoded = RPC.Message.encode(message)
  const signed = new Uint8Array(SIGN_PREFIX.byteLength + encoded.byteLength)
  signed.set(SIGN_PREFIX)
  signed.set(encoded, SIGN_PREFIX.byteLength)
  return { ...message, signature: await key.sign(signed), key: publicKeyToProtobuf(key.publicKey) }
}

describe('Sybil identities', () => {
  it('a Sybil that grinds a low rank becomes the only canary and, saying it ran the release healthily, lets every real peer switch at once (not defended)', async () => {
    net = await TestNet.create({ minConnections: 1, beatInterval: '500ms' })
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    // one canary among three peers, which must run 2.0.0 healthily for an hour before the others go
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { schedule: [{ rule: 'canary', fraction: 0.34, soak: '1h' }] }))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    // the release id is public as soon as it is published: ids are tried until one ranks below both real peers
    let key = await generateKeyPair('Ed25519')
    const lowest = Math.min(rank(a.peerId, v2.id), rank(b.peerId, v2.id))
    while (rank(peerIdFromPrivateKey(key).toString(), v2.id) >= lowest) key = await generateKeyPair('Ed25519')
    hostile = await createPeerNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
    const sybil = hostile.peerId.toString()
    const topic = statusTopic('default')
    hostile.services.pubsub.subscribe(topic)
    await hostile.dial(multiaddr(a.addr))
    await waitFor('the Sybil to see a on the status topic', () => hostile?.services.pubsub.getSubscribers(topic).some(p => p.toString() === a.peerId))
    let fields: Partial<StatusBeat> = {}
    let seq = 1
    const beating = setInterval(() => {
      seq++
      void hostile?.services.pubsub.publish(topic, beat(seq, fields)).catch(() => {})
    }, 300)
    try {
      for (const [p, other] of [[a, b], [b, a]] as const) {
        await waitFor(`${p.name} to see the Sybil and ${other.name}`, async () => {
          const ids = (await p.status()).network.map(x => x.peerId)
          return ids.includes(sybil) && ids.includes(other.peerId)
        })
      }
      expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
      // the Sybil is the canary: both real peers wait for it, and it never switches
      for (const p of [a, b]) {
        const r = await waitFor(`${p.name} to wait on the canary`, async () => {
          const release = (await p.status()).releases.find(x => x.id === v2.id)
          return release?.waitingOn === 'canary' ? release : undefined
        }, 60_000)
        expect(r.reason).toBe('1 of 1 canaries have not yet run 2.0.0 healthily for 1h')
      }
      // it says it has run 2.0.0 for two hours: the soak is over for a peer that never ran it
      fields = { version: '2.0.0', since: Date.now() - 2 * 3600_000 }
      for (const p of [a, b]) await p.waitVersion('2.0.0')
      // within minutes of an hour's soak, and with no real peer as canary: both switched on the word of the Sybil
      for (const p of [a, b]) expect((await p.history()).map(h => h.type)).toEqual(['installed', 'upgrade-started', 'upgrade-committed'])
      expect((await a.status()).network.filter(p => p.version === '2.0.0').map(p => p.peerId).sort()).toEqual([b.peerId, sybil].sort())
    } finally {
      clearInterval(beating)
    }
  }, 180_000)

  it('4097 Sybil ids relayed by one peer fill a real daemon\'s view to its 4096 bound: the stalest Sybils leave, the connected honest peer stays, and the daemon keeps serving', async () => {
    // b must not beat during the flood, or its entry would be fresh anyway: it beats every
    // 30 s, or when its own view changes — so the Sybils announce an app that a trusts and b
    // does not (b leaves their beats out of its view; a takes them in as any other)
    net = await TestNet.create({ minConnections: 1, idleBeatInterval: '30s', peerTimeout: '2m' })
    const v1 = await net.release('1.0.0')
    const trustBoth = path.join(net.root, 'trust-both.json')
    await fs.writeFile(trustBoth, JSON.stringify({ apps: { kv: { publishers: [net.key.id], threshold: 1 }, store: { publishers: [net.key.id], threshold: 1 } } }))
    const a = await net.start('a', ['--install', v1.file, '--trust', trustBoth])
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    await waitFor('a to see b', async () => (await a.status()).network.some(p => p.peerId === b.peerId))
    hostile = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    await hostile.dial(multiaddr(a.addr))
    await waitFor('the hostile peer\'s gossip stream to a', () => hostile?.services.pubsub.streamsOutbound.has(a.peerId))

    const topic = statusTopic('default')
    const keys = await Promise.all(Array.from({ length: 4097 }, async () => await generateKeyPair('Ed25519')))
    const ids = keys.map(k => peerIdFromPrivateKey(k).toString())
    const messages = await Promise.all(keys.map(async (k, i) => await signedMessage(k, topic, beat(1, { app: 'store' }), i + 1)))
    const acceptedBefore = await a.metric('upgossip_gossip_messages_total', { topic: 'status', result: 'accept' })
    // a gossip stream of the hostile peer's own (it replaces the one its gossipsub opened), in
    // frames of 256 messages: every one a validly signed beat of another peer id, in order
    const stream = await hostile.dialProtocol(multiaddr(a.addr), ['/meshsub/1.1.0'])
    const frames: Uint8Array[] = []
    for (let i = 0; i < messages.length; i += 256) frames.push(RPC.encode({ subscriptions: [], messages: messages.slice(i, i + 256) }))
    await stream.sink(lp.encode(frames))
    await waitFor('a to take in all 4097 beats', async () => (await a.metric('upgossip_gossip_messages_total', { topic: 'status', result: 'accept' })) - acceptedBefore >= 4097, 120_000)

    const view = (await a.status()).network
    expect(view).toHaveLength(4096)
    const inView = new Set(view.map(p => p.peerId))
    // the two stalest Sybils left; b, whose beat is older than all of theirs, stayed: it holds a connection
    const bSeen = Date.parse(view.find(p => p.peerId === b.peerId)?.seen ?? '')
    expect(bSeen).toBeLessThan(Math.min(...view.filter(p => p.peerId !== b.peerId).map(p => Date.parse(p.seen))))
    expect(inView.has(ids[0] ?? '')).toBe(false)
    expect(inView.has(ids[1] ?? '')).toBe(false)
    expect(ids.slice(2).every(id => inView.has(id))).toBe(true)
    // the daemons keep serving each other
    expect(await b.callPeer(a.peerId, { op: 'ping' })).toEqual({ version: '1.0.0', echo: { op: 'ping' } })
    expect(await a.callPeer(b.peerId, { op: 'ping' })).toEqual({ version: '1.0.0', echo: { op: 'ping' } })
    expect(a.exited).toBeUndefined()
    expect(b.exited).toBeUndefined()
  }, 240_000)
})
