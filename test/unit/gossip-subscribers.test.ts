/**
 * Gossip between two real libp2p nodes on loopback: a neighbour's subscription to the status
 * topic is reported, and a beat published from that moment reaches it. (A beat published at
 * the connection, before the subscription arrived, could be lost: the reason Beats waits for
 * this report to send a newcomer its status.)
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { Gossip, connectedPeers, createPeerNode, noNetMetrics } from '../../src/net/index.js'
import type { BasePeerNode } from '../../src/net/index.js'

let stops: Array<() => Promise<void>> = []

afterEach(async () => {
  await Promise.all(stops.map(async stop => { await stop() }))
  stops = []
})

interface Peer { node: BasePeerNode, gossip: Gossip, beats: string[], subscribers: string[] }

async function peer (): Promise<Peer> {
  const node = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const p: Peer = { node, beats: [], subscribers: [], gossip: undefined as never }
  p.gossip = new Gossip({
    node,
    network: 'test',
    metrics: noNetMetrics,
    log: () => {},
    onRelease: async () => 'ignore',
    onBeat: data => { p.beats.push(new TextDecoder().decode(data)); return 'accept' },
    onStatusSubscriber: peerId => { p.subscribers.push(peerId); p.gossip.publishBeat(new TextEncoder().encode(`hello ${peerId}`)).catch(() => { p.beats.push('publish failed') }) }
  })
  p.gossip.start()
  stops.push(async () => { p.gossip.stop(); await node.stop() })
  return p
}

async function until (what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise(resolve => setTimeout(resolve, 50))
  if (!check()) throw new Error(`timed out waiting for ${what}`)
}

describe('gossip subscribers', () => {
  it('reports a neighbour that subscribed to beats, and a beat published then reaches it', async () => {
    const [a, b] = [await peer(), await peer()]
    await a.node.dial(b.node.getMultiaddrs()[0] ?? '')
    await until('each to hear of the other\'s subscription', () => a.subscribers.length > 0 && b.subscribers.length > 0)
    expect(a.subscribers).toEqual([b.node.peerId.toString()])
    expect(b.subscribers).toEqual([a.node.peerId.toString()])
    await until('each to get the other\'s beat', () => a.beats.length > 0 && b.beats.length > 0)
    expect(b.beats).toEqual([`hello ${b.node.peerId.toString()}`])
    expect(a.beats).toEqual([`hello ${a.node.peerId.toString()}`])
  })

  it('stops reporting once stopped', async () => {
    const [a, b] = [await peer(), await peer()]
    a.gossip.stop()
    await a.node.dial(b.node.getMultiaddrs()[0] ?? '')
    await until('b to hear of a connection', () => b.node.getPeers().length > 0)
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(a.subscribers).toEqual([])
  })
})

describe('the connected peers', () => {
  it('are each remote peer once, the connection\'s own PeerId, however many connections', async () => {
    const [a, b] = [await peer(), await peer()]
    await a.node.dial(b.node.getMultiaddrs()[0] ?? '')
    await until('b to see a', () => b.node.getPeers().length > 0)
    expect(a.node.getPeers().map(String)).toEqual([b.node.peerId.toString()])
    const conn = a.node.getConnections()[0]
    expect(a.node.getPeers()[0]).toBe(conn?.remotePeer)
    const twice = connectedPeers([...a.node.getConnections(), ...a.node.getConnections()])
    expect(twice).toHaveLength(1)
    await a.node.hangUp(b.node.peerId)
    await until('a to drop b', () => a.node.getPeers().length === 0)
  })
})
