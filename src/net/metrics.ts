/**
 * What the network boxes count. The daemon backs this with prom-client; tests may
 * pass {@link noNetMetrics}.
 */

/** Counters the network layer reports into. */
export interface NetMetrics {
  bytes: (protocol: string, direction: 'in' | 'out', n: number) => void
  blocks: (result: 'fetched' | 'served' | 'refused', n?: number) => void
  /** Payload bytes of package blocks fetched (`in`, each checked against its CID) and served (`out`), without framing. */
  blockBytes: (direction: 'in' | 'out', n: number) => void
  /** Block-exchange requests this peer answered, by kind. */
  blockRequests: (kind: 'have' | 'wait' | 'get') => void
  gossip: (topic: 'releases' | 'status', result: 'accept' | 'ignore' | 'reject') => void
  /** Block streams opened by this peer (`out`) and accepted from others (`in`), every version (`upgossip_block_streams_total`). */
  blockStreams: (direction: 'in' | 'out') => void
  /** Block-exchange messages this peer sent, by kind (`upgossip_block_messages_total`; 2.0.0: one per CID named, one per block). */
  blockMessages: (kind: 'want-have' | 'want-block' | 'have' | 'dont-have' | 'block' | 'cancel', n: number) => void
  /** Bytes of blocks hashed to check them against their CIDs (`upgossip_block_hashed_bytes_total`). */
  blockHashedBytes: (n: number) => void
  /** Bytes of blocks written to the block store (`upgossip_block_written_bytes_total`). */
  blockWrittenBytes: (n: number) => void
  /** Bytes of blocks read from the block store's cache of verified blocks, neither read from disk nor hashed (`upgossip_block_cache_hit_bytes_total`). */
  blockCacheHitBytes: (n: number) => void
}

/** Metrics that go nowhere. */
export const noNetMetrics: NetMetrics = {
  bytes: () => {},
  blocks: () => {},
  blockBytes: () => {},
  blockRequests: () => {},
  gossip: () => {},
  blockStreams: () => {},
  blockMessages: () => {},
  blockHashedBytes: () => {},
  blockWrittenBytes: () => {},
  blockCacheHitBytes: () => {}
}
