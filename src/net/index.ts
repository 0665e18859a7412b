/**
 * `net/` — the peer network: the libp2p node (TCP, noise, yamux, identify, gossipsub),
 * protocol ids and topics, gossip validators, status beats and the network view,
 * anti-entropy sync, swarmed block exchange, and the connection keeper. The only folder
 * that imports libp2p.
 *
 * @example
 * ```ts
 * const node = await createPeerNode({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
 * const blocks = new BlockExchange({ node, store, metrics: noNetMetrics, log: console.error })
 * await blocks.start()
 * await fetchPackage({ root, store, exchange: blocks, sources: () => node.getPeers(), onProgress: () => {}, log: console.error, signal })
 * ```
 */
export * from './app-streams.js'
export * from './block-exchange.js'
export * from './gossip.js'
export * from './metrics.js'
export * from './node.js'
export * from './package-fetch.js'
export * from './peer-keeper.js'
export * from './protocol-ids.js'
export * from './status-beat.js'
export * from './stream-codec.js'
export * from './sync.js'
export * from './upload-share.js'
export { peerIdFromString } from '@libp2p/peer-id'
export type { PeerId } from '@libp2p/interface'
