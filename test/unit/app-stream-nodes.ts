/**
 * Two real libp2p nodes with upgossip's app streams, connected over loopback TCP, for the
 * unit tests of app streams and multiplexed calls; `stopNodes` in `afterEach` stops them.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { createPeerNode, noNetMetrics } from '../../src/net/index.js'
import type { AppStreams } from '../../src/net/index.js'

export type Node = Libp2p<{ appStreams: AppStreams }>
let nodes: Node[] = []

/** Stop every node made by {@link pair} since the last call. */
export async function stopNodes (): Promise<void> {
  await Promise.all(nodes.map(async n => { await n.stop() }))
  nodes = []
}

/** Two nodes, the first dialled to the second. */
export async function pair (): Promise<[Node, Node]> {
  const make = async (): Promise<Node> => await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], services: { appStreams: { metrics: noNetMetrics, log: () => {} } } })
  const [a, b] = [await make(), await make()]
  nodes.push(a, b)
  await a.dial(b.getMultiaddrs()[0] ?? '')
  return [a, b]
}
