/**
 * `net/` — the peer network: the libp2p node (TCP, noise, yamux, identify, gossipsub),
 * protocol ids and topics, gossip validators, status beats and the network view,
 * anti-entropy sync, swarmed block exchange, and the connection keeper. The only folder
 * that imports libp2p. Block exchange, sync and app streams are libp2p services, which
 * the node starts and stops; `DEBUG=upgossip:*` shows their debug output.
 *
 * @example
 * ```ts
 * const node = await createPeerNode({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], services: { blocks: { store, metrics: noNetMetrics, log: console.error } } })
 * await fetchPackage({ root, store, exchange: node.services.blocks, sources: () => node.getPeers(), onProgress: () => {}, log: console.error, signal })
 * ```
 */
export * from './app-streams.js'
export { appMuxProtocolId } from './call-mux.js'
export * from './block-exchange.js'
export * from './bootstrap-address.js'
export type { StreamedMessage } from './streamed-exchange.js'
export { MAX_STREAMED_FRAME } from './streamed-exchange.js'
export * from './byte-stream.js'
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
/** Peer ids, for the folders that do not import libp2p themselves. */
export { peerIdFromString } from '@libp2p/peer-id'
/** A libp2p peer id. */
export type { PeerId } from '@libp2p/interface'
export * from './peer-host.js'
