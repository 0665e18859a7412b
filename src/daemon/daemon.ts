/**
 * The peer daemon: wires the store, the release book, the libp2p node, gossip, sync,
 * block exchange, status beats and the control API; one data directory, one daemon.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { systemClock } from '../clock.js'
import { formatDuration } from '../duration.js'
import type { Clock } from '../clock.js'
import { UpgossipError } from '../errors.js'
import {
  Gossip, NetworkView, PeerKeeper, createPeerNode, decodeBeat, encodeBeat, fetchPackage, loadPeerKey,
  beatNow, beatWaiting, idleBeatIntervalFor, peerIdFromString, readPsk, syncAnswer, takeInSyncAnswer, MAX_SYNC_APPS, SYNC_PROTOCOL
} from '../net/index.js'
import type { BlockExchange, GossipVerdict, PeerId, PeerNode, StatusBeat, SyncAnswerPart, SyncProtocol, SyncRequest } from '../net/index.js'
import { unpackPackage, walkPackageBlocks } from '../package/index.js'
import {
  ReleaseBook, TrustStore, decodeReleasesTopicMessage, encodeReleasesTopicMessage, readBundle,
  verifyReleasePackage, verifySignedRelease
} from '../release/index.js'
import { UnknownMessageTypeError, decodeRevocation, decodeRotation, verifyRevocation } from '../release/index.js'
import type { AdoptOutcome, AppPolicy, SignedRevocation, SignedRotation } from '../release/index.js'
import type { ReleaseBundle, ReleaseEntry, ReleaseRecord, ReleaseState, ReleasesTopicMessage, TrustPolicy, Verdict } from '../release/index.js'
import { DiskFullError, FsBlockStore, isDiskFull, lockDataDir, writeJsonAtomic } from '../store/index.js'
import type { DataDirLock } from '../store/index.js'
import { AppHost } from '../host/index.js'
import { NoAppRunningError, Shim } from '../shim/index.js'
import { readPolicy } from '../schedule/index.js'
import type { ScheduleRule } from '../package/index.js'
import { UpgradeEngine } from '../upgrade/index.js'
import { readJsonFile } from '../schema.js'
import { ControlApi } from './control-api.js'
import { OperatorControls } from './controls.js'
import { Rollout } from './rollout.js'
import { EventLog } from './event-log.js'
import { Freshness } from './freshness.js'
import { MemorySettle } from './memory-settle.js'
import type { FreshnessStatus } from './freshness.js'
import { DaemonMetrics } from './metrics.js'
import { readNodeState, writeNodeState } from './node-state.js'
import { VersionTimeline, countVersions } from './version-timeline.js'
import type { TimelineJson, TimelineSample } from './version-timeline.js'
import type { NodeState } from './node-state.js'
import type { DaemonOptions } from './options.js'

/** The data directory belongs to another app than the one asked for. */
export class AppMismatchError extends UpgossipError {
  static override name = 'AppMismatchError'
}

/** The --app-config file is unreadable. */
export class AppConfigInvalidError extends UpgossipError {
  static override name = 'AppConfigInvalidError'
}

/** The control API's port is taken. */
export class ControlPortInUseError extends UpgossipError {
  static override name = 'ControlPortInUseError'
}

/** A release named by id or APP@VERSION is not known here. */
export class UnknownReleaseError extends UpgossipError {
  static override name = 'UnknownReleaseError'
}

/** `POST /call` with a protocol version this peer's app cannot take. */
export class ProtocolCallError extends UpgossipError {
  static override name = 'ProtocolCallError'
}

/** A bundle given to `publish` or `--install` was not admitted. */
export class PublishRefusedError extends UpgossipError {
  static override name = 'PublishRefusedError'
}

/** Peer states (DESIGN.md). */
export type PeerState = 'installing' | 'running' | 'upgrading' | 'rolling-back' | 'failed'

/** One release in `GET /status`. */
export interface ReleaseStatus {
  id: string
  app: string
  version: string
  state: ReleaseState
  waitingOn?: string
  reason?: string
  have: number
  size: number
  signers: number
  expires: string
}

/** One other peer in `GET /status`. */
export interface NetworkPeerStatus {
  peerId: string
  app: string | null
  version: string | null
  state: string
  labels: Record<string, string>
  seen: string
  connected: boolean
  addrs: string[]
  /** How much of each release it holds (from its beats; at most 32). */
  held?: Array<{ id: string, have: number, size: number }>
  /** Releases that failed on it. */
  failed?: string[]
  /** The release it waits to switch to, and the schedule rule it waits on. */
  waiting?: { id: string, on: string, reason?: string }
  /** The release it is switching to now. */
  upgrading?: string
}

/** `GET /status` and `upgossip status --json`. */
export interface DaemonStatus {
  peerId: string
  app: string | null
  version: string | null
  state: PeerState
  labels: Record<string, string>
  networkName: string
  multiaddrs: string[]
  connections: number
  /** Freeze detection: when this peer last heard the network. */
  freshness: FreshnessStatus
  /** The trust policy in force, per app: publishers, threshold, and the sequence (rotations adopted; 0 for none). */
  trust: Record<string, AppPolicy>
  releases: ReleaseStatus[]
  network: NetworkPeerStatus[]
}

/** What `rotate` (`POST /rotate`) did. */
export interface RotateResult {
  status: 'rotated' | 'known'
  id: string
  app: string
  sequence: number
  publishers: string[]
  threshold: number
}

/** What `publish` did. */
export interface PublishResult {
  status: 'published' | 'known' | 'merged'
  id: string
  app: string
  version: string
}

/** Files in a data directory. */
export const DATA_FILES = {
  peerKey: 'peer.key',
  blocks: 'blocks',
  releases: 'releases',
  packages: 'packages',
  nodeState: 'node.json',
  controls: 'controls.json',
  appLog: 'app.log',
  events: 'events.jsonl',
  control: 'control.json'
} as const

/** Least time between two syncs with one peer triggered by its beats. */
const BEAT_SYNC_INTERVAL_MS = 10_000

/** Refusals that depend on the trust policy in force: a rotation adopted later may change them. */
const TRUST_DEPENDENT = new Set(['ThresholdNotMetError', 'RotationOutOfOrderError'])

/** Rotation refusals that are ordinary anti-entropy (already past it, not ours, not yet): logged as info, not warnings. */
const QUIET_ROTATION_REFUSALS = new Set(['RotationOutdatedError', 'RotationOutOfOrderError', 'UntrustedAppError'])

/** Errors that mean the package itself is bad (refuse the release), not that this peer had trouble. */
const PACKAGE_FAULTS = new Set(['SizeMismatchError', 'ManifestMismatchError', 'PackageDagError', 'UnsafePathError', 'UnsupportedEntryError',
  'NotAPackageError', 'ManifestMissingError', 'ManifestInvalidError', 'ManifestFileMissingError', 'UnsupportedCidError', 'BlockHashMismatchError'])

function isLoopback (addr: string): boolean {
  return addr.startsWith('/ip4/127.') || addr.startsWith('/ip6/::1/')
}

/** A running peer. */
export class Daemon extends EventEmitter<{ status: [], timeline: [TimelineSample] }> {
  readonly options: DaemonOptions
  readonly events: EventLog
  readonly metrics = new DaemonMetrics()
  private readonly clock: Clock
  private readonly lock: DataDirLock
  private readonly trustStore: TrustStore
  private readonly blocks: FsBlockStore
  private readonly book: ReleaseBook
  private nodeState: NodeState
  private node!: PeerNode
  private exchange!: BlockExchange
  private sync!: SyncProtocol
  private gossip!: Gossip
  private keeper!: PeerKeeper
  private control!: ControlApi
  private host!: AppHost
  private shim!: Shim
  private engine!: UpgradeEngine
  private rollout!: Rollout
  private readonly controls: OperatorControls
  private policy: ScheduleRule[] = []
  private appConfig: unknown = null
  private readonly view = new NetworkView()
  private readonly versions = new VersionTimeline()
  private readonly progress = new Map<string, number>()
  /** Why a fetch is paused (a full disk), shown as the release's `reason` until it completes. */
  private readonly fetchPaused = new Map<string, string>()
  private readonly fetches = new Map<string, AbortController>()
  private readonly syncing = new Set<string>()
  /** Peers to sync with again once the sync running with them ends (a rotation was adopted meanwhile). */
  private readonly syncAgain = new Set<string>()
  private readonly turnedDown = new Set<string>()
  private readonly lastBeatSync = new Map<string, number>()
  private readonly work = new Set<Promise<unknown>>()
  /** One full collection once the daemon is quiet after its start, a fetch or an upgrade. */
  private readonly settle = new MemorySettle({ busy: () => this.fetches.size > 0 || this.engine?.inProgress != null })
  private beatTimer: NodeJS.Timeout | undefined
  private beatSeq = 0
  /** The last beat sent, without its sequence number, and when: an unchanged status is sent only every idle interval. */
  private lastBeatBody = ''
  /** The last beat's body with download progress reduced to done or not. */
  private lastSteadyBody = ''
  /** The idle interval the last beat announced. */
  private lastBeatIdle = 0
  private lastBeatAt = 0
  /** A peer new to the view was heard, or a connection opened: the next tick beats, so a newcomer learns of this peer soon. */
  private beatDue = false
  private freshness: Freshness
  private frozen = false
  private statusTimer: NodeJS.Timeout | undefined
  private stopped = false
  private started = false

  private constructor (options: DaemonOptions, lock: DataDirLock, events: EventLog, trustStore: TrustStore, nodeState: NodeState, clock: Clock) {
    super()
    this.options = options
    this.lock = lock
    this.events = events
    this.trustStore = trustStore
    this.nodeState = nodeState
    this.clock = clock
    this.freshness = new Freshness(clock, options.freezeAfterMs)
    this.blocks = new FsBlockStore(this.file('blocks'))
    this.controls = new OperatorControls(this.file('controls'))
    this.book = new ReleaseBook({
      dir: this.file('releases'),
      trust: () => this.trust,
      floor: app => this.floor(app),
      maxSize: options.maxPackageSize,
      clock
    })
  }

  /** The trust policy in force (the store's, rotations included). */
  private get trust (): TrustPolicy {
    return this.trustStore.policy
  }

  private file (name: keyof typeof DATA_FILES): string {
    return path.join(this.options.data, DATA_FILES[name])
  }

  /** The version of `app` this peer runs; releases must be newer to be admitted. */
  private floor (app: string): string | undefined {
    return this.nodeState.app === app ? this.nodeState.current?.version : undefined
  }

  /** Start a daemon on its data directory. */
  static async start (options: DaemonOptions, clock: Clock = systemClock): Promise<Daemon> {
    const lock = await lockDataDir(options.data)
    let daemon: Daemon | undefined
    try {
      const events = new EventLog(path.join(options.data, DATA_FILES.events), { clock })
      const { store, seeded, replayed, problems } = await TrustStore.open(options.data, { seed: options.trust, replace: options.replaceTrust })
      const nodeState = await readNodeState(path.join(options.data, DATA_FILES.nodeState))
      daemon = new Daemon(options, lock, events, store, nodeState, clock)
      if (seeded) events.info('trust-seeded', `trust store seeded from ${options.trust ?? ''}: ${store.policy.appNames().join(', ') || 'no apps'}`)
      for (const problem of problems) events.warn('rotation-unreadable', `a kept trust rotation was not adopted: ${problem}`)
      // rotations kept on disk win over a seed or a store written before them (a crash, --replace-trust)
      for (const rotation of replayed) daemon.noteRotated(rotation, 'the rotations kept in the data directory')
      await daemon.startParts()
      return daemon
    } catch (err) {
      if (daemon != null) await daemon.stop().catch(() => {})
      else await lock.release()
      throw err
    }
  }

  private async startParts (): Promise<void> {
    const o = this.options
    // files named on the command line are checked before anything else happens
    this.policy = o.policy == null ? [] : await readPolicy(o.policy)
    this.appConfig = await this.readAppConfig()
    for (const problem of await this.book.load()) this.events.warn('release-unreadable', `skipped an unreadable release file: ${problem}`)
    // a stop (or crash) between adopting a rotation and dropping what it no longer admits, or
    // rotations adopted again at start: nothing signed only by removed keys may start
    for (const app of this.trust.appNames()) {
      if ((this.trust.forApp(app)?.sequence ?? 0) > 0) await this.dropUntrusted(app)
    }
    if (o.app != null && this.nodeState.app !== o.app) {
      if (this.nodeState.app != null && this.nodeState.current != null) {
        throw new AppMismatchError(`this data directory runs ${this.nodeState.app}; it cannot join as ${o.app} (use another --data directory)`)
      }
      this.nodeState = { app: o.app, current: null, previous: null, since: null }
      await writeNodeState(this.file('nodeState'), this.nodeState)
    }
    if (o.install != null) await this.install(o.install)

    const privateKey = await loadPeerKey(this.file('peerKey'))
    const psk = o.psk == null ? undefined : await readPsk(o.psk)
    const log = (message: string): void => { this.events.info('net', message) }
    this.node = await createPeerNode({
      privateKey,
      listen: o.listen,
      dialFrom: o.dialFrom,
      bootstrap: o.bootstrap,
      mdns: o.mdns,
      psk,
      scoredTopics: [`upgossip/${o.network}/releases`, `upgossip/${o.network}/status`],
      services: {
        blocks: { store: this.blocks, metrics: this.metrics, log, corruptServedBlocks: process.env.UPGOSSIP_FAULT === 'serve-corrupt-blocks' },
        sync: { network: o.network, metrics: this.metrics, log, releasesFor: request => this.releasesFor(request) },
        appStreams: { metrics: this.metrics, log }
      }
    })
    this.exchange = this.node.services.blocks
    // a block stored here (fetched or published) answers the peers waiting for it
    const exchange = this.exchange
    this.blocks.onStored = cid => { exchange.arrived(cid) }
    this.sync = this.node.services.sync
    this.gossip = new Gossip({
      node: this.node,
      network: o.network,
      metrics: this.metrics,
      log,
      onRelease: async (data, from) => await this.onGossipRelease(data, from),
      onBeat: (data, from) => this.onBeat(data, from)
    })
    this.shim = new Shim({
      streams: this.node.services.appStreams,
      selfId: () => this.peerId,
      app: () => this.nodeState.app,
      native: () => this.rollout?.nativeProtocol(),
      spoken: () => this.host?.spoken ?? [],
      nativeOf: peer => this.view.get(peer)?.beat.protocol ?? undefined,
      deliver: async (from, request, version, bytes) => await this.host.request(from, request, version, bytes),
      log,
      callTimeoutMs: o.callTimeoutMs
    })
    this.keeper = new PeerKeeper({ node: this.node, view: this.view, minConnections: o.minConnections, intervalMs: Math.max(1000, Math.floor(o.beatIntervalMs / 2)), log, bootstrap: o.bootstrap })
    this.gossip.start()
    this.keeper.start()
    this.node.addEventListener('peer:identify', evt => {
      if (evt.detail.protocols.includes(SYNC_PROTOCOL)) void this.syncWith(evt.detail.peerId)
    })
    // peers found by discovery (mDNS) are dialled while this peer has fewer than it wants
    this.node.addEventListener('peer:discovery', evt => {
      if (this.stopped || this.node.getPeers().length >= o.minConnections) return
      const id = evt.detail.id
      if (id.equals(this.node.peerId)) return
      this.node.dial(id, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => { this.events.info('net', `could not dial discovered peer ${id.toString()}: ${err.message}`) })
    })
    // a new connection may be a peer that has not heard this one yet: the next tick beats
    this.node.addEventListener('peer:connect', () => { this.beatDue = true; this.changed() })
    this.node.addEventListener('peer:disconnect', () => { this.changed() })
    this.book.on('change', entry => {
      this.changed()
      if (entry.state === 'fetching') this.startFetch(entry)
      else this.settle.burstEnded()
    })
    for (const entry of this.book.list()) if (entry.state === 'fetching') this.startFetch(entry)
    this.beatTimer = setInterval(() => { void this.beat(false) }, o.beatIntervalMs)
    this.beatTimer.unref()
    void this.beat()
    await this.startApp()
    // a bootstrap peer that cannot be reached (wrong address, another --psk) is worth saying
    if (o.bootstrap.length > 0) {
      const check = setTimeout(() => {
        if (!this.stopped && this.node.getPeers().length === 0) {
          this.events.warn('bootstrap-unreachable', `no connection after 15s: none of the --bootstrap peers (${o.bootstrap.join(' ')}) could be reached; check the addresses and that both peers use the same --psk`)
        }
      }, 15_000)
      check.unref()
    }

    this.control = new ControlApi({ daemon: this, port: o.control, token: randomBytes(24).toString('hex') })
    try {
      await this.control.start()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new ControlPortInUseError(`--control ${o.control}: the port is in use on 127.0.0.1; choose another or leave it out for a free one`)
      throw err
    }
    if (Object.keys(this.trust.toJSON().apps).length === 0) {
      this.events.warn('trust-empty', 'the trust store is empty: this peer admits no release; start it once with --trust FILE')
    }
    this.started = true
    await writeJsonAtomic(this.file('control'), {
      url: this.control.url,
      token: this.control.token,
      peerId: this.node.peerId.toString(),
      multiaddrs: this.multiaddrs()
    }, { mode: 0o600 })
    this.settle.start()
    this.settle.burstEnded()
    this.events.info('started', `peer ${this.node.peerId.toString()} on network "${o.network}", listening on ${this.multiaddrs().join(' ')}; control API ${this.control.url}`, {
      peerId: this.node.peerId.toString(), multiaddrs: this.multiaddrs(), control: this.control.url
    })
  }

  /** The app host, the upgrade engine and the rollout; the current version starts here. */
  private async startApp (): Promise<void> {
    const o = this.options
    await this.controls.load()
    this.host = new AppHost({
      peerId: this.peerId,
      config: this.appConfig,
      logFile: this.file('appLog'),
      onRoute: async peer => await this.shim.route(peer),
      onSend: async (peer, version, request) => await this.shim.send(peer, version, request),
      onPeers: () => this.view.list().filter(e => e.beat.app === this.nodeState.app).map(e => e.peerId),
      log: message => { this.events.warn('app', message) }
    })
    this.host.on('spoken', () => {
      this.shim.update().catch(err => { this.events.warn('shim', `could not update the app protocols: ${(err as Error).message}`) })
      this.changed()
    })
    // a running version that reports itself unhealthy fails like a canary: back to the previous one
    this.host.on('unhealthy', (spec, reason) => {
      const current = this.nodeState.current
      this.events.warn('app-unhealthy', `${spec.app}@${spec.version} reports itself unhealthy: ${reason}`)
      if (current == null || this.nodeState.previous == null || this.engine.inProgress != null) return
      this.rollout.rollback(`unhealthy: ${reason}`).then(
        async () => { await this.book.setState(current.id, 'failed', `reported itself unhealthy: ${reason}`); await this.beat() },
        (err: Error) => { this.events.error('app-unhealthy', `could not roll back the unhealthy version: ${err.message}`) }
      )
    })
    this.host.on('failed', reason => {
      this.events.error('app-failed', `no version can run: ${reason}`)
      this.changed()
    })
    this.engine = new UpgradeEngine({
      dataDir: o.data,
      host: this.host,
      installed: async id => await this.rollout.installed(id),
      simulations: async r => await this.rollout.simulationsFor(r),
      onCommit: async (to, from, kind) => { await this.rollout.onCommit(to, from, kind) },
      afterCommit: async () => { await this.rollout.collectGarbage() },
      mayCommit: to => this.book.isRevoked(to.id) ? `${to.version} was revoked during the switch` : undefined,
      onFailed: async (to, from, reason, kind) => { await this.rollout.onFailed(to, from, reason, kind) },
      log: this.events,
      fault: process.env.UPGOSSIP_FAULT,
      transformLimitMs: o.transformLimitMs,
      runningSince: () => this.nodeState.since
    })
    this.rollout = new Rollout({
      dataDir: o.data,
      book: this.book,
      engine: this.engine,
      host: this.host,
      controls: this.controls,
      policy: this.policy,
      events: this.events,
      clock: this.clock,
      peerId: () => this.peerId,
      labels: o.labels,
      view: () => this.view.list(),
      nodeState: () => this.nodeState,
      setNodeState: async state => {
        // releases turned down as "not newer" may be newer than what runs after a rollback
        if (state.current?.id !== this.nodeState.current?.id) this.turnedDown.clear()
        this.nodeState = state
        await writeNodeState(this.file('nodeState'), state)
        this.changed()
      },
      beatNow: async () => { await this.beat() },
      settleMs: Math.max(1000, Math.round(o.beatIntervalMs * 1.5)),
      changed: () => { this.changed() }
    })
    await this.rollout.start()
  }

  private async readAppConfig (): Promise<unknown> {
    const file = this.options.appConfig
    if (file == null) return null
    return await readJsonFile(file, '--app-config', message => new AppConfigInvalidError(message))
  }

  /**
   * `upgossip call` / `POST /call`: one request from this peer, in its current protocol
   * version, to the app on `peer` (default: itself) — made by the app's own SDK exactly
   * as `node.call`, through the shim.
   */
  async call (peer: string | null, request: unknown, protocol?: number): Promise<unknown> {
    if (protocol != null) {
      // a client that speaks a fixed protocol version: delivered like a request from a peer
      // of that version (held during a switch, translated by the running version's SOs)
      if (peer != null && peer !== this.peerId) throw new ProtocolCallError('"protocol" applies to calls to this peer\'s own app only; leave "peer" out')
      if (this.host.current?.running === true && !this.host.isHolding && !this.host.spoken.includes(protocol)) {
        throw new ProtocolCallError(`this peer's app does not speak protocol ${protocol} (it speaks ${this.host.spoken.join(', ')})`)
      }
      return await this.host.request(this.peerId, request, protocol)
    }
    // during a switch the call waits for the next version, like requests from other peers
    const deadline = this.clock.now() + this.options.callTimeoutMs
    while (this.host.isHolding && this.clock.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
    const proc = this.host.current
    if (proc?.running !== true) throw new NoAppRunningError('no app runs on this peer now')
    return await proc.callOut(peer, request, this.options.callTimeoutMs + 5000)
  }

  /** Find a release by id or `APP@VERSION`. */
  findRelease (ref: string): ReleaseEntry {
    const at = ref.lastIndexOf('@')
    const entry = at > 0
      ? this.book.list().find(e => e.signed.record.app === ref.slice(0, at) && e.signed.record.version === ref.slice(at + 1))
      : this.book.get(ref)
    if (entry == null) throw new UnknownReleaseError(`no release ${ref} is known on this peer; "upgossip status" lists them`)
    return entry
  }

  /** `upgossip approve`: let a release that waits for approval go (durable). */
  async approve (ref: string): Promise<ReleaseEntry> {
    return await this.operatorControl('approve', ref)
  }

  /** `upgossip hold`: keep a release from starting here until resumed (durable). */
  async hold (ref: string): Promise<ReleaseEntry> {
    return await this.operatorControl('hold', ref)
  }

  /** `upgossip resume`: undo a hold. */
  async resume (ref: string): Promise<ReleaseEntry> {
    return await this.operatorControl('resume', ref)
  }

  private async operatorControl (verb: 'approve' | 'hold' | 'resume', ref: string): Promise<ReleaseEntry> {
    const entry = this.findRelease(ref)
    await this.controls[verb](entry.id)
    const done = { approve: 'approved', hold: 'held', resume: 'resumed' }[verb]
    this.events.info(done, `operator ${done} ${entry.signed.record.app}@${entry.signed.record.version}`, { id: entry.id })
    this.changed()
    // approving or resuming may let the release start now
    if (verb !== 'hold') void this.rollout.tick()
    return entry
  }

  /**
   * A revocation: verified against the trust policy (a threshold of the app's
   * publishers), kept durably, and applied — a peer running the release rolls back,
   * others drop it. Returns `known` when it was already applied.
   */
  async applyRevocation (revocation: SignedRevocation, via: string): Promise<'new' | 'known'> {
    await verifyRevocation(revocation, this.trust)
    const id = revocation.record.release.toString()
    if (!(await this.book.revoke(revocation))) return 'known'
    this.fetches.get(id)?.abort()
    // a release turned down as the revoked one's twin may be the right one after all
    this.turnedDown.clear()
    this.events.warn('release-revoked', `release ${id} of ${revocation.record.app} was revoked by its publishers (via ${via})${revocation.record.reason === '' ? '' : `: ${revocation.record.reason}`}`, { id })
    // the rollout rolls a revoked running release back (and keeps trying until it can)
    if (this.nodeState.current?.id === id) void this.rollout?.tick()
    this.changed()
    return 'new'
  }

  /** `POST /revoke`: apply a signed revocation and gossip it. */
  async revoke (bytes: Uint8Array): Promise<{ status: 'revoked' | 'known', release: string }> {
    const revocation = decodeRevocation(bytes)
    const outcome = await this.applyRevocation(revocation, 'revoke')
    if (outcome === 'new') {
      await this.gossip.publishRelease(encodeReleasesTopicMessage({ type: 'revocation', revocation })).catch(err => {
        this.events.warn('gossip-failed', `could not gossip the revocation: ${(err as Error).message}; peers will get it by sync`)
      })
    }
    return { status: outcome === 'new' ? 'revoked' : 'known', release: revocation.record.release.toString() }
  }

  /**
   * A trust rotation: adopted when a threshold of the app's current publishers signed it
   * and it is the next one ({@link TrustStore.adopt}); from then on only the new keys
   * count. Releases not started here that the new policy no longer admits are dropped,
   * and every connected peer is synced with again, since releases and revocations this
   * peer turned down may be signed by the new keys. Throws the refusal's named error.
   */
  async applyRotation (rotation: SignedRotation, via: string): Promise<AdoptOutcome> {
    const { app, sequence } = rotation.record
    let outcome: AdoptOutcome
    try {
      outcome = await this.trustStore.adopt(rotation)
    } catch (err) {
      const error = err as Error
      this.metrics.rotation('refused', error.name)
      this.metrics.refused(error.name)
      const quiet = QUIET_ROTATION_REFUSALS.has(error.name)
      this.events.event(quiet ? 'info' : 'warn', 'rotation-refused', `refused a trust rotation of ${app} to sequence ${sequence} via ${via}: ${error.message}`, { app, sequence, error: error.name, via })
      throw err
    }
    if (outcome.kind === 'known') return outcome
    this.metrics.rotation('adopted')
    this.noteRotated(rotation, via, outcome.id)
    await this.dropUntrusted(app)
    // a staged release dropped above may have had its future SO loaded
    await this.rollout?.refreshSimulations().catch(err => { this.events.warn('simulations', `could not load simulation objects: ${(err as Error).message}`) })
    // what this peer turned down may be signed by the new keys: hear it again from every peer
    this.turnedDown.clear()
    if (this.node != null && !this.stopped) {
      for (const peer of this.node.getPeers()) void this.syncWith(peer)
      void this.beat()
    }
    this.changed()
    return outcome
  }

  /** Forget the releases of `app` not started here that the policy in force no longer admits (after a rotation). */
  private async dropUntrusted (app: string): Promise<void> {
    const threshold = this.trust.forApp(app)?.threshold ?? 0
    for (const entry of await this.book.dropUntrusted(app)) {
      this.fetches.get(entry.id)?.abort()
      this.progress.delete(entry.id)
      const r = entry.signed.record
      this.events.warn('release-dropped', `dropped ${r.app}@${r.version} (${entry.id}): after the trust rotation it no longer has ${threshold} signature${threshold === 1 ? '' : 's'} by trusted keys; co-signed by the current keys it is admitted again`, { id: entry.id, app: r.app, version: r.version })
    }
  }

  /** The `trust-rotated` event. */
  private noteRotated (rotation: SignedRotation, via: string, id?: string): void {
    const { app, publishers, threshold, sequence, reason } = rotation.record
    this.events.warn('trust-rotated', `the trust policy of ${app} was rotated by its publishers (via ${via}): now ${threshold} of ${publishers.length} key${publishers.length === 1 ? '' : 's'} (${publishers.join(', ')}), sequence ${sequence}${reason === '' ? '' : `: ${reason}`}`, {
      app, sequence, publishers, threshold, via, ...(id == null ? {} : { id })
    })
  }

  /** `POST /rotate`: adopt a signed trust rotation and gossip it. */
  async rotate (bytes: Uint8Array): Promise<RotateResult> {
    const rotation = decodeRotation(bytes)
    const outcome = await this.applyRotation(rotation, 'rotate')
    if (outcome.kind === 'new') {
      await this.gossip.publishRelease(encodeReleasesTopicMessage({ type: 'rotation', rotation })).catch(err => {
        this.events.warn('gossip-failed', `could not gossip the trust rotation: ${(err as Error).message}; peers will get it by sync`)
      })
    }
    const { record } = rotation
    return { status: outcome.kind === 'new' ? 'rotated' : 'known', id: outcome.id, app: record.app, sequence: record.sequence, publishers: record.publishers, threshold: record.threshold }
  }

  /** Sequences of the apps whose trust was rotated, for beats (others are 0). */
  private trustSequences (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const app of this.trust.appNames().slice(0, 32)) {
      const sequence = this.trust.forApp(app)?.sequence ?? 0
      if (sequence > 0) out[app] = sequence
    }
    return out
  }

  /** `upgossip rollback`: back to the previous version on this peer. */
  async rollback (): Promise<{ from: string, to: string }> {
    return await this.rollout.rollback()
  }

  /** `upgossip history`: this peer's upgrades, rollbacks and failures, oldest first. */
  async history (): Promise<Array<Record<string, unknown>>> {
    const types = new Set(['installed', 'upgrade-started', 'upgrade-committed', 'upgrade-failed', 'upgrade-rolled-back', 'upgrade-interrupted', 'upgrade-recovered', 'writes-lost', 'install-failed', 'app-failed', 'release-refused', 'approved', 'held', 'resumed'])
    const text = await fs.readFile(this.file('events'), 'utf8').catch(() => '')
    const out: Array<Record<string, unknown>> = []
    for (const line of text.split('\n')) {
      if (line === '') continue
      try {
        const event = JSON.parse(line) as Record<string, unknown>
        if (types.has(String(event.type))) out.push(event)
      } catch {}
    }
    return out
  }

  /** Complete multiaddrs (with `/p2p/`), loopback first. */
  multiaddrs (): string[] {
    const all = this.node.getMultiaddrs().map(a => a.toString())
    return [...all.filter(isLoopback), ...all.filter(a => !isLoopback(a))]
  }

  /** The peer id. */
  get peerId (): string {
    return this.node.peerId.toString()
  }

  /** Stop everything and release the data directory. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.beatTimer)
    clearTimeout(this.statusTimer)
    this.settle.stop()
    for (const controller of this.fetches.values()) controller.abort()
    this.keeper?.stop()
    this.rollout?.stop()
    // a switch cut short by the stop is finished or undone on the next start, not failed
    this.engine?.stop()
    await this.host?.close().catch(() => {})
    // let aborted fetches and staging finish before the directory is released
    await Promise.allSettled([...this.work])
    await this.control?.stop().catch(() => {})
    await fs.rm(this.file('control'), { force: true })
    this.gossip?.stop()
    await Promise.resolve(this.node?.stop()).catch(() => {})
    if (this.started) this.events.info('stopped', 'peer stopped')
    await this.events.close()
    await this.lock.release()
  }

  private changed (): void {
    // coalesce bursts (block progress) into one status event per 200 ms
    if (this.statusTimer != null) return
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined
      this.sampleVersions()
      this.emit('status')
    }, 200)
    this.statusTimer.unref()
  }

  // -- admission ---------------------------------------------------------------

  private noteVerdict (verdict: Verdict, via: string): void {
    if (verdict.kind === 'new') {
      const r = verdict.entry.signed.record
      this.events.info('release-admitted', `admitted ${r.app}@${r.version} (${verdict.id}) via ${via}`, { id: verdict.id, app: r.app, version: r.version, via })
    } else if (verdict.kind === 'merged') {
      this.events.info('release-cosigned', `merged new signatures for ${verdict.id} via ${via}`, { id: verdict.id, via })
    } else if (verdict.kind === 'rejected') {
      this.metrics.refused(verdict.error.name)
      this.events.warn('release-rejected', `refused a release via ${via}: ${verdict.reason}`, { id: verdict.id, error: verdict.error.name, via })
    } else if (verdict.kind === 'ignored' && verdict.error.name === 'EquivocationError') {
      // not the sender's fault (it may only relay), but an operator must hear of it
      this.metrics.refused(verdict.error.name)
      this.events.error('equivocation', `refused a release via ${via}: ${verdict.reason}`, { id: verdict.id, error: verdict.error.name, via })
    }
  }

  private async onGossipRelease (data: Uint8Array, from: string): Promise<GossipVerdict> {
    let message
    try {
      message = decodeReleasesTopicMessage(data)
    } catch (err) {
      const error = err instanceof UpgossipError ? err : new UpgossipError(String(err))
      // a newer peer's message type is not malformed, just not ours
      const verdict: Verdict = { kind: error instanceof UnknownMessageTypeError ? 'ignored' : 'rejected', reason: error.message, error }
      this.noteVerdict(verdict, `gossip from ${from}`)
      return verdict.kind === 'rejected' ? 'reject' : 'ignore'
    }
    if (message.type === 'rotation') {
      try {
        const outcome = await this.applyRotation(message.rotation, `gossip from ${from}`)
        return outcome.kind === 'new' ? 'accept' : 'ignore'
      } catch (err) {
        // refused with an event and counted by applyRotation; only a forgery is held against the sender
        return (err as { forged?: boolean }).forged === true ? 'reject' : 'ignore'
      }
    }
    if (message.type === 'revocation') {
      try {
        const outcome = await this.applyRevocation(message.revocation, `gossip from ${from}`)
        return outcome === 'new' ? 'accept' : 'ignore'
      } catch (err) {
        this.metrics.refused((err as Error).name)
        this.events.warn('revocation-refused', `refused a revocation via gossip from ${from}: ${(err as Error).message}`)
        return (err as { forged?: boolean }).forged === true ? 'reject' : 'ignore'
      }
    }
    let verdict: Verdict
    try {
      // forwarded once checked; kept durably just after (the book tells listeners then)
      const screened = await this.book.screen(message.signed)
      verdict = screened.verdict
      screened.stored.catch((err: Error) => {
        // our own trouble (a full disk): not the sender's fault; sync brings it again later
        this.events.warn('release-not-stored', `could not keep a release from ${from}: ${err.message}`)
      })
    } catch (err) {
      this.events.warn('release-not-stored', `could not take in a release from ${from}: ${(err as Error).message}`)
      return 'ignore'
    }
    if (verdict.kind === 'ignored' || verdict.kind === 'rejected') this.remember(verdict)
    else {
      this.freshness.heardRelease()
      if (this.frozen) this.checkFreshness()
    }
    this.noteVerdict(verdict, `gossip from ${from}`)
    if (verdict.kind === 'new' || verdict.kind === 'merged') return 'accept'
    return verdict.kind === 'rejected' ? 'reject' : 'ignore'
  }

  private onBeat (data: Uint8Array, from: string): GossipVerdict {
    let beat: StatusBeat
    try {
      beat = decodeBeat(data)
    } catch (err) {
      this.metrics.refused((err as Error).name)
      return 'reject'
    }
    const newcomer = this.view.get(from) == null
    if (!this.view.update(from, beat, this.clock.now())) return 'ignore'
    if (from !== this.peerId) {
      // its addresses at once: an app may call the peer it just heard of
      this.keeper?.learn(from, beat.addrs).catch(() => {})
      if (newcomer) this.beatDue = true
      this.freshness.heardStatus()
      if (this.frozen) this.checkFreshness()
    }
    this.changed()
    // anti-entropy: a head we lack for an app we trust, and have not already turned down,
    // or a trust policy rotated further than ours
    const trusted = this.trust.toJSON().apps
    const headMissing = Object.entries(beat.heads).some(([app, id]) => trusted[app] != null && this.book.get(id) == null && !this.turnedDown.has(id))
    const trustBehind = Object.entries(beat.trust ?? {}).some(([app, sequence]) => trusted[app] != null && sequence > (trusted[app]?.sequence ?? 0))
    if (headMissing || trustBehind) {
      const last = this.lastBeatSync.get(from) ?? 0
      if (this.clock.now() - last >= BEAT_SYNC_INTERVAL_MS) {
        this.lastBeatSync.set(from, this.clock.now())
        if (this.lastBeatSync.size > 4096) this.lastBeatSync.delete(this.lastBeatSync.keys().next().value as string)
        try {
          void this.syncWith(peerIdFromString(from))
        } catch {}
      }
    }
    return 'accept'
  }

  /**
   * Remember a release id this peer turned down, so beats naming it do not trigger syncs
   * forever. Not one turned down as "not newer": that depends on what runs here, which a
   * rollback in progress is about to change (a twin of a revoked release must get in).
   */
  private remember (verdict: { id?: string, error: Error }): void {
    const id = verdict.id
    if (id == null || verdict.error.name === 'VersionNotNewerError') return
    this.turnedDown.add(id)
    if (this.turnedDown.size > 1024) this.turnedDown.delete(this.turnedDown.values().next().value as string)
  }

  private syncRequest (): SyncRequest {
    const request: SyncRequest = {}
    for (const app of Object.keys(this.trust.toJSON().apps).slice(0, MAX_SYNC_APPS)) request[app] = this.floor(app) ?? null
    return request
  }

  /** A sync answer ({@link syncAnswer}): only the frames kept are encoded. */
  private releasesFor (request: SyncRequest): Uint8Array[] {
    const parts = Object.entries(request).map(([app, version]): SyncAnswerPart<ReleasesTopicMessage> => ({
      revocations: this.book.revocations(app).map(revocation => ({ type: 'revocation', revocation })),
      rotations: this.trustStore.rotations(app).map(rotation => ({ type: 'rotation', rotation })),
      releases: this.book.atOrAbove(app, version ?? undefined).map(entry => ({ type: 'release', signed: entry.signed }))
    }))
    return syncAnswer(parts).map(message => encodeReleasesTopicMessage(message))
  }

  /**
   * Take in one sync frame (a releases-topic message) the way gossip would. `rotated`:
   * a rotation was adopted; `trustDependent`: refused under the policy in force, but a
   * rotation adopted later in the same sync may let it in.
   */
  private async considerSynced (bytes: Uint8Array, via: string): Promise<{ verdict: Verdict, rotated?: boolean, trustDependent?: boolean }> {
    let message
    try {
      message = decodeReleasesTopicMessage(bytes)
    } catch (err) {
      const error = err instanceof UpgossipError ? err : new UpgossipError(String(err))
      return { verdict: { kind: error instanceof UnknownMessageTypeError ? 'ignored' : 'rejected', reason: error.message, error } }
    }
    const refused = (err: unknown): { verdict: Verdict, trustDependent: boolean } => {
      const error = err instanceof UpgossipError ? err : new UpgossipError(String(err))
      const forged = (err as { forged?: boolean }).forged === true
      return { verdict: { kind: forged ? 'rejected' : 'ignored', reason: error.message, error }, trustDependent: !forged && TRUST_DEPENDENT.has(error.name) }
    }
    if (message.type === 'revocation') {
      try {
        await this.applyRevocation(message.revocation, via)
        return { verdict: { kind: 'known', id: message.revocation.record.release.toString() } }
      } catch (err) {
        return refused(err)
      }
    }
    if (message.type === 'rotation') {
      try {
        const outcome = await this.applyRotation(message.rotation, via)
        return { verdict: { kind: 'known', id: outcome.id }, rotated: outcome.kind === 'new' }
      } catch (err) {
        return refused(err)
      }
    }
    const verdict = await this.book.consider(message.signed)
    return { verdict, trustDependent: verdict.kind === 'ignored' && TRUST_DEPENDENT.has(verdict.error.name) }
  }

  /** Run anti-entropy with one peer (at most one sync per peer at a time; asked again meanwhile, it runs once more after). */
  private async syncWith (peer: PeerId): Promise<void> {
    const key = peer.toString()
    if (this.syncing.has(key)) {
      this.syncAgain.add(key)
      return
    }
    const request = this.syncRequest()
    if (this.stopped || Object.keys(request).length === 0) return
    this.syncing.add(key)
    const via = `sync with ${key}`
    try {
      const releases = await this.sync.sync(peer, request)
      await takeInSyncAnswer(releases, async bytes => {
        const { verdict, rotated, trustDependent } = await this.considerSynced(bytes, via)
        this.noteVerdict(verdict, via)
        if (verdict.kind === 'ignored' || verdict.kind === 'rejected') this.remember(verdict)
        return { rejected: verdict.kind === 'rejected', rotated: rotated === true, trustDependent: trustDependent === true }
      })
    } catch (err) {
      if (!this.stopped) this.events.info('sync-failed', `sync with ${key} failed: ${(err as Error).message}`)
    } finally {
      this.syncing.delete(key)
    }
    if (this.syncAgain.delete(key) && !this.stopped) await this.syncWith(peer)
  }

  // -- packages ----------------------------------------------------------------

  private startFetch (entry: ReleaseEntry): void {
    if (this.fetches.has(entry.id) || this.stopped) return
    const controller = new AbortController()
    this.fetches.set(entry.id, controller)
    const { record } = entry.signed
    const job = fetchPackage({
      root: record.package,
      store: this.blocks,
      exchange: this.exchange,
      sources: () => this.node.getPeers(),
      onProgress: have => { this.progress.set(entry.id, have); this.changed() },
      log: message => { this.events.info('fetch', `${record.app}@${record.version}: ${message}`) },
      signal: controller.signal
    }).then(async () => {
      if (!controller.signal.aborted) await this.stagePackage(entry)
    }).catch(async (err: Error) => {
      if (controller.signal.aborted) return
      if (PACKAGE_FAULTS.has(err.name)) {
        this.metrics.refused(err.name)
        await this.book.setState(entry.id, 'refused', err.message)
        this.events.error('release-refused', `refused ${record.app}@${record.version}: ${err.message}`, { id: entry.id, error: err.name })
        return
      }
      // our own trouble: stay fetching, keep the blocks held, and try again later
      const retry = `trying again in ${formatDuration(this.options.fetchRetryMs)}`
      if (err instanceof DiskFullError) {
        const held = `${this.progress.get(entry.id) ?? 0} of ${record.size} bytes held`
        this.fetchPaused.set(entry.id, `${err.name}: ${err.message}; ${held}, kept; free space in ${this.options.data} and the fetch resumes`)
        this.changed()
        this.events.warn('fetch-paused', `${record.app}@${record.version}: the disk is full (${err.message}); ${held}, kept; the fetch is paused, ${retry}; free space to let it complete`, { id: entry.id, error: err.name })
      } else {
        this.events.warn('fetch-retry', `${record.app}@${record.version}: ${err.message}; ${retry}`, { id: entry.id, error: err.name })
      }
      const timer = setTimeout(() => { if (!this.stopped && this.book.get(entry.id)?.state === 'fetching') this.startFetch(entry) }, this.options.fetchRetryMs)
      timer.unref()
    }).catch((err: Error) => {
      this.events.error('fetch-failed', `${record.app}@${record.version}: ${err.message}`)
    }).finally(() => {
      this.fetches.delete(entry.id)
      this.work.delete(job)
    })
    this.work.add(job)
  }

  private async stagePackage (entry: ReleaseEntry): Promise<void> {
    const { record } = entry.signed
    await verifyReleasePackage(record, this.blocks)
    try {
      await this.ensureUnpacked(entry.id, record)
      this.progress.set(entry.id, record.size)
      await this.book.setState(entry.id, this.nodeState.current?.id === entry.id ? 'active' : 'staged')
    } catch (err) {
      if (isDiskFull(err)) throw new DiskFullError(`no space left on device to unpack or record ${record.app}@${record.version} in ${this.options.data}`, { cause: err })
      throw err
    }
    this.fetchPaused.delete(entry.id)
    // a staged release's future SO is loaded into the running app before the switch
    await this.rollout?.refreshSimulations().catch(err => { this.events.warn('simulations', `could not load simulation objects: ${(err as Error).message}`) })
    this.events.info('release-staged', `staged ${record.app}@${record.version} (${record.size} bytes, every block verified)`, { id: entry.id })
  }

  // -- publish and install -----------------------------------------------------

  /** Import a release bundle's blocks and admit its release; gossip it when new or co-signed. */
  async publish (bytes: Uint8Array): Promise<PublishResult> {
    const bundle = await readBundle(bytes)
    const { record } = bundle.signed
    const verdict = await this.admitBundle(bundle, 'publish')
    const entry = this.book.get(verdict.id)
    if (entry != null && entry.state === 'fetching') this.startFetch(entry)
    if ((verdict.kind === 'new' || verdict.kind === 'merged') && entry != null) {
      await this.gossip.publishRelease(encodeReleasesTopicMessage({ type: 'release', signed: entry.signed })).catch(err => {
        this.events.warn('gossip-failed', `could not gossip ${verdict.id}: ${(err as Error).message}; peers will get it by sync`)
      })
    }
    const status = verdict.kind === 'new' ? 'published' : verdict.kind
    return { status, id: verdict.id, app: record.app, version: record.version }
  }

  /**
   * Admit a release bundle (publish, --install): the checks the book makes, before any
   * block is stored; then the package against the record, its blocks, and the book.
   */
  private async admitBundle (bundle: ReleaseBundle, via: string): Promise<Exclude<Verdict, { kind: 'rejected' | 'ignored' }>> {
    const { record } = bundle.signed
    if (this.book.get(bundle.id.toString()) == null) {
      // a twin of a known version gets its own error from the book, not "not newer"
      const floor = this.book.twinOf(record) == null ? this.floor(record.app) : undefined
      await verifySignedRelease(bundle.signed, { trust: this.trust, clock: this.clock, floor, maxSize: this.options.maxPackageSize })
    }
    const { blocks } = await verifyReleasePackage(record, bundle.blocks)
    await this.importBlocks(bundle.blocks, blocks)
    const verdict = await this.book.consider(bundle.signed)
    this.noteVerdict(verdict, via)
    if (verdict.kind === 'rejected' || verdict.kind === 'ignored') throw new PublishRefusedError(verdict.reason, { cause: verdict.error })
    return verdict
  }

  /** Unpack a held package to `packages/<id>/` unless it is there already. */
  private async ensureUnpacked (id: string, record: ReleaseRecord): Promise<void> {
    const dir = path.join(this.options.data, DATA_FILES.packages, id)
    if (!(await fs.stat(dir).then(() => true, () => false))) await unpackPackage(record.package, this.blocks, dir)
  }

  private async importBlocks (from: { get: (cid: CID) => Promise<Uint8Array> }, cids: CID[]): Promise<void> {
    for (const cid of cids) {
      if (!(await this.blocks.has(cid))) await this.blocks.put(cid, await from.get(cid))
    }
  }

  /** `--install BUNDLE`: admit and stage a first version, and make it this peer's current release. */
  private async install (file: string): Promise<void> {
    let bytes: Uint8Array
    try {
      bytes = await fs.readFile(file)
    } catch (err) {
      throw new PublishRefusedError(`cannot read --install bundle ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    const bundle = await readBundle(bytes)
    const id = bundle.id.toString()
    const { record } = bundle.signed
    if (this.nodeState.current != null) {
      if (this.nodeState.current.id !== id) this.events.info('install-skipped', `--install ${file} ignored: this peer already runs ${this.nodeState.app ?? ''}@${this.nodeState.current.version}`)
      return
    }
    if (this.nodeState.app != null && this.nodeState.app !== record.app) {
      throw new PublishRefusedError(`--install ${file} is ${record.app}, but this peer serves ${this.nodeState.app}`)
    }
    await this.admitBundle(bundle, `--install ${file}`)
    const entry = this.book.get(id)
    if (entry == null) throw new PublishRefusedError(`--install ${file} was not admitted`)
    this.nodeState = { app: record.app, current: { id, version: record.version }, previous: null, since: this.clock.now() }
    await writeNodeState(this.file('nodeState'), this.nodeState)
    await this.ensureUnpacked(id, record)
    this.progress.set(id, record.size)
    await this.book.setState(id, 'active')
    this.events.info('installed', `installed ${record.app}@${record.version} (${id}) from ${file}`, { id })
  }

  // -- status ------------------------------------------------------------------

  private peerState (): PeerState {
    if (this.host?.failedReason != null) return 'failed'
    const switching = this.engine?.inProgress
    if (switching != null) return switching.step === 'rollback' ? 'rolling-back' : 'upgrading'
    return this.nodeState.current == null ? 'installing' : 'running'
  }

  private have (entry: ReleaseEntry): number {
    const done = entry.state !== 'fetching' && entry.state !== 'refused'
    return done ? entry.signed.record.size : this.progress.get(entry.id) ?? 0
  }

  /** Say so once when this peer stops hearing the network, and once when it hears it again. */
  private checkFreshness (): void {
    const f = this.freshness.status()
    this.metrics.frozen.set(f.frozen ? 1 : 0)
    if (f.frozen === this.frozen) return
    this.frozen = f.frozen
    if (f.frozen) this.events.warn('freeze-suspected', `this peer may be cut off: ${f.reason ?? ''}; it cannot learn of new releases or revocations (check its connections and --bootstrap peers)`)
    else this.events.info('freeze-cleared', 'this peer hears the network again')
    this.changed()
  }

  /**
   * The interval between idle beats: `idleBeatInterval`, or longer in a large network, so
   * that the whole network sends at most `idleBeatRate` idle beats per second. Only while
   * every peer in view announces its interval (a daemon from before `idle` would drop a
   * peer silent for longer than its `peerTimeout`). Both are at most the 10 minutes a beat
   * may announce (the options refuse longer intervals).
   */
  private idleBeatInterval (): number {
    const o = this.options
    return this.view.allAnnounceIdle() ? idleBeatIntervalFor(this.view.size + 1, o.idleBeatIntervalMs, o.idleBeatRate) : o.idleBeatIntervalMs
  }

  /**
   * Send a status beat. `always` (the default) is for events — a start, a claim, a failure:
   * they go out at once. The timer's ticks (every `beatInterval`) send one when a peer new
   * to the view was heard or a connection opened (so a newcomer learns of this peer within
   * a tick), and otherwise as {@link beatNow} decides: when the status changed, or the idle
   * interval passed. An idle network's upkeep is gossip of beats from every peer, a cost
   * that grows with the network (docs/benchmarks.md).
   */
  private async beat (always = true): Promise<void> {
    if (this.stopped) return
    if (this.view.expire(this.clock.now(), this.options.peerTimeoutMs).length > 0) this.changed()
    this.checkFreshness()
    this.metrics.viewSize.set(this.view.size)
    this.metrics.peers.set(this.node.getPeers().length)
    const held = this.book.list().filter(e => this.have(e) > 0).slice(-32)
    const waiting = this.rollout?.waitingNow()
    const beat: StatusBeat = {
      v: 1,
      seq: 0,
      app: this.nodeState.app,
      version: this.nodeState.current?.version ?? null,
      state: this.peerState(),
      labels: this.options.labels,
      addrs: this.multiaddrs().slice(0, 16),
      heads: Object.fromEntries(Object.entries(this.book.heads()).slice(0, 32)),
      held: held.map(e => ({ id: e.id, have: this.have(e), size: e.signed.record.size })),
      since: this.nodeState.since,
      protocol: this.rollout?.nativeProtocol() ?? null,
      upgrading: this.rollout?.upgrading ?? null,
      claim: this.rollout?.claim ?? null,
      failed: this.rollout?.failedHere() ?? [],
      waiting: waiting == null ? null : beatWaiting(waiting.id, waiting.rule, waiting.reason)
    }
    // only where a rotation was adopted: a network that never rotates sends the beats it always did
    const trust = this.trustSequences()
    if (Object.keys(trust).length > 0) beat.trust = trust
    // a download's progress counts as a change only at each tenth: during a swarm every
    // fetching peer's bytes grow all the time, and others only show them (status, dashboard)
    const steady = JSON.stringify({ ...beat, held: beat.held.map(h => [h.id, h.size, h.have >= h.size]) })
    const body = JSON.stringify({ ...beat, held: beat.held.map(h => [h.id, h.size, Math.floor(10 * h.have / Math.max(1, h.size))]) })
    // not part of the bodies compared: the interval follows the view's size, which is not a change of status
    const idle = this.idleBeatInterval()
    beat.idle = idle
    const now = this.clock.now()
    const tick = { body, steady, lastBody: this.lastBeatBody, lastSteady: this.lastSteadyBody, since: now - this.lastBeatAt, idle, lastIdle: this.lastBeatIdle, slack: this.options.beatIntervalMs / 2 }
    if (!always && !this.beatDue && !beatNow(tick)) return
    this.lastBeatBody = body
    this.lastSteadyBody = steady
    this.lastBeatIdle = idle
    this.lastBeatAt = now
    this.beatDue = false
    this.beatSeq = Math.max(this.beatSeq + 1, now)
    beat.seq = this.beatSeq
    try {
      const bytes = encodeBeat(beat)
      decodeBeat(bytes) // what receivers enforce, enforced on ourselves first
      await this.gossip.publishBeat(bytes)
    } catch (err) {
      this.events.info('beat-failed', `status beat not sent: ${(err as Error).message}`)
    }
  }

  /** This peer and the network as it sees it. */
  status (): DaemonStatus {
    const connected = new Set(this.node.getPeers().map(p => p.toString()))
    const counts: Record<string, number> = {}
    const releases = this.book.list().map(e => {
      counts[e.state] = (counts[e.state] ?? 0) + 1
      const r = e.signed.record
      const s: ReleaseStatus = { id: e.id, app: r.app, version: r.version, state: e.state, have: this.have(e), size: r.size, signers: e.signed.signatures.length, expires: r.expires }
      const waiting = e.state === 'waiting' ? this.rollout?.waitingOn(e.id) : undefined
      if (waiting != null) {
        s.waitingOn = waiting.rule
        if (waiting.reason != null) s.reason = waiting.reason
      }
      if (e.reason != null) s.reason = e.reason
      const paused = e.state === 'fetching' ? this.fetchPaused.get(e.id) : undefined
      if (paused != null) s.reason = paused
      return s
    })
    this.metrics.releases.reset()
    for (const [state, n] of Object.entries(counts)) this.metrics.releases.set({ state }, n)
    return {
      peerId: this.peerId,
      app: this.nodeState.app,
      version: this.nodeState.current?.version ?? null,
      state: this.peerState(),
      labels: this.options.labels,
      networkName: this.options.network,
      multiaddrs: this.multiaddrs(),
      connections: connected.size,
      freshness: this.freshness.status(),
      trust: Object.fromEntries(this.trust.appNames().map(app => [app, this.trust.forApp(app) as AppPolicy])),
      releases,
      network: this.view.list().filter(e => e.peerId !== this.peerId).map(e => {
        const peer: NetworkPeerStatus = {
          peerId: e.peerId,
          app: e.beat.app,
          version: e.beat.version,
          state: e.beat.state,
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
        return peer
      })
    }
  }

  /** `GET /timeline`: the versions of this app's peers over time, as this peer saw them. */
  timeline (): TimelineJson {
    this.sampleVersions()
    return this.versions.toJSON()
  }

  /** Add a timeline sample when the version counts changed (this peer and the peers of its app in view). */
  private sampleVersions (): void {
    if (this.node == null) return
    const app = this.nodeState.app
    const peers = this.view.list().filter(e => e.peerId !== this.peerId && (app == null || e.beat.app === app)).map(e => ({ version: e.beat.version }))
    const sample = this.versions.record(this.clock.now(), countVersions([{ version: this.nodeState.current?.version ?? null }, ...peers]))
    if (sample != null) this.emit('timeline', sample)
  }
}
