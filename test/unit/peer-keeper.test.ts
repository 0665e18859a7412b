import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
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
