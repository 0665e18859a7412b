/**
 * Status beats: this peer's status, gossiped on events (a start, a claim, a failure)
 * and otherwise when it changed or an idle interval passed; and the beats of others,
 * taken into the network view. Also freeze detection: a peer that stops hearing the
 * network says so once, and once again when it hears it again.
 */
import { beatNow, beatWaiting, decodeBeat, encodeBeat, idleBeatIntervalFor } from '../net/index.js'
import type { NetworkView, PeerNode, StatusBeat } from '../net/index.js'
import type { ReleaseBook } from '../release/index.js'
import type { Clock } from '../clock.js'
import type { AntiEntropy } from './anti-entropy.js'
import type { EventLog } from './event-log.js'
import type { Freshness } from './freshness.js'
import type { DaemonMetrics } from './metrics.js'
import type { NodeStateStore } from './node-state.js'
import type { StatusProjection } from './status.js'
import type { TrustUpdates } from './trust-updates.js'

/** What the rollout tells other peers through beats. */
export interface RolloutFacts {
  waitingNow: () => { id: string, rule: string, reason?: string } | undefined
  nativeProtocol: () => number | undefined
  readonly upgrading: string | null
  readonly claim: string | null
  failedHere: () => string[]
}

/** What beats need. */
export interface BeatsComponents {
  node: Pick<PeerNode, 'getPeers' | 'addEventListener' | 'removeEventListener'>
  view: Pick<NetworkView, 'update' | 'get' | 'expire' | 'size' | 'allAnnounceIdle'>
  keeper: { learn: (peerId: string, addrs: string[]) => Promise<void> }
  gossip: { publishBeat: (data: Uint8Array) => Promise<void> }
  book: Pick<ReleaseBook, 'summaries' | 'heads'>
  status: Pick<StatusProjection, 'peerId' | 'peerState' | 'multiaddrs' | 'have'>
  rollout: RolloutFacts
  nodeState: Pick<NodeStateStore, 'state'>
  trustUpdates: Pick<TrustUpdates, 'sequences'>
  /** True when this peer's trust policy lists `app`: a peer announcing another app is not taken in. */
  trustsApp: (app: string) => boolean
  antiEntropy: Pick<AntiEntropy, 'heardBeat'>
  freshness: Pick<Freshness, 'heardStatus' | 'heardRelease' | 'status'>
  metrics: Pick<DaemonMetrics, 'viewSize' | 'peers' | 'frozen' | 'refused'>
  events: Pick<EventLog, 'info' | 'warn'>
  changes: { changed: () => void }
  clock: Clock
}

/** Options of beats. */
export interface BeatsInit {
  labels: Record<string, string>
  beatIntervalMs: number
  idleBeatIntervalMs: number
  idleBeatRate: number
  peerTimeoutMs: number
  /** This daemon's upgossip build (`0.1.0 (1a2b3c4)`), sent in every beat. */
  build?: string
}

/** Sends this peer's beats and takes in others'. */
export class Beats {
  private readonly c: BeatsComponents
  private readonly init: BeatsInit
  private timer: NodeJS.Timeout | undefined
  private seq = 0
  /** The last beat sent, without its sequence number: an unchanged status is sent only every idle interval. */
  private lastBody = ''
  /** The last beat's body with download progress reduced to done or not. */
  private lastSteady = ''
  /** The idle interval the last beat announced. */
  private lastIdle = 0
  private lastAt = 0
  /** A peer new to the view was heard, or a neighbour subscribed to beats: the next tick beats, so a newcomer learns of this peer soon. */
  private due = false
  private frozen = false
  private stopped = false

  constructor (components: BeatsComponents, init: BeatsInit) {
    this.c = components
    this.init = init
  }

  /**
   * A neighbour subscribed to beats (a new connection's peer, once gossip can reach it):
   * the next tick beats. One sent at the connection itself, before the subscription
   * arrived, would not have reached it.
   */
  neighbourSubscribed (): void {
    this.due = true
  }

  /** A connection opened or closed: the status (its connection count) changed. */
  private readonly onConnection = (): void => {
    this.c.changes.changed()
  }

  /** Beat now and at every tick. */
  start (): void {
    this.c.node.addEventListener('peer:connect', this.onConnection)
    this.c.node.addEventListener('peer:disconnect', this.onConnection)
    this.timer = setInterval(() => { void this.beat(false) }, this.init.beatIntervalMs)
    this.timer.unref()
    void this.beat()
  }

  /** No more beats. */
  stop (): void {
    this.stopped = true
    clearInterval(this.timer)
    this.c.node.removeEventListener('peer:connect', this.onConnection)
    this.c.node.removeEventListener('peer:disconnect', this.onConnection)
  }

  /** A beat from gossip: into the view, and anti-entropy when it names what this peer lacks. */
  take (data: Uint8Array, from: string): 'accept' | 'ignore' | 'reject' {
    let beat: StatusBeat
    try {
      beat = decodeBeat(data)
    } catch (err) {
      this.c.metrics.refused((err as Error).name)
      return 'reject'
    }
    // a class of node this peer does not trust: not in its view, not forwarded (its publishers
    // are unknown here, so nothing it announces can be checked or acted on)
    if (beat.app != null && from !== this.c.status.peerId && !this.c.trustsApp(beat.app)) {
      this.c.metrics.refused('UntrustedAppError')
      return 'ignore'
    }
    const newcomer = this.c.view.get(from) == null
    if (!this.c.view.update(from, beat, this.c.clock.now())) return 'ignore'
    if (from !== this.c.status.peerId) {
      // its addresses at once: an app may call the peer it just heard of
      this.c.keeper.learn(from, beat.addrs).catch(() => {})
      if (newcomer) this.due = true
      this.c.freshness.heardStatus()
      if (this.frozen) this.checkFreshness()
    }
    this.c.changes.changed()
    this.c.antiEntropy.heardBeat(from, beat)
    return 'accept'
  }

  /** A release was heard by gossip: the network is heard. */
  heardRelease (): void {
    this.c.freshness.heardRelease()
    if (this.frozen) this.checkFreshness()
  }

  /** Say so once when this peer stops hearing the network, and once when it hears it again. */
  checkFreshness (): void {
    const f = this.c.freshness.status()
    this.c.metrics.frozen.set(f.frozen ? 1 : 0)
    if (f.frozen === this.frozen) return
    this.frozen = f.frozen
    if (f.frozen) this.c.events.warn('freeze-suspected', `this peer may be cut off: ${f.reason ?? ''}; it cannot learn of new releases or revocations (check its connections and --bootstrap peers)`)
    else this.c.events.info('freeze-cleared', 'this peer hears the network again')
    this.c.changes.changed()
  }

  /**
   * The interval between idle beats: `idleBeatInterval`, or longer in a large network, so
   * that the whole network sends at most `idleBeatRate` idle beats per second. Only while
   * every peer in view announces its interval (a daemon from before `idle` would drop a
   * peer silent for longer than its `peerTimeout`). Both are at most the 10 minutes a beat
   * may announce (the options refuse longer intervals).
   */
  private idleInterval (): number {
    const { view } = this.c
    return view.allAnnounceIdle() ? idleBeatIntervalFor(view.size + 1, this.init.idleBeatIntervalMs, this.init.idleBeatRate) : this.init.idleBeatIntervalMs
  }

  /** The beat this peer would send now (sequence 0). */
  compose (): StatusBeat {
    const { status, rollout, nodeState } = this.c
    const state = nodeState.state
    const held = this.c.book.summaries().filter(e => status.have(e) > 0).slice(-32)
    const waiting = rollout.waitingNow()
    const beat: StatusBeat = {
      v: 1,
      seq: 0,
      app: state.app,
      version: state.current?.version ?? null,
      state: status.peerState(),
      labels: this.init.labels,
      addrs: status.multiaddrs().slice(0, 16),
      heads: Object.fromEntries(Object.entries(this.c.book.heads()).slice(0, 32)),
      held: held.map(e => ({ id: e.id, have: status.have(e), size: e.size })),
      since: state.since,
      protocol: rollout.nativeProtocol() ?? null,
      upgrading: rollout.upgrading,
      claim: rollout.claim,
      failed: rollout.failedHere(),
      waiting: waiting == null ? null : beatWaiting(waiting.id, waiting.rule, waiting.reason),
      ...(this.init.build == null ? {} : { build: this.init.build })
    }
    // only where a rotation was adopted: a network that never rotates sends the beats it always did
    const trust = this.c.trustUpdates.sequences()
    if (Object.keys(trust).length > 0) beat.trust = trust
    return beat
  }

  /**
   * Send a status beat. `always` (the default) is for events — a start, a claim, a failure:
   * they go out at once. The timer's ticks (every `beatInterval`) send one when a peer new
   * to the view was heard or a neighbour subscribed to beats (so a newcomer learns of this peer within
   * a tick), and otherwise as {@link beatNow} decides: when the status changed, or the idle
   * interval passed. An idle network's upkeep is gossip of beats from every peer, a cost
   * that grows with the network (docs/benchmarks-analysis.md).
   */
  async beat (always = true): Promise<void> {
    if (this.stopped) return
    const now = this.c.clock.now()
    if (this.c.view.expire(now, this.init.peerTimeoutMs).length > 0) this.c.changes.changed()
    this.checkFreshness()
    this.c.metrics.viewSize.set(this.c.view.size)
    this.c.metrics.peers.set(this.c.node.getPeers().length)
    const beat = this.compose()
    // a download's progress counts as a change only at each tenth: during a swarm every
    // fetching peer's bytes grow all the time, and others only show them (status, dashboard)
    const steady = JSON.stringify({ ...beat, held: beat.held.map(h => [h.id, h.size, h.have >= h.size]) })
    const body = JSON.stringify({ ...beat, held: beat.held.map(h => [h.id, h.size, Math.floor(10 * h.have / Math.max(1, h.size))]) })
    // not part of the bodies compared: the interval follows the view's size, which is not a change of status
    const idle = this.idleInterval()
    beat.idle = idle
    const tick = { body, steady, lastBody: this.lastBody, lastSteady: this.lastSteady, since: now - this.lastAt, idle, lastIdle: this.lastIdle, slack: this.init.beatIntervalMs / 2 }
    if (!always && !this.due && !beatNow(tick)) return
    this.lastBody = body
    this.lastSteady = steady
    this.lastIdle = idle
    this.lastAt = now
    this.due = false
    this.seq = Math.max(this.seq + 1, now)
    beat.seq = this.seq
    await this.send(beat)
  }

  /**
   * A planned stop: one last beat that says so (no claim, no switch in progress), so the
   * others free this peer's `rolling` slot at once instead of when it times out; then no more.
   */
  async farewell (): Promise<void> {
    if (this.stopped || this.timer == null) return
    this.stop()
    this.seq = Math.max(this.seq + 1, this.c.clock.now())
    await this.send({ ...this.compose(), seq: this.seq, claim: null, upgrading: null, stopping: true })
  }

  private async send (beat: StatusBeat): Promise<void> {
    try {
      const bytes = encodeBeat(beat)
      decodeBeat(bytes) // what receivers enforce, enforced on ourselves first
      await this.c.gossip.publishBeat(bytes)
    } catch (err) {
      this.c.events.info('beat-failed', `status beat not sent: ${(err as Error).message}`)
    }
  }
}
