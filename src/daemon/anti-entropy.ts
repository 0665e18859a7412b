/**
 * Anti-entropy: this peer and another exchange what the other lacks — every signed
 * release (with revocations, rollout pauses and rotations) newer than the asker runs. Run on every new
 * connection (once identify shows the peer speaks sync), after a rotation with every
 * peer, and when a beat names a release or a trust sequence this peer lacks.
 */
import { MAX_SYNC_APPS, MAX_SYNC_RELEASES, SYNC_PROTOCOL, peerIdFromString, syncAnswer, takeInSyncAnswer } from '../net/index.js'
import { encodeReleasesTopicMessage } from '../release/index.js'
import type { PeerId, PeerNode, StatusBeat, SyncAnswerPart, SyncRequest } from '../net/index.js'
import type { PauseBook, ReleaseBook, ReleasesTopicMessage, TrustStore } from '../release/index.js'
import type { Clock } from '../clock.js'
import type { Admission } from './admission.js'
import type { EventLog } from './event-log.js'
import type { DaemonMetrics } from './metrics.js'
import type { NodeStateStore } from './node-state.js'
import type { TurnedDown } from './turned-down.js'

/** Least time between two syncs with one peer triggered by its beats. */
const BEAT_SYNC_INTERVAL_MS = 10_000

/** Most peers whose last beat-triggered sync is remembered. */
const MAX_BEAT_SYNC_PEERS = 4096

/** Most peers counted as having answered a sync in full (at least the largest `joinPeers`). */
const MAX_ANSWERED_PEERS = 64

/** What anti-entropy needs. */
export interface AntiEntropyComponents {
  node: Pick<PeerNode, 'getPeers' | 'addEventListener' | 'removeEventListener'>
  /** The sync protocol: ask one peer. */
  sync: { sync: (peer: PeerId, request: SyncRequest) => Promise<Uint8Array[]> }
  admission: Pick<Admission, 'take'>
  book: Pick<ReleaseBook, 'has' | 'revocations' | 'atOrAbove'>
  trustStore: Pick<TrustStore, 'policy' | 'rotations'>
  nodeState: Pick<NodeStateStore, 'floor'>
  turnedDown: Pick<TurnedDown, 'has'>
  events: Pick<EventLog, 'info'>
  metrics: Pick<DaemonMetrics, 'sync'>
  clock: Clock
}

/**
 * A sync answer for `request` ({@link syncAnswer}): per app asked, its revocations, its
 * pause records, its rotations and the releases at or above the asker's version; only the frames kept are
 * encoded.
 */
export async function releasesFor (components: Pick<AntiEntropyComponents, 'book' | 'trustStore'> & { pauseBook: Pick<PauseBook, 'list'> }, request: SyncRequest): Promise<Uint8Array[]> {
  const parts = await Promise.all(Object.entries(request).map(async ([app, version]): Promise<SyncAnswerPart<ReleasesTopicMessage>> => ({
    revocations: components.book.revocations(app).map(revocation => ({ type: 'revocation', revocation })),
    pauses: components.pauseBook.list(app).map(pause => ({ type: 'pause', pause })),
    rotations: components.trustStore.rotations(app).map(rotation => ({ type: 'rotation', rotation })),
    // older records are read from disk; more than an answer holds are never read
    releases: (await components.book.atOrAbove(app, version ?? undefined, MAX_SYNC_RELEASES)).map(entry => ({ type: 'release', signed: entry.signed }))
  })))
  return syncAnswer(parts).map(message => encodeReleasesTopicMessage(message))
}

/** Runs anti-entropy with other peers. */
export class AntiEntropy {
  private readonly c: AntiEntropyComponents
  private readonly syncing = new Set<string>()
  /** Peers to sync with again once the sync running with them ends (a rotation was adopted meanwhile). */
  private readonly again = new Set<string>()
  private readonly lastBeatSync = new Map<string, number>()
  /** Peers whose sync answer was taken in whole, no frame of it rejected. */
  private readonly answeredBy = new Set<string>()
  private stopped = false

  constructor (components: AntiEntropyComponents) {
    this.c = components
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void => {
    if (evt.detail.protocols.includes(SYNC_PROTOCOL)) void this.syncWith(evt.detail.peerId)
  }

  /** Sync with every peer whose identify shows it speaks sync. */
  start (): void {
    this.c.node.addEventListener('peer:identify', this.onIdentify)
  }

  /** No new syncs. */
  stop (): void {
    this.stopped = true
    this.c.node.removeEventListener('peer:identify', this.onIdentify)
  }

  /** Sync with every connected peer (after a rotation: what was turned down may pass now). */
  syncAll (): void {
    if (this.stopped) return
    for (const peer of this.c.node.getPeers()) void this.syncWith(peer)
  }

  /**
   * A beat was heard: sync with its sender when it names a head this peer lacks for an
   * app it trusts (and has not turned down), or a trust policy rotated further than ours;
   * at most once per {@link BEAT_SYNC_INTERVAL_MS} per peer.
   */
  heardBeat (from: string, beat: StatusBeat): void {
    const trusted = this.c.trustStore.policy.toJSON().apps
    const headMissing = Object.entries(beat.heads).some(([app, id]) => trusted[app] != null && !this.c.book.has(id) && !this.c.turnedDown.has(id))
    const trustBehind = Object.entries(beat.trust ?? {}).some(([app, sequence]) => trusted[app] != null && sequence > (trusted[app]?.sequence ?? 0))
    if (!headMissing && !trustBehind) return
    const now = this.c.clock.now()
    if (now - (this.lastBeatSync.get(from) ?? 0) < BEAT_SYNC_INTERVAL_MS) return
    this.lastBeatSync.set(from, now)
    if (this.lastBeatSync.size > MAX_BEAT_SYNC_PEERS) this.lastBeatSync.delete(this.lastBeatSync.keys().next().value as string)
    let peer: PeerId
    try {
      peer = peerIdFromString(from)
    } catch {
      return
    }
    void this.syncWith(peer)
  }

  /**
   * How many distinct peers answered a sync of this peer's in full, with no forged frame
   * (at most {@link MAX_ANSWERED_PEERS}): what a peer that joined with no code has heard
   * of the network before its first install (`joinPeers`).
   */
  answered (): number {
    return this.answeredBy.size
  }

  /** What this peer asks for: per trusted app, the version it runs (null: everything). */
  request (): SyncRequest {
    const request: SyncRequest = {}
    for (const app of Object.keys(this.c.trustStore.policy.toJSON().apps).slice(0, MAX_SYNC_APPS)) request[app] = this.c.nodeState.floor(app) ?? null
    return request
  }

  /** Run anti-entropy with one peer (at most one sync per peer at a time; asked again meanwhile, it runs once more after). */
  async syncWith (peer: PeerId): Promise<void> {
    const key = peer.toString()
    if (this.syncing.has(key)) {
      this.again.add(key)
      return
    }
    const request = this.request()
    if (this.stopped || Object.keys(request).length === 0) return
    this.syncing.add(key)
    try {
      const frames = await this.c.sync.sync(peer, request)
      let rejected = false
      await takeInSyncAnswer(frames, async bytes => {
        const { verdict, rotated, retry } = await this.c.admission.take(bytes, { kind: 'sync', from: key })
        rejected ||= verdict.kind === 'rejected'
        return { rejected: verdict.kind === 'rejected', rotated, trustDependent: retry }
      })
      if (!rejected && this.answeredBy.size < MAX_ANSWERED_PEERS) this.answeredBy.add(key)
      this.c.metrics.sync('ok')
    } catch (err) {
      this.c.metrics.sync('failed')
      if (!this.stopped) this.c.events.info('sync-failed', `sync with ${key} failed: ${(err as Error).message}`)
    } finally {
      this.syncing.delete(key)
    }
    if (this.again.delete(key) && !this.stopped) await this.syncWith(peer)
  }
}
