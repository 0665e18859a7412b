/**
 * What a schedule decision looks at: this peer, the release, the network view from
 * status beats, local operator controls, and the time — all passed in, so every rule
 * is a pure function testable with a fake clock.
 */

/** One peer as the schedule sees it (from its status beats; this peer included). */
export interface SchedulePeer {
  peerId: string
  version: string | null
  state: string
  labels: Record<string, string>
  /** When the peer started running its current version (ms), if known. */
  since?: number
  /** The release the peer is switching to now, if any. */
  upgrading?: string | null
  /** The release this peer has claimed a start slot for, if any. */
  claim?: string | null
  /** Releases this peer reports as failed. */
  failed?: string[]
  /** The app (class of node) the peer runs, when known. */
  app?: string | null
}

/** Everything one decision needs. */
export interface ScheduleContext {
  now: number
  self: SchedulePeer
  /** Other peers of this release's app in view (this peer excluded; a simulation may include it: rules count it once). */
  peers: SchedulePeer[]
  /** Peers of other apps in view, each with its `app`: what `after` with an `app` counts. */
  network?: SchedulePeer[]
  release: { id: string, version: string }
  /** When this peer staged the release (ms): jitter counts from here. */
  stagedAt: number
  approved: boolean
  /** How long the app has had at most `n` requests in flight, in ms (0 when it has more now). */
  idleFor: (maxInFlight: number) => number
}

/** Every known peer, this one included, for counts and ranks. */
export function knownPeers (ctx: ScheduleContext): SchedulePeer[] {
  return [ctx.self, ...ctx.peers.filter(p => p.peerId !== ctx.self.peerId)]
}
