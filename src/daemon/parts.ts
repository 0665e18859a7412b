/**
 * Every part of a running daemon, created in one place ({@link createDaemonParts}) once
 * the local parts are open and the libp2p node runs, and started and stopped in one
 * place, in order. Parts reach each other only through the components objects handed
 * to them here.
 */
import { buildString } from '../build-info.js'
import { formatDuration } from '../duration.js'
import { AppHost, AppProxy, ProcessApp, TcpProcessApp } from '../host/index.js'
import { Gossip, NetworkView, PeerKeeper } from '../net/index.js'
import type { BlockExchange, PeerNode, SyncProtocol } from '../net/index.js'
import { NoAppRunningError, Shim } from '../shim/index.js'
import { UpgradeEngine } from '../upgrade/index.js'
import { Admission, gossipResult } from './admission.js'
import { AntiEntropy } from './anti-entropy.js'
import { BackupPause } from './backup-pause.js'
import { Beats } from './beats.js'
import { InstalledReleases } from './installed-releases.js'
import type { LocalParts } from './local-parts.js'
import { MemorySettle } from './memory-settle.js'
import { Operator } from './operator.js'
import { Publishing } from './publishing.js'
import { Retention } from './retention.js'
import { Rollout } from './rollout.js'
import { Staging } from './staging.js'
import { StatusProjection } from './status.js'

/** Every part of a running daemon. */
export interface DaemonParts extends LocalParts {
  node: PeerNode
  exchange: BlockExchange
  sync: SyncProtocol
  gossip: Gossip
  view: NetworkView
  keeper: PeerKeeper
  admission: Admission
  antiEntropy: AntiEntropy
  staging: Staging
  publishing: Publishing
  beats: Beats
  status: StatusProjection
  host: AppHost
  proxy: AppProxy
  shim: Shim
  engine: UpgradeEngine
  releases: InstalledReleases
  rollout: Rollout
  operator: Operator
  retention: Retention
  /** Switching paused while a backup copies the data directory. */
  backupPause: BackupPause
  settle: MemorySettle
}

/** Create every part (no I/O, nothing started). */
export function createDaemonParts (local: LocalParts, node: PeerNode): DaemonParts {
  const { options: o, book, events, metrics, changes, nodeState, clock, dataDir, trustStore, turnedDown, downloads } = local
  const log = (message: string): void => { events.info('net', message) }
  const self = (): string => node.peerId.toString()
  /** This daemon's upgossip build, in its status, its beats and `/healthz`. */
  const build = buildString()
  // peers with a connection to this one keep their place in a full view
  const view = new NetworkView(undefined, () => new Set(node.getPeers().map(p => p.toString())))
  const exchange = node.services.blocks
  // a block stored here (fetched or published) answers the peers waiting for it
  local.blocks.onStored = cid => { exchange.arrived(cid) }
  const sync = node.services.sync
  const keeper = new PeerKeeper({ node, view, minConnections: o.minConnections, intervalMs: Math.max(1000, Math.floor(o.beatIntervalMs / 2)), log, bootstrap: o.bootstrap })
  const releases = new InstalledReleases({ book, dataDir, nodeState })

  // the app, its shim and the upgrade engine call each other: requests go both ways
  const host: AppHost = new AppHost({
    peerId: self(),
    config: local.appConfig,
    logFile: dataDir.appLog,
    logLimit: o.logLimit,
    // handed on as they are: no wrapper (each would be one more promise per call)
    onRoute: (peer, app) => shim.route(peer, app),
    onSend: (peer, version, request, app) => shim.send(peer, version, request, app),
    onPeers: app => view.list().filter(e => e.beat.app === (app ?? nodeState.app)).map(e => e.peerId),
    log: message => { events.warn('app', message) },
    proxyUrl: () => proxy.url,
    groupFile: dataDir.appGroup,
    onOpenBytes: async (peer, version, app) => await shim.openBytes(peer, version, app)
  })
  /** True while the running app is a process app whose wire is HTTP. */
  const httpApp = (): boolean => host.current instanceof ProcessApp && !(host.current instanceof TcpProcessApp)
  // a process app's calls to peers: an HTTP forward proxy in front of the shim
  const proxy = new AppProxy({
    selfId: self,
    peers: () => view.list().filter(e => e.peerId !== self()).map(e => ({ id: e.peerId, app: e.beat.app, version: e.beat.version, protocol: e.beat.protocol ?? null })),
    // a peer of another class (its beats say which) is called in the protocol the release's `calls` names
    route: async peer => await shim.route(peer, peer == null ? undefined : view.get(peer)?.beat.app ?? undefined),
    send: async (peer, version, request, app) => {
      if (app != null) return await shim.send(peer, version, request, app)
      // the app's own version goes out as it is; another one through the app's SOs
      const proc = host.current
      const remote = async (r: unknown): Promise<unknown> => await shim.send(peer, version, r)
      return proc instanceof ProcessApp ? await proc.callPeer(version, request, remote) : await remote(request)
    },
    // same-version HTTP goes streamed: both apps speak `version` natively (the peer offers its streamed protocol only then)
    streams: async (peer, version) => httpApp() && version === releases.nativeProtocol() && await shim.streams(peer, version),
    exchange: async (peer, version, head, body) => await shim.exchange(peer, version, head, body),
    // in the protocol of the version that made the call: held across a switch, the next version's SOs translate it
    exchangeSelf: async (head, body) => {
      const native = releases.nativeProtocol()
      if (native == null) throw new NoAppRunningError('no app runs on this peer')
      return await host.exchangeHttp(self(), native, head, body)
    },
    // a peer of another class (its beats say which) is called in the protocol `calls` names
    connect: async peer => await host.connectOut(peer, view.get(peer)?.beat.app ?? undefined),
    log: message => { events.warn('app-proxy', message) }
  })
  const shim: Shim = new Shim({
    streams: node.services.appStreams,
    selfId: self,
    app: () => nodeState.app,
    native: () => releases.nativeProtocol(),
    spoken: () => host.spoken,
    nativeOf: peer => view.get(peer)?.beat.protocol ?? undefined,
    appOf: peer => view.get(peer)?.beat.app,
    callsOf: app => releases.callsOf(app, host.runningSpec?.version),
    deliver: (from, request, version, bytes) => host.request(from, request, version, bytes),
    tcpApp: () => host.current instanceof TcpProcessApp,
    acceptBytes: async (from, version) => await host.acceptConnection(from, version),
    httpApp,
    exchange: async (from, version, head, body) => await host.exchangeHttp(from, version, head, body),
    log,
    callTimeoutMs: o.callTimeoutMs,
    observeCall: (outcome, seconds, hops) => { metrics.called(outcome, seconds, hops) }
  })
  const engine: UpgradeEngine = new UpgradeEngine({
    dataDir,
    host,
    installed: async id => await releases.installed(id),
    simulations: async r => await releases.simulationsFor(r),
    onCommit: async (to, from, kind) => { await rollout.onCommit(to, from, kind) },
    afterCommit: async () => { await retention.collect('commit') },
    mayCommit: to => book.isRevoked(to.id) ? `${to.version} was revoked during the switch` : undefined,
    onFailed: async (to, from, reason, kind) => { await rollout.onFailed(to, from, reason, kind) },
    // a commit or a rollback is announced at once, so every peer's view converges within seconds
    switchEnded: () => { void beats.beat() },
    observeSwitch: s => { metrics.switched(s) },
    log: events,
    fault: process.env.UPGOSSIP_FAULT,
    transformLimitMs: o.transformLimitMs,
    logLimit: o.logLimit,
    runningSince: () => nodeState.state.since
  })
  const rollout: Rollout = new Rollout({
    dataDir,
    book,
    engine,
    host,
    releases,
    controls: local.controls,
    events,
    clock,
    nodeState,
    changes,
    peerId: self,
    view: () => view.list(),
    paused: (app, id) => local.pauses.pausedReason(app, id),
    // joinPeers 1 waits for nothing: the newest release heard by any means is installed, as before the option
    joinWait: o.joinPeers <= 1 ? undefined : () => antiEntropy.answered() >= o.joinPeers ? undefined : `${antiEntropy.answered()} of the ${o.joinPeers} peers whose sync answers a first install waits for (joinPeers) have answered`
  }, { policy: local.policy, labels: o.labels, settleMs: Math.max(1000, Math.round(o.beatIntervalMs * 1.5)) })
  const retention: Retention = new Retention({
    book,
    nodeState,
    view: () => view.list(),
    blocks: local.blocks,
    dataDir,
    events,
    metrics,
    clock,
    // the version switched from is current until the commit, and previous after it unless revoked
    switching: () => engine.inProgress == null ? [] : [engine.inProgress.to.id],
    exclusive: async fn => await rollout.exclusive(fn)
  }, { keepReleases: o.keepReleases, retainWindowMs: o.retainWindowMs, observeEveryMs: o.beatIntervalMs, collectEveryMs: Math.min(3_600_000, Math.max(60_000, o.retainWindowMs)), startDelayMs: o.peerTimeoutMs })

  const status = new StatusProjection({
    node,
    nodeState,
    book,
    downloads,
    view,
    trustStore,
    freshness: local.freshness,
    changes,
    metrics,
    clock,
    waitingOn: id => rollout.waitingOn(id),
    pauseOf: (app, id) => local.pauses.get(app, id),
    failedReason: () => host.failedReason,
    appProcess: () => {
      const proc = host.current
      return proc instanceof ProcessApp && proc.running && proc.pid != null && proc.port != null ? { pid: proc.pid, port: proc.port } : undefined
    },
    switchStep: () => engine.inProgress?.step
  }, { labels: o.labels, network: o.network, build, policy: local.policy })
  const admission = new Admission({ book, trustUpdates: local.trustUpdates, pauses: local.pauses, turnedDown, events, metrics, heardRelease: () => { beats.heardRelease() } })
  const antiEntropy = new AntiEntropy({ node, sync, admission, book, trustStore, nodeState, turnedDown, events, metrics, clock })
  const gossip = new Gossip({
    node,
    network: o.network,
    metrics,
    log,
    onRelease: async (data, from) => gossipResult((await admission.take(data, { kind: 'gossip', from })).verdict),
    onBeat: (data, from) => beats.take(data, from),
    onStatusSubscriber: () => { beats.neighbourSubscribed() }
  })
  const beats: Beats = new Beats({
    node,
    view,
    keeper,
    gossip,
    book,
    status,
    rollout,
    nodeState,
    antiEntropy,
    metrics,
    events,
    changes,
    clock,
    trustUpdates: local.trustUpdates,
    trustsApp: app => trustStore.policy.forApp(app) != null,
    freshness: local.freshness
  }, { labels: o.labels, beatIntervalMs: o.beatIntervalMs, idleBeatIntervalMs: o.idleBeatIntervalMs, idleBeatRate: o.idleBeatRate, peerTimeoutMs: o.peerTimeoutMs, build })
  const staging = new Staging({
    book,
    blocks: local.blocks,
    exchange,
    downloads,
    dataDir,
    nodeState,
    events,
    metrics,
    changes,
    clock,
    peers: () => node.getPeers(),
    staged: async () => { await rollout.refreshSimulations() }
  }, { fetchRetryMs: o.fetchRetryMs })
  const publishing = new Publishing({
    ...local,
    maxPackageSize: o.maxPackageSize,
    gossip,
    fetch: id => {
      const entry = book.get(id)
      if (entry != null) staging.fetch(entry)
    }
  })
  const backupPause = new BackupPause({ rollout, events, clock })
  const operator = new Operator({ book, controls: local.controls, rollout, host, events, changes, clock, self, eventsFile: dataDir.events, backup: backupPause }, { callTimeoutMs: o.callTimeoutMs, logFiles: o.logLimit.keep })
  /** One full collection once the daemon is quiet after its start, a fetch or an upgrade. */
  const settle = new MemorySettle({ busy: () => downloads.size > 0 || engine.inProgress != null })
  return { ...local, node, exchange, sync, gossip, view, keeper, admission, antiEntropy, staging, publishing, beats, status, host, proxy, shim, engine, releases, rollout, operator, retention, backupPause, settle }
}

/** Wire the parts' events to each other: who reacts to what. */
function connectParts (p: DaemonParts): void {
  const { events, changes } = p
  const warnSimulations = (err: Error): void => { events.warn('simulations', `could not load simulation objects: ${err.message}`) }
  const updateShim = (): void => {
    p.shim.update().catch(err => { events.warn('shim', `could not update the app protocols: ${(err as Error).message}`) })
  }
  p.nodeState.on('change', (after, before) => {
    // releases turned down as "not newer" may be newer than what runs after a rollback
    if (after.current?.id !== before.current?.id) {
      p.turnedDown.clear()
      // the native version decides which protocols are offered streamed
      updateShim()
    }
    changes.changed()
  })
  p.book.on('change', entry => {
    changes.changed()
    if (entry.state !== 'fetching') p.settle.burstEnded()
  })
  // the blocks a fetch or publish left in the store's memory are garbage once it empties; a
  // few blocks served now and then are not worth a full collection each (V8 takes them in time)
  p.blocks.onCacheExpired = bytes => { if (bytes >= 4 * 1024 * 1024) p.settle.burstEnded() }
  // the rollout rolls a revoked running release back (and keeps trying until it can)
  p.trustUpdates.on('running-revoked', () => { void p.rollout.tick() })
  // a revoked release's SOs leave the running app (a staged or rolled-back one may have brought its future SO)
  p.trustUpdates.on('revoked', () => {
    p.rollout.refreshSimulations().catch(warnSimulations)
    // a revoked release no longer runs here goes (one that runs goes after the rollback's commit)
    p.retention.request('revoked')
  })
  p.trustUpdates.on('rotated', () => {
    // a staged release dropped by the rotation may have had its future SO loaded
    p.rollout.refreshSimulations().catch(warnSimulations)
    // what this peer turned down may be signed by the new keys: hear it again from every peer
    p.antiEntropy.syncAll()
    void p.beats.beat()
  })
  p.rollout.on('announce', () => { void p.beats.beat() })
  // a pause or a resume changes what may start here: decide again now, not at the next tick
  p.pauses.on('changed', () => { void p.rollout.tick() })
  p.host.on('spoken', () => {
    updateShim()
    changes.changed()
  })
  // a running version that reports itself unhealthy fails like a canary: back to the previous one
  p.host.on('unhealthy', (spec, reason) => {
    const state = p.nodeState.state
    const current = state.current
    events.warn('app-unhealthy', `${spec.app}@${spec.version} reports itself unhealthy: ${reason}`)
    if (current == null || state.previous == null || p.engine.inProgress != null) return
    p.rollout.rollback(`unhealthy: ${reason}`).then(
      async () => { await p.book.setState(current.id, 'failed', `reported itself unhealthy: ${reason}`); await p.beats.beat() },
      (err: Error) => { events.error('app-unhealthy', `could not roll back the unhealthy version: ${err.message}`) }
    )
  })
  p.host.on('failed', reason => {
    events.error('app-failed', `no version can run: ${reason}`)
    changes.changed()
  })
  // peers found by discovery (mDNS) are dialled while this peer has fewer than it wants
  p.node.addEventListener('peer:discovery', evt => {
    if (p.node.status !== 'started' || p.node.getPeers().length >= p.options.minConnections) return
    const id = evt.detail.id
    if (id.equals(p.node.peerId)) return
    p.node.dial(id, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => { events.info('net', `could not dial discovered peer ${id.toString()}: ${err.message}`) })
  })
}

/** Start every part, in order (the network's protocols run already, as libp2p services): intake, staging and beats, then the app. */
export async function startDaemonParts (p: DaemonParts): Promise<void> {
  connectParts(p)
  p.gossip.start()
  p.keeper.start()
  p.antiEntropy.start()
  p.staging.start()
  p.beats.start()
  await p.proxy.start()
  await p.rollout.start()
  await p.retention.start()
  // a bootstrap peer that cannot be reached (wrong address, another --psk) is worth saying
  const bootstrap = p.options.bootstrap
  if (bootstrap.length > 0) {
    const check = setTimeout(() => {
      if (p.node.status === 'started' && p.node.getPeers().length === 0) {
        p.events.warn('bootstrap-unreachable', `no connection after 15s: none of the --bootstrap peers (${bootstrap.join(' ')}) could be reached; check the addresses and that both peers use the same --psk`)
      }
    }, 15_000)
    check.unref()
  }
  if (p.trustStore.policy.appNames().length === 0) {
    p.events.warn('trust-empty', 'the trust store is empty: this peer admits no release; start it once with --trust FILE')
  }
  p.settle.start()
  p.settle.burstEnded()
}

/**
 * A planned stop (SIGTERM, SIGINT), before the parts stop: decide nothing new, let a switch
 * in progress finish or roll back for at most `stopTimeout` (past it, it is cut short and
 * undone on the next start without counting as an interruption), then tell the others, so
 * this peer's `rolling` slot frees at once.
 */
export async function finishBeforeStop (p: Pick<DaemonParts, 'rollout' | 'engine' | 'beats' | 'events' | 'options'>): Promise<void> {
  p.rollout.stop()
  const running = p.engine.inProgress
  if (running != null) {
    const limit = formatDuration(p.options.stopTimeoutMs)
    p.events.info('stopping', `stopping: the ${running.kind} to ${running.to.version} (at ${running.step}) finishes or rolls back first, for at most ${limit}`, { to: running.to.id, step: running.step })
    if (!await p.engine.settle(p.options.stopTimeoutMs)) {
      p.events.warn('stop-timeout', `the ${running.kind} to ${running.to.version} did not end within ${limit} (stopTimeout): cut short at ${running.step}, it is undone on the next start and tried again, not counted as an interruption`, { to: running.to.id, step: running.step })
      await p.engine.stop(true)
    }
  }
  await p.beats.farewell()
}

/** Stop every part, in the reverse order; a switch cut short is finished or undone on the next start, not failed. */
export async function stopDaemonParts (p: DaemonParts, beforeNetwork: () => Promise<void>): Promise<void> {
  p.beats.stop()
  p.changes.stop()
  p.settle.stop()
  p.downloads.abortAll()
  p.antiEntropy.stop()
  p.keeper.stop()
  p.rollout.stop()
  await p.retention.stop()
  p.backupPause.stop()
  await p.engine.stop()
  await p.host.close().catch(() => {})
  await p.proxy.stop().catch(() => {})
  // let aborted fetches and staging finish before the directory is released
  await p.staging.stop()
  await beforeNetwork()
  p.gossip.stop()
  await Promise.resolve(p.node.stop()).catch(() => {})
}
