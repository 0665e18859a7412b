/**
 * What a running daemon offers its control API and the CLI: {@link DaemonApi}, and the
 * shapes of its answers (`GET /status`, publish, rotate). The control API and the
 * commands depend on this interface, never on the daemon's class, so a test hands them
 * a stub.
 *
 * @example
 * ```ts
 * const api: DaemonApi = await Daemon.start(options)
 * console.log(api.status().releases)
 * ```
 */
import type { ReleaseEntry, ReleaseState, AppPolicy } from '../release/index.js'
import type { FreshnessStatus } from './freshness.js'
import type { TimelineJson, TimelineSample } from './version-timeline.js'
import type { ScheduleRule } from '../package/index.js'

/** Peer states (docs/operator.md, "Peer and release states"). */
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
  /** The newest rollout pause or resume record held for it, if any. */
  pause?: ReleasePauseStatus
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
  /** Its daemon's upgossip build, `0.1.0 (1a2b3c4)` (absent from daemons that do not send it). */
  build?: string
}

/** `GET /status` and `upgossip status --json`. */
export interface DaemonStatus {
  peerId: string
  app: string | null
  version: string | null
  state: PeerState
  labels: Record<string, string>
  /** This daemon's upgossip build: `0.1.0 (1a2b3c4)`, the version and the git commit it was built from. */
  build: string
  networkName: string
  multiaddrs: string[]
  connections: number
  /** The running process app's pid and the port it listens on (process apps only). */
  process?: { pid: number, port: number }
  /** Freeze detection: when this peer last heard the network. */
  freshness: FreshnessStatus
  /** The operator's local schedule rules (`--policy`), applied to every release here; absent without one. */
  policy?: ScheduleRule[]
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

/** What `rollout pause` / `rollout resume` (`POST /pause`) did. */
export interface PauseResult {
  status: 'paused' | 'resumed' | 'known'
  /** The pause record's id. */
  id: string
  app: string
  release: string
  action: 'pause' | 'resume'
  sequence: number
  /** The trusted keys whose signatures verified. */
  signers: string[]
}

/** The pause or resume record held for a release, in `GET /status`. */
export interface ReleasePauseStatus {
  action: 'pause' | 'resume'
  sequence: number
  /** The publishers who signed it. */
  signers: string[]
  issued: string
  reason: string
}

/** What `revoke` (`POST /revoke`) did. */
export interface RevokeResult {
  status: 'revoked' | 'known'
  release: string
}

/** What `publish` did. */
export interface PublishResult {
  status: 'published' | 'known' | 'merged'
  id: string
  app: string
  version: string
}

/** What `rollback` did. */
export interface RollbackResult {
  from: string
  to: string
}

/** A backup's hold on switching (`POST /backup/begin`, `/backup/renew`): its lease, and when it expires unless renewed. */
export interface BackupLeaseResult {
  lease: string
  expires: string
  /** How long `begin` waited for a switch in progress to end, in ms. */
  waitedMs: number
  peerId: string
  app: string | null
  version: string | null
}

/** Events a daemon emits to its listeners (the dashboard's server-sent events). */
export interface DaemonEvents {
  /** The status changed (coalesced: at most one per 200 ms). */
  status: []
  /** The version counts of the network changed. */
  timeline: [TimelineSample]
}

/** A daemon that runs in this process: its API, and how to stop it. */
export interface RunningDaemon extends DaemonApi {
  /** Stop everything and release the data directory. */
  stop: () => Promise<void>
}

/** A running daemon, as the control API and the CLI see it. */
export interface DaemonApi {
  /** This peer's id. */
  readonly peerId: string
  /** This peer and the network as it sees it. */
  status: () => DaemonStatus
  /** The versions of this app's peers over time. */
  timeline: () => TimelineJson
  /** The Prometheus text exposition. */
  metricsText: () => Promise<string>
  /** Import a release bundle's blocks, admit its release and gossip it. */
  publish: (bundle: Uint8Array) => Promise<PublishResult>
  /** Apply a signed revocation (dag-cbor) and gossip it. */
  revoke: (revocation: Uint8Array) => Promise<RevokeResult>
  /** Apply a signed rollout pause or resume record (dag-cbor) and gossip it. */
  pause: (record: Uint8Array) => Promise<PauseResult>
  /** Adopt a signed trust rotation (dag-cbor) and gossip it. */
  rotate: (rotation: Uint8Array) => Promise<RotateResult>
  /** One request to the app on `peer` (null: this peer), as the app's own `node.call`. */
  call: (peer: string | null, request: unknown, protocol?: number) => Promise<unknown>
  /** Let a release that waits for approval go (durable). */
  approve: (ref: string) => Promise<ReleaseEntry>
  /** Keep a release from starting here until resumed (durable). */
  hold: (ref: string) => Promise<ReleaseEntry>
  /** Undo a hold. */
  resume: (ref: string) => Promise<ReleaseEntry>
  /** Go back to the previous version on this peer. */
  rollback: () => Promise<RollbackResult>
  /** This peer's upgrades, rollbacks and failures, oldest first. */
  history: () => Promise<Array<Record<string, unknown>>>
  /** Hold switching for a backup: waits for a switch in progress to end; `BackupInProgressError` while another backup holds it. */
  backupBegin: () => Promise<BackupLeaseResult>
  /** Extend a backup's lease; `BackupLeaseError` when it is not the one held (it expired). */
  backupRenew: (lease: string) => BackupLeaseResult
  /** The backup is done: switching goes on. */
  backupEnd: (lease: string) => { ended: true, pausedMs: number }
  /** Count an input the control API refused, by its error's name. */
  refused: (error: string) => void
  /** Report a failure of the control API itself. */
  failed: (message: string) => void
  /** Listen to status changes and timeline samples. */
  on: <K extends keyof DaemonEvents>(event: K, listener: (...args: DaemonEvents[K]) => void) => unknown
  /** Stop listening. */
  off: <K extends keyof DaemonEvents>(event: K, listener: (...args: DaemonEvents[K]) => void) => unknown
}
