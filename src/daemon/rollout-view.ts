/**
 * The rollout as one peer sees it (`upgossip rollout status`, `GET /rollout`, the
 * dashboard's peer table): every peer in view, this one included, with its version, state,
 * the rule it waits on, how much of the target release it holds and what failed on it,
 * and how many peers of the app run each version. A pure projection of `GET /status`.
 *
 * @example
 * ```ts
 * const view = rolloutView(daemon.status(), { app: 'kv', version: '2.0.0' })
 * console.log(view.counts) // { '2.0.0': 1, '1.0.0': 2 }
 * ```
 */
import semver from 'semver'
import type { DaemonStatus, ReleaseStatus } from './api.js'
import { NO_VERSION, countVersions } from './version-timeline.js'

/** Release states that never become a rollout's target: it cannot (or will not) roll out any more. */
const NOT_A_TARGET = new Set(['revoked', 'refused', 'failed'])

/** One peer of the rollout. */
export interface RolloutPeer {
  peerId: string
  app: string | null
  version: string | null
  state: string
  /** Present (true) on this peer's own row. */
  self?: true
  /** The schedule rule it waits on (`approve`, `hold`, `rolling`, …). */
  waitingOn?: string
  /** Why, in words. */
  reason?: string
  /** The version it waits to switch to (may differ from the target). */
  waitingFor?: string
  /** The version it is switching to now. */
  upgradingTo?: string
  /** Bytes of the target release it holds (a peer of the target's app whose beats say). */
  have?: number
  /** The target release's size. */
  size?: number
  /** Versions (or release ids, when this peer does not know them) that failed on it. */
  failed?: string[]
  labels: Record<string, string>
  /** Its daemon's upgossip build, `0.1.0 (1a2b3c4)` (absent for a peer whose beats do not carry it). */
  build?: string
  /** When its last beat was heard (absent on this peer's own row). */
  seen?: string
  connected?: boolean
}

/** `upgossip rollout status --json` and `GET /rollout`. */
export interface RolloutView {
  app: string | null
  /** The version the rollout goes to: the one asked for, or the newest this peer knows that may still roll out. */
  target: string | null
  /** The target's release id, when this peer knows the release. */
  targetId: string | null
  /** Every peer of `app`, this one included, counted by the version it runs, newest first. */
  counts: Record<string, number>
  peers: RolloutPeer[]
}

/** Which rollout to show: the app (default: this peer's) and the target version (default: the newest known). */
export interface RolloutQuery {
  app?: string
  version?: string
  /** Only the peers of `app` (the CLI's `APP` argument); otherwise every peer in view. */
  only?: boolean
}

/** Newest first; versions that are not semver after those that are, `none` last. */
export function compareVersionsDesc (a: string, b: string): number {
  if (a === b) return 0
  if (a === NO_VERSION) return 1
  if (b === NO_VERSION) return -1
  const va = semver.valid(a)
  const vb = semver.valid(b)
  if (va != null && vb != null) return semver.rcompare(va, vb)
  if (va != null) return -1
  if (vb != null) return 1
  return a.localeCompare(b)
}

/** The release a rollout of `app` goes to: the one named by `version`, or the newest that may still roll out. */
export function chooseTarget (releases: ReleaseStatus[], app: string | null, version?: string): { version: string, release?: ReleaseStatus } | null {
  if (app == null) return null
  const mine = releases.filter(r => r.app === app)
  if (version != null) {
    const release = mine.find(r => r.version === version)
    return release == null ? { version } : { version, release }
  }
  const candidates = mine.filter(r => !NOT_A_TARGET.has(r.state)).sort((a, b) => compareVersionsDesc(a.version, b.version))
  const newest = candidates[0]
  return newest == null ? null : { version: newest.version, release: newest }
}

/** How many peers run each version, newest first (`none` for a peer with no version yet). */
export function versionCountsDesc (peers: Array<{ version: string | null }>): Record<string, number> {
  return Object.fromEntries(Object.entries(countVersions(peers)).sort((a, b) => compareVersionsDesc(a[0], b[0])))
}

/** The rollout of `query.app` (default: this peer's app) as the peer whose status this is sees it. */
export function rolloutView (status: DaemonStatus, query: RolloutQuery = {}): RolloutView {
  const app = query.app ?? status.app
  const target = chooseTarget(status.releases, app, query.version)
  const byId = new Map(status.releases.map(r => [r.id, r]))
  const name = (id: string): string => byId.get(id)?.version ?? id
  const targetRelease = target?.release

  // this peer, from its own releases: the newest one of its app that waits says why
  const mine = status.releases.filter(r => r.app === status.app)
  // a staged release passed over (older, newer, outside its range) is not something this peer waits on
  const waiting = mine.filter(r => r.state === 'waiting' && r.waitingOn != null).sort((a, b) => compareVersionsDesc(a.version, b.version))[0]
  const self: RolloutPeer = { peerId: status.peerId, app: status.app, version: status.version, state: status.state, self: true, labels: status.labels, build: status.build }
  if (waiting?.waitingOn != null) {
    self.waitingOn = waiting.waitingOn
    if (waiting.reason != null) self.reason = waiting.reason
    self.waitingFor = waiting.version
  }
  const upgrading = mine.find(r => r.state === 'upgrading')
  if (upgrading != null) self.upgradingTo = upgrading.version
  if (status.app === targetRelease?.app && targetRelease != null) {
    self.have = targetRelease.have
    self.size = targetRelease.size
  }
  const failedHere = mine.filter(r => r.state === 'failed').map(r => r.version)
  if (failedHere.length > 0) self.failed = failedHere

  const others = status.network.map(p => {
    const peer: RolloutPeer = { peerId: p.peerId, app: p.app, version: p.version, state: p.state, labels: p.labels, seen: p.seen, connected: p.connected }
    if (p.waiting != null) {
      peer.waitingOn = p.waiting.on
      if (p.waiting.reason != null) peer.reason = p.waiting.reason
      peer.waitingFor = name(p.waiting.id)
    }
    if (p.upgrading != null) peer.upgradingTo = name(p.upgrading)
    // progress on the target: only where its beats list what it holds (an older peer's do not)
    if (p.app === targetRelease?.app && targetRelease != null && p.held != null) {
      peer.have = Math.min(targetRelease.size, p.held.find(h => h.id === targetRelease.id)?.have ?? 0)
      peer.size = targetRelease.size
    }
    if (p.failed != null && p.failed.length > 0) peer.failed = p.failed.map(name)
    if (p.build != null) peer.build = p.build
    return peer
  })
  // the app's own peers first, then other apps' one app after another
  const rank = (p: RolloutPeer): string => `${p.app === app ? 0 : 1} ${p.app ?? ''} ${p.peerId}`
  // code-unit order, as `Array.prototype.sort` has it: peer ids are case-sensitive base58, which a locale's collation folds
  others.sort((a, b) => { const x = rank(a); const y = rank(b); return x < y ? -1 : x > y ? 1 : 0 })
  const all = [self, ...others]
  const peers = query.only === true ? all.filter(p => p.app === app) : all
  return {
    app,
    target: target?.version ?? null,
    targetId: targetRelease?.id ?? null,
    counts: versionCountsDesc(all.filter(p => p.app === app)),
    peers
  }
}
