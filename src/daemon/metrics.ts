/**
 * Prometheus metrics of one daemon (prom-client, a registry per daemon), served at
 * `GET /metrics`: the process and Node.js defaults, and the daemon's own `upgossip_*`
 * series (docs/operator.md, "Metrics", lists them all).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { NetMetrics } from '../net/index.js'
import type { CallOutcome } from '../shim/index.js'
import type { SwitchObservation } from '../upgrade/index.js'

/** The app and version this peer runs, with its native protocol version. */
export interface RunningApp {
  app: string
  version: string
  protocol?: number
}

/** A release being fetched: bytes held here so far, and its package size. */
export interface FetchProgress {
  app: string
  version: string
  have: number
  size: number
}

/** What the scrape-time gauges read when `/metrics` is scraped. */
export interface MetricsSources {
  releases: () => Record<string, number>
  running: () => RunningApp | undefined
  fetching: () => FetchProgress[]
  /** Releases that wait to start here, counted by the rule they wait on. */
  waiting: () => Record<string, number>
}

/** What a collection removed from one folder. */
interface Removed {
  removed: number
  freedBytes: number
}

/** Options of the metrics. */
export interface DaemonMetricsInit {
  /** The process and Node.js default metrics (`process_*`, `nodejs_*`); on unless false (several daemons in one test process). */
  processDefaults?: boolean
}

/** SO hops as a label: 0…4, and `5+` beyond (bounded whatever the number of versions). */
function hopsLabel (hops: number): string {
  return hops >= 5 ? '5+' : String(hops)
}

/** The daemon's metrics. */
export class DaemonMetrics implements NetMetrics {
  readonly registry = new Registry()
  private readonly bytesTotal: Counter = new Counter({ name: 'upgossip_bytes_total', help: 'Bytes sent and received, by protocol or topic', labelNames: ['protocol', 'direction'], registers: [this.registry], collect: () => { this.flushBytes() } })
  private readonly blocksTotal = new Counter({ name: 'upgossip_blocks_total', help: 'Package blocks fetched, served, and refused for not matching their CID', labelNames: ['result'], registers: [this.registry] })
  private readonly blockBytesTotal = new Counter({ name: 'upgossip_block_bytes_total', help: 'Payload bytes of package blocks fetched (in) and served (out), without framing', labelNames: ['direction'], registers: [this.registry] })
  private readonly blockRequestsTotal = new Counter({ name: 'upgossip_block_requests_total', help: 'Block-exchange requests answered, by kind (have: which blocks are held; wait: the same, asked to wait for a block when none is held; get: send blocks)', labelNames: ['kind'], registers: [this.registry] })
  private readonly blockStreamsTotal = new Counter({ name: 'upgossip_block_streams_total', help: 'Block-exchange streams opened by this peer (out) and accepted from others (in), every protocol version', labelNames: ['direction'], registers: [this.registry] })
  private readonly blockMessagesTotal = new Counter({ name: 'upgossip_block_messages_total', help: 'Block-exchange messages this peer sent, by kind (blocks 2.0.0: one per CID named in a list, one per block)', labelNames: ['kind'], registers: [this.registry] })
  private readonly blockHashedBytesTotal = new Counter({ name: 'upgossip_block_hashed_bytes_total', help: 'Bytes of blocks hashed to check them against their CIDs', registers: [this.registry] })
  private readonly blockWrittenBytesTotal = new Counter({ name: 'upgossip_block_written_bytes_total', help: 'Bytes of blocks written to the block store', registers: [this.registry] })
  private readonly blockCacheHitBytesTotal = new Counter({ name: 'upgossip_block_cache_hit_bytes_total', help: 'Bytes of blocks read from the block store\'s cache of verified blocks, neither read from disk nor hashed again', registers: [this.registry] })
  private readonly gossipTotal = new Counter({ name: 'upgossip_gossip_messages_total', help: 'Gossip messages by topic and validation result', labelNames: ['topic', 'result'], registers: [this.registry] })
  private readonly refusalsTotal = new Counter({ name: 'upgossip_refusals_total', help: 'Inputs refused, by error name', labelNames: ['error'], registers: [this.registry] })
  private readonly syncsTotal = new Counter({ name: 'upgossip_syncs_total', help: 'Anti-entropy syncs this peer asked another for, by result (ok: the answer was taken in; failed: no answer, or a forged frame ended it)', labelNames: ['result'], registers: [this.registry] })
  private readonly rotationsTotal = new Counter({ name: 'upgossip_trust_rotations_total', help: 'Trust rotations adopted, and refused by error name', labelNames: ['result', 'error'], registers: [this.registry] })
  readonly peers = new Gauge({ name: 'upgossip_connected_peers', help: 'Peers connected now', registers: [this.registry] })
  readonly viewSize = new Gauge({ name: 'upgossip_network_view_peers', help: 'Peers in the network view', registers: [this.registry] })
  readonly frozen = new Gauge({ name: 'upgossip_frozen', help: '1 while this peer has heard no other peer for longer than freezeAfter', registers: [this.registry] })
  readonly releases: Gauge = new Gauge({ name: 'upgossip_releases', help: 'Known releases by state', labelNames: ['state'], registers: [this.registry], collect: () => { this.collectCounts(this.releases, 'state', this.sources.releases()) } })
  readonly waiting: Gauge = new Gauge({ name: 'upgossip_releases_waiting', help: 'Releases that wait to start on this peer, by the rule they wait on (halt-on-failures: the rollout is halted)', labelNames: ['rule'], registers: [this.registry], collect: () => { this.collectCounts(this.waiting, 'rule', this.sources.waiting()) } })
  readonly appInfo: Gauge = new Gauge({ name: 'upgossip_app_info', help: 'The app and version this peer runs, with its native protocol version (always 1; absent while none runs)', labelNames: ['app', 'version', 'protocol'], registers: [this.registry], collect: () => { this.collectAppInfo() } })
  readonly fetchBytes: Gauge = new Gauge({ name: 'upgossip_fetch_bytes', help: 'Bytes of a release package held here while it is being fetched', labelNames: ['app', 'version'], registers: [this.registry], collect: () => { this.collectFetches() } })
  readonly fetchSize: Gauge = new Gauge({ name: 'upgossip_fetch_size_bytes', help: 'Size of a release package being fetched', labelNames: ['app', 'version'], registers: [this.registry], collect: () => { this.collectFetches() } })
  private readonly switchesTotal = new Counter({ name: 'upgossip_switches_total', help: 'Switches between versions by kind (upgrade; downgrade: a rollback or a revocation) and outcome (committed, rolled-back, interrupted by a stop of the daemon)', labelNames: ['kind', 'outcome'], registers: [this.registry] })
  private readonly switchSeconds = new Histogram({ name: 'upgossip_switch_duration_seconds', help: 'Time from the start of a switch to its commit or the end of its rollback', labelNames: ['kind', 'outcome'], buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600], registers: [this.registry] })
  private readonly switchHeld = new Histogram({ name: 'upgossip_switch_held_requests', help: 'Requests and connections from peers held during one switch (delivered to the version that runs after it)', labelNames: ['kind'], buckets: [0, 1, 5, 10, 50, 100, 500, 1000], registers: [this.registry] })
  private readonly callsTotal: Counter = new Counter({ name: 'upgossip_app_calls_total', help: 'Calls of this app to other peers by outcome (ok, remote-error, unreachable, refused)', labelNames: ['outcome'], registers: [this.registry], collect: () => { this.flushCalls() } })
  private readonly callSeconds = new Histogram({ name: 'upgossip_app_call_duration_seconds', help: 'Latency of calls of this app to other peers, by the simulation objects they went through (hops, both sides)', labelNames: ['hops'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] })
  private readonly retentionFreed = new Counter({ name: 'upgossip_retention_bytes_freed_total', help: 'Bytes freed by retention, by folder of the data directory (blocks, packages, state)', labelNames: ['folder'], registers: [this.registry] })
  private readonly retentionRemoved = new Counter({ name: 'upgossip_retention_removed_total', help: 'Blocks, package directories and state directories removed by retention, by folder', labelNames: ['folder'], registers: [this.registry] })
  private readonly retentionRuns = new Counter({ name: 'upgossip_retention_collections_total', help: 'Collections of what is no longer kept, by what started them (commit, start, revoked, periodic)', labelNames: ['reason'], registers: [this.registry] })
  private readonly diskBytes = new Gauge({ name: 'upgossip_disk_bytes', help: 'Bytes on disk by folder of the data directory (blocks, packages, state), as the last collection found them', labelNames: ['folder'], registers: [this.registry] })
  /**
   * Counts of the per-call counters, added up here and handed to prom-client when it is
   * read: a prom-client increment hashes its labels (a child from `labels()` too), which
   * cost several µs on every call and every frame.
   */
  private readonly bytesPending = new Map<string, { in: number, out: number }>()
  private readonly callsPending = new Map<CallOutcome, number>()
  private sources: MetricsSources = { releases: () => ({}), running: () => undefined, fetching: () => [], waiting: () => ({}) }

  constructor (init: DaemonMetricsInit = {}) {
    // the event loop delay is sampled every 100 ms, not 10, so an idle daemon stays idle
    if (init.processDefaults !== false) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 })
      // gauges named like counters, which `promtool check metrics` refuses; nodejs_active_handles and friends, by type, stay
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name)
    }
  }

  /** Where the gauges read at scrape time (release counts, the running app, fetches, waits). */
  observe (sources: Partial<MetricsSources>): void {
    this.sources = { ...this.sources, ...sources }
  }

  private collectCounts (gauge: Gauge, label: string, counts: Record<string, number>): void {
    gauge.reset()
    for (const [value, n] of Object.entries(counts)) gauge.set({ [label]: value }, n)
  }

  private collectAppInfo (): void {
    this.appInfo.reset()
    const running = this.sources.running()
    if (running != null) this.appInfo.set({ app: running.app, version: running.version, protocol: running.protocol == null ? '' : String(running.protocol) }, 1)
  }

  private collectFetches (): void {
    this.fetchBytes.reset()
    this.fetchSize.reset()
    for (const f of this.sources.fetching()) {
      this.fetchBytes.set({ app: f.app, version: f.version }, f.have)
      this.fetchSize.set({ app: f.app, version: f.version }, f.size)
    }
  }

  /** Count a switch that ended, its time and the requests held during it. */
  switched (s: SwitchObservation): void {
    this.switchesTotal.inc({ kind: s.kind, outcome: s.outcome })
    this.switchSeconds.observe({ kind: s.kind, outcome: s.outcome }, s.seconds)
    this.switchHeld.observe({ kind: s.kind }, s.held)
  }

  /** Count what a collection of retention removed, and the disk use it left. */
  retained (r: { reason: string, packages: Removed, states: Removed, blocks: Removed, disk: Record<'blocks' | 'packages' | 'state', number> }): void {
    this.retentionRuns.inc({ reason: r.reason })
    for (const [folder, removed] of [['blocks', r.blocks], ['packages', r.packages], ['state', r.states]] as const) {
      this.retentionFreed.inc({ folder }, removed.freedBytes)
      this.retentionRemoved.inc({ folder }, removed.removed)
    }
    for (const [folder, bytes] of Object.entries(r.disk)) this.diskBytes.set({ folder }, bytes)
  }

  /** Count a call to another peer, its latency and SO hops. */
  called (outcome: CallOutcome, seconds: number, hops: number): void {
    this.callsPending.set(outcome, (this.callsPending.get(outcome) ?? 0) + 1)
    this.callSeconds.observe({ hops: hopsLabel(hops) }, seconds)
  }

  bytes (protocol: string, direction: 'in' | 'out', n: number): void {
    let pending = this.bytesPending.get(protocol)
    if (pending == null) {
      // protocols come and go with versions and peers' classes: a bound keeps the map small
      if (this.bytesPending.size >= 1024) this.flushBytes()
      pending = { in: 0, out: 0 }
      this.bytesPending.set(protocol, pending)
    }
    pending[direction] += n
  }

  private flushBytes (): void {
    for (const [protocol, pending] of this.bytesPending) {
      // a direction never counted stays absent, as before
      if (pending.in > 0) this.bytesTotal.inc({ protocol, direction: 'in' }, pending.in)
      if (pending.out > 0) this.bytesTotal.inc({ protocol, direction: 'out' }, pending.out)
    }
    this.bytesPending.clear()
  }

  private flushCalls (): void {
    for (const [outcome, n] of this.callsPending) this.callsTotal.inc({ outcome }, n)
    this.callsPending.clear()
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

  blockStreams (direction: 'in' | 'out'): void {
    this.blockStreamsTotal.inc({ direction })
  }

  blockMessages (kind: 'want-have' | 'want-block' | 'have' | 'dont-have' | 'block' | 'cancel', n: number): void {
    this.blockMessagesTotal.inc({ kind }, n)
  }

  blockHashedBytes (n: number): void {
    this.blockHashedBytesTotal.inc(n)
  }

  blockWrittenBytes (n: number): void {
    this.blockWrittenBytesTotal.inc(n)
  }

  blockCacheHitBytes (n: number): void {
    this.blockCacheHitBytesTotal.inc(n)
  }

  gossip (topic: 'releases' | 'status', result: 'accept' | 'ignore' | 'reject'): void {
    this.gossipTotal.inc({ topic, result })
  }

  /** Count an input refused with a named error. */
  refused (error: string): void {
    this.refusalsTotal.inc({ error })
  }

  /** Count a sync this peer asked for: its answer taken in, or failed. */
  sync (result: 'ok' | 'failed'): void {
    this.syncsTotal.inc({ result })
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
