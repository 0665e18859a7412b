/**
 * Prometheus metrics of one daemon (prom-client, a registry per daemon), served at
 * `GET /metrics`.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { NetMetrics } from '../net/index.js'

/** The daemon's metrics. */
export class DaemonMetrics implements NetMetrics {
  readonly registry = new Registry()
  private readonly bytesTotal = new Counter({ name: 'upgossip_bytes_total', help: 'Bytes sent and received, by protocol or topic', labelNames: ['protocol', 'direction'], registers: [this.registry] })
  private readonly blocksTotal = new Counter({ name: 'upgossip_blocks_total', help: 'Package blocks fetched, served, and refused for not matching their CID', labelNames: ['result'], registers: [this.registry] })
  private readonly blockBytesTotal = new Counter({ name: 'upgossip_block_bytes_total', help: 'Payload bytes of package blocks fetched (in) and served (out), without framing', labelNames: ['direction'], registers: [this.registry] })
  private readonly blockRequestsTotal = new Counter({ name: 'upgossip_block_requests_total', help: 'Block-exchange requests answered, by kind (have: which blocks are held; wait: the same, asked to wait for a block when none is held; get: send blocks)', labelNames: ['kind'], registers: [this.registry] })
  private readonly gossipTotal = new Counter({ name: 'upgossip_gossip_messages_total', help: 'Gossip messages by topic and validation result', labelNames: ['topic', 'result'], registers: [this.registry] })
  private readonly refusalsTotal = new Counter({ name: 'upgossip_refusals_total', help: 'Inputs refused, by error name', labelNames: ['error'], registers: [this.registry] })
  private readonly rotationsTotal = new Counter({ name: 'upgossip_trust_rotations_total', help: 'Trust rotations adopted, and refused by error name', labelNames: ['result', 'error'], registers: [this.registry] })
  readonly peers = new Gauge({ name: 'upgossip_connected_peers', help: 'Peers connected now', registers: [this.registry] })
  readonly viewSize = new Gauge({ name: 'upgossip_network_view_peers', help: 'Peers in the network view', registers: [this.registry] })
  readonly frozen = new Gauge({ name: 'upgossip_frozen', help: '1 while this peer has heard no other peer for longer than freezeAfter', registers: [this.registry] })
  readonly releases: Gauge = new Gauge({ name: 'upgossip_releases', help: 'Known releases by state', labelNames: ['state'], registers: [this.registry], collect: () => { this.collectReleases() } })
  private countReleases: () => Record<string, number> = () => ({})

  /** Where the releases gauge reads its counts by state when it is scraped. */
  observeReleases (count: () => Record<string, number>): void {
    this.countReleases = count
  }

  private collectReleases (): void {
    this.releases.reset()
    for (const [state, n] of Object.entries(this.countReleases())) this.releases.set({ state }, n)
  }

  bytes (protocol: string, direction: 'in' | 'out', n: number): void {
    this.bytesTotal.inc({ protocol, direction }, n)
  }

  blocks (result: 'fetched' | 'served' | 'refused', n = 1): void {
    this.blocksTotal.inc({ result }, n)
  }

  blockBytes (direction: 'in' | 'out', n: number): void {
    this.blockBytesTotal.inc({ direction }, n)
  }

  blockRequests (kind: 'have' | 'wait' | 'get'): void {
    this.blockRequestsTotal.inc({ kind })
  }

  gossip (topic: 'releases' | 'status', result: 'accept' | 'ignore' | 'reject'): void {
    this.gossipTotal.inc({ topic, result })
  }

  /** Count an input refused with a named error. */
  refused (error: string): void {
    this.refusalsTotal.inc({ error })
  }

  /** Count a trust rotation adopted (`error` empty) or refused with a named error. */
  rotation (result: 'adopted' | 'refused', error = ''): void {
    this.rotationsTotal.inc({ result, error })
  }

  /** The text exposition. */
  async text (): Promise<string> {
    return await this.registry.metrics()
  }
}
