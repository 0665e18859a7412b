/**
 * What the network boxes count. The daemon backs this with prom-client; tests may
 * pass {@link noNetMetrics}.
 */

/** Counters the network layer reports into. */
export interface NetMetrics {
  bytes: (protocol: string, direction: 'in' | 'out', n: number) => void
  blocks: (result: 'fetched' | 'served' | 'refused', n?: number) => void
  gossip: (topic: 'releases' | 'status', result: 'accept' | 'ignore' | 'reject') => void
}

/** Metrics that go nowhere. */
export const noNetMetrics: NetMetrics = {
  bytes: () => {},
  blocks: () => {},
  gossip: () => {}
}
