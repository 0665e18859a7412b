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
}

/** Metrics that go nowhere. */
export const noNetMetrics: NetMetrics = {
  bytes: () => {},
  blocks: () => {},
  blockBytes: () => {},
  blockRequests: () => {},
  gossip: () => {}
}
