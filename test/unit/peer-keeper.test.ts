import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { hasPeerId, isBootstrapAddress } from '../../src/net/bootstrap-address.js'
import { PeerKeeper } from '../../src/net/peer-keeper.js'
import type { PeerNode } from '../../src/net/node.js'
import type { NetworkView } from '../../src/net/status-beat.js'

async function somePeerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

describe('peer keeper', () => {
  it('an isolated peer dials its bootstrap peers again, backing off 2 s, 4 s, 8 s …, and stops once connected', async () => {
    const self = await somePeerId()
    const boot = `/ip4/127.0.0.1/tcp/4001/p2p/${await somePeerId()}`
    const dials: number[] = []
    let now = 0
    let connected: string[] = []
    const node = {
      peerId: { toString: () => self },
      getPeers: () => connected.map(id => ({ toString: () => id })),
      dial: async () => { dials.push(now); throw new Error('unexpected end of input') },
      peerStore: { merge: async () => {} },
      logger: defaultLogger()
    } as unknown as PeerNode
    const view = { list: () => [] } as unknown as NetworkView
    const keeper = new PeerKeeper({ node, view, minConnections: 3, intervalMs: 1000, log: () => {}, bootstrap: [boot], now: () => now })
    for (now = 0; now <= 20_000; now += 1000) await keeper.tick()
    expect(dials).toEqual([0, 2000, 6000, 14_000])
    // connected: no more bootstrap dials, and the backoff starts again from 2 s when isolated again
    connected = ['x']
    for (; now <= 40_000; now += 1000) await keeper.tick()
    expect(dials).toHaveLength(4)
    connected = []
    const from = now
    for (; now <= from + 3000; now += 1000) await keeper.tick()
    expect(dials.slice(4)).toEqual([from, from + 2000])
  })

  it('bootstrap addresses without /p2p/ are dialled at start (libp2p\'s bootstrap discovery takes only complete ones); the peer id is learned, said once and tagged', async () => {
    const self = await somePeerId()
    const learned = await somePeerId()
    const complete = `/ip4/127.0.0.1/tcp/4001/p2p/${await somePeerId()}`
    const bare = '/ip4/127.0.0.1/tcp/4002'
    const dialled: string[] = []
    const tagged: Array<{ peer: string, tags: unknown }> = []
    const logged: string[] = []
    let now = 0
    let connected: string[] = []
    const node = {
      peerId: { toString: () => self },
      getPeers: () => connected.map(id => ({ toString: () => id })),
      dial: async (addr: unknown) => { dialled.push(String(addr)); return { remotePeer: { toString: () => learned } } },
      peerStore: { merge: async (peer: unknown, data: { tags?: unknown }) => { tagged.push({ peer: String(peer), tags: data.tags }) } },
      logger: defaultLogger()
    } as unknown as PeerNode
    const view = { list: () => [] } as unknown as NetworkView
    const keeper = new PeerKeeper({ node, view, minConnections: 3, intervalMs: 60_000, log: m => logged.push(m), bootstrap: [complete, bare], now: () => now })
    keeper.start()
    keeper.stop()
    await new Promise(resolve => setImmediate(resolve))
    expect(dialled).toEqual([bare])
    expect(logged).toEqual([`bootstrap peer ${bare} is ${learned}`])
    expect(tagged).toEqual([{ peer: learned, tags: { bootstrap: { value: 50 } } }])
    // isolated: both kinds are dialled again, with the usual backoff; the same id is not said again
    await keeper.tick()
    expect(dialled).toEqual([bare, complete, bare])
    expect(logged).toHaveLength(1)
    connected = [learned]
    now = 10_000
    await keeper.tick()
    expect(dialled).toHaveLength(3)
  })

  it('peers of the view become dialable: their announced addresses go to the peer store once, again when they change', async () => {
    const self = await somePeerId()
    const other = await somePeerId()
    const merged: string[][] = []
    let addrs = ['/ip4/127.0.0.1/tcp/4002']
    const node = {
      peerId: { toString: () => self },
      getPeers: () => [{ toString: () => 'a' }, { toString: () => 'b' }, { toString: () => 'c' }],
      dial: async () => { throw new Error('not expected') },
      peerStore: { merge: async (_: unknown, data: { multiaddrs: unknown[] }) => { merged.push(data.multiaddrs.map(String)) } },
      logger: defaultLogger()
    } as unknown as PeerNode
    const view = { list: () => [{ peerId: other, beat: { addrs } }, { peerId: self, beat: { addrs: ['/ip4/127.0.0.1/tcp/1'] } }] } as unknown as NetworkView
    const keeper = new PeerKeeper({ node, view, minConnections: 3, intervalMs: 1000, log: () => {} })
    await keeper.tick()
    await keeper.tick()
    expect(merged).toEqual([['/ip4/127.0.0.1/tcp/4002']])
    addrs = ['/ip4/127.0.0.1/tcp/4003']
    await keeper.tick()
    expect(merged).toEqual([['/ip4/127.0.0.1/tcp/4002'], ['/ip4/127.0.0.1/tcp/4003']])
  })

  it('the addresses of a beat go to the peer store as it is taken in, not at the next tick, and a tick does not merge them again', async () => {
    const self = await somePeerId()
    const other = await somePeerId()
    const merged: string[][] = []
    const node = {
      peerId: { toString: () => self },
      getPeers: () => [{ toString: () => 'a' }, { toString: () => 'b' }, { toString: () => 'c' }],
      dial: async () => { throw new Error('not expected') },
      peerStore: { merge: async (_: unknown, data: { multiaddrs: unknown[] }) => { merged.push(data.multiaddrs.map(String)) } },
      logger: defaultLogger()
    } as unknown as PeerNode
    const view = { list: () => [{ peerId: other, beat: { addrs: ['/ip4/127.0.0.1/tcp/4002'] } }] } as unknown as NetworkView
    const keeper = new PeerKeeper({ node, view, minConnections: 3, intervalMs: 1000, log: () => {} })
    await keeper.learn(other, ['/ip4/127.0.0.1/tcp/4002'])
    expect(merged).toEqual([['/ip4/127.0.0.1/tcp/4002']])
    await keeper.tick()
    await keeper.learn(self, ['/ip4/127.0.0.1/tcp/1'])
    await keeper.learn(other, [])
    expect(merged).toEqual([['/ip4/127.0.0.1/tcp/4002']])
  })
})

describe('bootstrap addresses', () => {
  it('take a TCP address with /p2p/PEERID or without', async () => {
    const id = await somePeerId()
    for (const ok of ['/ip4/127.0.0.1/tcp/4001', `/ip4/127.0.0.1/tcp/4001/p2p/${id}`, '/ip6/::1/tcp/4001', '/dns4/peer.example.net/tcp/4001', '/dns/peer.example.net/tcp/1', `/dns6/x/tcp/65535/p2p/${id}`]) {
      expect(isBootstrapAddress(ok), ok).toBe(true)
    }
    expect(hasPeerId(`/ip4/127.0.0.1/tcp/4001/p2p/${id}`)).toBe(true)
    expect(hasPeerId('/ip4/127.0.0.1/tcp/4001')).toBe(false)
    expect(hasPeerId('not a multiaddr')).toBe(false)
  })

  it('refuse what cannot be dialled without a peer id: no port, port 0, not TCP, not a multiaddr', () => {
    for (const bad of ['/ip4/127.0.0.1', '/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/4001', '/ip4/127.0.0.1/tcp/4001/ws', '/tcp/4001', 'peer.example.net:4001', '', '/ip4/999.0.0.1/tcp/1']) {
      expect(isBootstrapAddress(bad), bad).toBe(false)
    }
  })
})
