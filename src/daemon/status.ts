/**
 * The status of this peer and of the network as it sees it: a projection of the parts'
 * state, computed on demand (`GET /status`, beats, the dashboard) and changing nothing.
 * Also the version timeline, sampled whenever the status changes.
 */
import type { Clock } from '../clock.js'
import type { NetworkView, PeerNode } from '../net/index.js'
import type { AppPolicy, ReleaseBook, ReleaseSummary, SignedPause, TrustStore } from '../release/index.js'
import type { DaemonStatus, NetworkPeerStatus, PeerState, ReleaseStatus } from './api.js'
import type { StatusChanges } from './changes.js'
import type { Downloads } from './downloads.js'
import type { Freshness } from './freshness.js'
import type { DaemonMetrics } from './metrics.js'
import type { NodeStateStore } from './node-state.js'
import { VersionTimeline, countVersions } from './version-timeline.js'
import type { TimelineJson } from './version-timeline.js'
import type { ScheduleRule } from '../package/index.js'

/** What the status projection reads. */
export interface StatusComponents {
  node: Pick<PeerNode, 'getPeers' | 'getMultiaddrs' | 'peerId'>
  nodeState: Pick<NodeStateStore, 'state'>
  book: Pick<ReleaseBook, 'summaries' | 'summary'>
  downloads: Pick<Downloads, 'have' | 'pausedReason'>
  view: Pick<NetworkView, 'list'>
  trustStore: Pick<TrustStore, 'policy'>
  freshness: Pick<Freshness, 'status'>
  /** Why a release waits to start here (or is passed over), if it does. */
  waitingOn: (id: string) => { rule: string, reason?: string } | undefined
  /** The rollout pause or resume record held for a release, if any. */
  pauseOf: (app: string, id: string) => SignedPause | undefined
  /** Why no version can run, if none can. */
  failedReason: () => string | undefined
  /** A process app's pid and port, while one runs. */
  appProcess: () => { pid: number, port: number } | undefined
  /** The step of the switch in progress, if one runs. */
  switchStep: () => string | undefined
  changes: Pick<StatusChanges, 'on' | 'emit'>
  metrics: Pick<DaemonMetrics, 'observe'>
  clock: Clock
}

/** Options of the projection. */
export interface StatusInit {
  labels: Record<string, string>
  network: string
  /** This daemon's upgossip build (`0.1.0 (1a2b3c4)`). */
  build: string
  /** The operator's `--policy` rules. */
  policy?: ScheduleRule[]
}

function isLoopback (addr: string): boolean {
  return addr.startsWith('/ip4/127.') || addr.startsWith('/ip6/::1/')
}

/** This peer and the network, as `GET /status` shows them. */
export class StatusProjection {
  private readonly c: StatusComponents
  private readonly init: StatusInit
  private readonly versions = new VersionTimeline()

  constructor (components: StatusComponents, init: StatusInit) {
    this.c = components
    this.init = init
    components.metrics.observe({
      releases: () => this.countReleases(),
      waiting: () => this.countWaiting(),
      running: () => this.running(),
      fetching: () => this.c.book.summaries().filter(e => e.state === 'fetching').map(e => ({ app: e.app, version: e.version, have: this.c.downloads.have(e.id), size: e.size }))
    })
    // a status change may be a change of the versions the network runs
    components.changes.on('status', () => { this.sampleVersions() })
  }

  /** The peer id. */
  get peerId (): string {
    return this.c.node.peerId.toString()
  }

  /** Peer state: installing, running, upgrading, rolling-back or failed. */
  peerState (): PeerState {
    if (this.c.failedReason() != null) return 'failed'
    const step = this.c.switchStep()
    if (step != null) return step === 'rollback' ? 'rolling-back' : 'upgrading'
    return this.c.nodeState.state.current == null ? 'installing' : 'running'
  }

  /** Complete multiaddrs (with `/p2p/`), loopback first. */
  multiaddrs (): string[] {
    const all = this.c.node.getMultiaddrs().map(a => a.toString())
    return [...all.filter(isLoopback), ...all.filter(a => !isLoopback(a))]
  }

  /** Bytes of a release's package held here (its size once fetched). */
  have (release: Pick<ReleaseSummary, 'id' | 'state' | 'size'>): number {
    const done = release.state !== 'fetching' && release.state !== 'refused'
    return done ? release.size : this.c.downloads.have(release.id)
  }

  /** Known releases counted by state (the `upgossip_releases` gauge). */
  countReleases (): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const e of this.c.book.summaries()) counts[e.state] = (counts[e.state] ?? 0) + 1
    return counts
  }

  /** Staged and waiting releases counted by the rule they wait on or are passed over for (the `upgossip_releases_waiting` gauge). */
  countWaiting (): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const e of this.c.book.summaries()) {
      const rule = e.state === 'waiting' ? this.c.waitingOn(e.id)?.rule : undefined
      if (rule != null) counts[rule] = (counts[rule] ?? 0) + 1
    }
    return counts
  }

  /** The app and version running here, with its native protocol (the `upgossip_app_info` gauge). */
  running (): { app: string, version: string, protocol?: number } | undefined {
    const { app, current } = this.c.nodeState.state
    if (app == null || current == null) return undefined
    const protocol = this.c.book.summary(current.id)?.protocol
    return { app, version: current.version, ...(typeof protocol === 'number' ? { protocol } : {}) }
  }

  /** This peer and the network as it sees it. */
  status (): DaemonStatus {
    const connected = new Set(this.c.node.getPeers().map(p => p.toString()))
    const state = this.c.nodeState.state
    const trust = this.c.trustStore.policy
    return {
      peerId: this.peerId,
      app: state.app,
      version: state.current?.version ?? null,
      state: this.peerState(),
      labels: this.init.labels,
      build: this.init.build,
      networkName: this.init.network,
      multiaddrs: this.multiaddrs(),
      connections: connected.size,
      ...(this.process()),
      freshness: this.c.freshness.status(),
      ...(this.init.policy != null && this.init.policy.length > 0 ? { policy: this.init.policy } : {}),
      trust: Object.fromEntries(trust.appNames().map(app => [app, trust.forApp(app) as AppPolicy])),
      releases: this.c.book.summaries().map(e => this.release(e)),
      network: this.c.view.list().filter(e => e.peerId !== this.peerId).map(e => {
        const peer: NetworkPeerStatus = {
          peerId: e.peerId,
          app: e.beat.app,
          version: e.beat.version,
          state: e.beat.stopping === true ? 'stopped' : e.beat.state,
          labels: e.beat.labels,
          seen: new Date(e.seen).toISOString(),
          connected: connected.has(e.peerId),
          addrs: e.beat.addrs,
          held: e.beat.held
        }
        // fields older peers' beats lack are left out rather than guessed
        if (e.beat.failed != null) peer.failed = e.beat.failed
        if (e.beat.waiting != null) peer.waiting = e.beat.waiting
        if (e.beat.upgrading != null) peer.upgrading = e.beat.upgrading
        if (e.beat.build != null) peer.build = e.beat.build
        return peer
      })
    }
  }

  private process (): { process?: { pid: number, port: number } } {
    const proc = this.c.appProcess()
    return proc == null ? {} : { process: proc }
  }

  private release (e: ReleaseSummary): ReleaseStatus {
    const s: ReleaseStatus = { id: e.id, app: e.app, version: e.version, state: e.state, have: this.have(e), size: e.size, signers: e.signers, expires: e.expires }
    // a staged release says why it is not next, as a waiting one says what it waits on
    const waiting = e.state === 'waiting' || e.state === 'staged' ? this.c.waitingOn(e.id) : undefined
    if (waiting != null) {
      s.waitingOn = waiting.rule
      if (waiting.reason != null) s.reason = waiting.reason
    }
    if (e.reason != null) s.reason = e.reason
    const paused = e.state === 'fetching' ? this.c.downloads.pausedReason(e.id) : undefined
    if (paused != null) s.reason = paused
    const pause = this.c.pauseOf(e.app, e.id)
    if (pause != null) {
      const p = pause.record
      s.pause = { action: p.action, sequence: p.sequence, signers: pause.signatures.map(x => x.key), issued: p.issued, reason: p.reason }
    }
    return s
  }

  /** `GET /timeline`: the versions of this app's peers over time, as this peer saw them. */
  timeline (): TimelineJson {
    this.sampleVersions()
    return this.versions.toJSON()
  }

  /** Add a timeline sample when the version counts changed (this peer and the peers of its app in view). */
  private sampleVersions (): void {
    const state = this.c.nodeState.state
    const app = state.app
    const peers = this.c.view.list().filter(e => e.peerId !== this.peerId && (app == null || e.beat.app === app)).map(e => ({ version: e.beat.version }))
    const sample = this.versions.record(this.c.clock.now(), countVersions([{ version: state.current?.version ?? null }, ...peers]))
    if (sample != null) this.c.changes.emit('timeline', sample)
  }
}
