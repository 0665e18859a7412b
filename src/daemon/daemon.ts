/**
 * The peer daemon: one data directory, one daemon. A facade over its parts — opened,
 * created, started and stopped in one place ({@link Daemon.start}, {@link Daemon.stop})
 * — that serves them to the control API as a {@link DaemonApi}.
 *
 * @example
 * ```ts
 * const daemon = await Daemon.start(resolveDaemonOptions({ data: './peer-a', trust: 'trust.json', install: 'kv-v1.car' }))
 * console.log(daemon.status().releases)
 * await daemon.stop()
 * ```
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { buildString } from '../build-info.js'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import { createPeerNode, loadPeerKey } from '../net/index.js'
import type { ReleaseEntry } from '../release/index.js'
import { writeJsonAtomic } from '../store/index.js'
import type { BackupLeaseResult, DaemonEvents, RunningDaemon, DaemonStatus, PauseResult, PublishResult, RevokeResult, RollbackResult, RotateResult } from './api.js'
import { releasesFor } from './anti-entropy.js'
import { ControlApi } from './control-api.js'
import { ControlPortInUseError } from './errors.js'
import { daemonHealth } from './health.js'
import type { DaemonPhase, HealthReport } from './health.js'
import { closeLocalParts, openLocalParts } from './local-parts.js'
import type { LocalParts } from './local-parts.js'
import { MetricsListener } from './metrics-listener.js'
import { createDaemonParts, finishBeforeStop, startDaemonParts, stopDaemonParts } from './parts.js'
import type { DaemonParts } from './parts.js'
import type { DaemonOptions } from './options.js'
import type { TimelineJson } from './version-timeline.js'

/** A running peer. */
export class Daemon implements RunningDaemon {
  private readonly parts: DaemonParts
  private readonly metricsListener: MetricsListener | undefined
  private control: ControlApi | undefined
  private stopped = false
  private started = false
  /** The start failed: stopping leaves a data directory that was new as it was. */
  private startRefused = false

  private constructor (parts: DaemonParts, metricsListener: MetricsListener | undefined) {
    this.parts = parts
    this.metricsListener = metricsListener
  }

  /** Start a daemon on its data directory: local parts first, then the `--metrics` listener, the network, the control API (bound, not yet announced), the app. */
  static async start (options: DaemonOptions, clock: Clock = systemClock): Promise<Daemon> {
    const local = await openLocalParts(options, clock)
    let daemon: Daemon | undefined
    let listener: MetricsListener | undefined
    const log = (message: string): void => { local.events.info('net', message) }
    try {
      const privateKey = await loadPeerKey(local.dataDir.peerKey)
      // bound before the network and the app: a port in use refuses the start
      listener = await startMetricsListener(local, privateKey.publicKey.toString(), () => daemon)
      const node = await createPeerNode({
        privateKey,
        listen: options.listen,
        dialFrom: options.dialFrom,
        bootstrap: options.bootstrap,
        mdns: options.mdns,
        psk: local.psk,
        scoredTopics: [`upgossip/${options.network}/releases`, `upgossip/${options.network}/status`],
        // the protocols of this daemon, registered as libp2p services (started and stopped with the node)
        services: {
          blocks: { store: local.blocks, metrics: local.metrics, log, corruptServedBlocks: process.env.UPGOSSIP_FAULT === 'serve-corrupt-blocks' },
          sync: { network: options.network, metrics: local.metrics, log, releasesFor: request => releasesFor(local, request) },
          appStreams: { metrics: local.metrics, log }
        }
      })
      daemon = new Daemon(createDaemonParts(local, node), listener)
      await daemon.startParts()
      return daemon
    } catch (err) {
      if (daemon != null) {
        daemon.startRefused = true
        await daemon.stop().catch(() => {})
      } else {
        await listener?.stop().catch(() => {})
        await closeLocalParts(local, true)
      }
      throw err
    }
  }

  /** Where the daemon is in its life, for `GET /healthz`. */
  private get phase (): DaemonPhase {
    return this.stopped ? 'stopping' : this.started ? 'running' : 'starting'
  }

  /** Whether this daemon and its app are healthy (`GET /healthz` of the `--metrics` listener). */
  health (): HealthReport {
    const p = this.parts
    return daemonHealth({ phase: this.phase, peerId: this.peerId, nodeState: p.nodeState, host: p.host, peerState: () => p.status.peerState(), build: buildString() })
  }

  private async startParts (): Promise<void> {
    const p = this.parts
    // bound before anything starts, so a port in use refuses the start before the app runs;
    // no request is served until control.json (the token) is written below
    this.control = new ControlApi({ api: this, port: p.options.control, token: randomBytes(24).toString('hex') })
    try {
      await this.control.start()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new ControlPortInUseError(`--control ${p.options.control}: the port is in use on 127.0.0.1; choose another or leave it out for a free one`)
      throw err
    }
    await startDaemonParts(p)
    this.started = true
    const multiaddrs = p.status.multiaddrs()
    const metrics = this.metricsListener
    await writeJsonAtomic(p.dataDir.control, { url: this.control.url, token: this.control.token, peerId: this.peerId, pid: process.pid, multiaddrs, proxy: p.proxy.url, ...(metrics == null ? {} : { metrics: metrics.url }) }, { mode: 0o600 })
    p.events.info('started', `peer ${this.peerId} on network "${p.options.network}", listening on ${multiaddrs.join(' ')}; control API ${this.control.url}${metrics == null ? '' : `; /metrics and /healthz on ${metrics.address}`}`, {
      peerId: this.peerId, multiaddrs, control: this.control.url, ...(metrics == null ? {} : { metrics: metrics.address })
    })
  }

  /** Stop everything and release the data directory. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.started) await finishBeforeStop(this.parts)
    await stopDaemonParts(this.parts, async () => {
      await this.control?.stop().catch(() => {})
      // until here a probe hears "stopping" (503), not a refused connection
      await this.metricsListener?.stop().catch(() => {})
      await fs.rm(this.parts.dataDir.control, { force: true })
    })
    if (this.started) this.parts.events.info('stopped', 'peer stopped')
    await closeLocalParts(this.parts, this.startRefused)
  }

  /** The options it runs with. */
  get options (): DaemonOptions {
    return this.parts.options
  }

  /** The peer id. */
  get peerId (): string {
    return this.parts.node.peerId.toString()
  }

  /** Complete multiaddrs (with `/p2p/`), loopback first. */
  multiaddrs (): string[] {
    return this.parts.status.multiaddrs()
  }

  status (): DaemonStatus { return this.parts.status.status() }
  timeline (): TimelineJson { return this.parts.status.timeline() }
  async metricsText (): Promise<string> { return await this.parts.metrics.text() }
  async publish (bundle: Uint8Array): Promise<PublishResult> { return await this.parts.publishing.publish(bundle) }
  async revoke (revocation: Uint8Array): Promise<RevokeResult> { return await this.parts.publishing.revoke(revocation) }
  async rotate (rotation: Uint8Array): Promise<RotateResult> { return await this.parts.publishing.rotate(rotation) }
  async pause (record: Uint8Array): Promise<PauseResult> { return await this.parts.publishing.pause(record) }
  async call (peer: string | null, request: unknown, protocol?: number): Promise<unknown> { return await this.parts.operator.call(peer, request, protocol) }
  async approve (ref: string): Promise<ReleaseEntry> { return await this.parts.operator.approve(ref) }
  async hold (ref: string): Promise<ReleaseEntry> { return await this.parts.operator.hold(ref) }
  async resume (ref: string): Promise<ReleaseEntry> { return await this.parts.operator.resume(ref) }
  async rollback (): Promise<RollbackResult> { return await this.parts.operator.rollback() }
  async history (): Promise<Array<Record<string, unknown>>> { return await this.parts.operator.history() }
  async backupBegin (): Promise<BackupLeaseResult> { return { ...await this.parts.backupPause.begin(), ...this.running() } }
  backupRenew (lease: string): BackupLeaseResult { return { ...this.parts.backupPause.renew(lease), ...this.running() } }
  backupEnd (lease: string): { ended: true, pausedMs: number } { return this.parts.backupPause.end(lease) }
  private running (): { peerId: string, app: string | null, version: string | null } {
    const state = this.parts.nodeState.state
    return { peerId: this.peerId, app: state.app, version: state.current?.version ?? null }
  }

  refused (error: string): void { this.parts.metrics.refused(error) }
  failed (message: string): void { this.parts.events.error('control-api', message) }

  on<K extends keyof DaemonEvents>(event: K, listener: (...args: DaemonEvents[K]) => void): this {
    this.parts.changes.on(event, listener as never)
    return this
  }

  off<K extends keyof DaemonEvents>(event: K, listener: (...args: DaemonEvents[K]) => void): this {
    this.parts.changes.off(event, listener as never)
    return this
  }
}

/** Bind the `--metrics` listener, if asked for; until the daemon exists it answers `/healthz` with "starting". */
async function startMetricsListener (local: LocalParts, peerId: string, daemon: () => Daemon | undefined): Promise<MetricsListener | undefined> {
  const at = local.options.metrics
  if (at == null) return undefined
  const listener = new MetricsListener({
    metricsText: async () => await local.metrics.text(),
    health: () => daemon()?.health() ?? daemonHealth({ phase: 'starting', peerId, nodeState: local.nodeState, build: buildString() }),
    failed: message => { local.events.error('metrics-listener', message) }
  }, at)
  await listener.start()
  return listener
}

/** Start a daemon on its data directory (what `upgossip daemon` runs). */
export async function startDaemon (options: DaemonOptions, clock: Clock = systemClock): Promise<RunningDaemon> {
  return await Daemon.start(options, clock)
}
