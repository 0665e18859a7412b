/**
 * Whether this daemon and its app are healthy, as `GET /healthz` of the `--metrics`
 * listener answers: a pure function of the daemon's phase and its parts' state, so a
 * probe (a load balancer, Kubernetes, a monitor) reads the same verdict the daemon acts on.
 *
 * @example
 * ```ts
 * const report = daemonHealth({ phase: 'running', peerId, nodeState, host, peerState: () => status.peerState() })
 * if (report.status !== 'ok') console.log(report.reason)
 * ```
 */
import type { AppHost } from '../host/index.js'
import type { PeerState } from './api.js'
import type { NodeStateStore } from './node-state.js'

/** Where the daemon is in its life: its parts not yet started, running, or stopping. */
export type DaemonPhase = 'starting' | 'running' | 'stopping'

/** What `GET /healthz` answers: `ok` (HTTP 200) or `unavailable` (HTTP 503) with the reason. */
export interface HealthReport {
  status: 'ok' | 'unavailable'
  /** Why it is unavailable (absent when ok). */
  reason?: string
  peerId: string
  app: string | null
  version: string | null
  /** The peer's state, or the daemon's phase while it starts or stops. */
  state: PeerState | 'starting' | 'stopping'
  /** This daemon's upgossip build, `0.1.0 (1a2b3c4)`. */
  build?: string
}

/** What the verdict reads. */
export interface HealthComponents {
  phase: DaemonPhase
  peerId: string
  nodeState: Pick<NodeStateStore, 'state'>
  /** The app host; absent while the daemon's parts are not created yet. */
  host?: Pick<AppHost, 'current' | 'failedReason'>
  /** The peer state as `GET /status` reports it. */
  peerState?: () => PeerState
  build?: string
}

/**
 * The verdict. Unavailable while the daemon starts or stops, when no version can run, when
 * no app is installed yet (a peer that joined with `--app` and has not found a release),
 * and when the app is not running (it exited and the daemon restarts it), not ready yet,
 * or unhealthy (it said so, or its health checks fail). During a switch it is `ok`:
 * requests are held and delivered to the version that runs next, not refused.
 */
export function daemonHealth (c: HealthComponents): HealthReport {
  const { app, current } = c.nodeState.state
  const version = current?.version ?? null
  const build = c.build == null ? {} : { build: c.build }
  const base = { peerId: c.peerId, app, version }
  const unavailable = (state: HealthReport['state'], reason: string): HealthReport => ({ status: 'unavailable', reason, ...base, state, ...build })
  if (c.phase !== 'running' || c.host == null || c.peerState == null) {
    return unavailable(c.phase === 'stopping' ? 'stopping' : 'starting', c.phase === 'stopping' ? 'the daemon is stopping' : 'the daemon is starting')
  }
  const state = c.peerState()
  if (state === 'failed') return unavailable(state, `no version can run: ${c.host.failedReason ?? 'see the event log'}`)
  if (state === 'upgrading' || state === 'rolling-back') return { status: 'ok', ...base, state, ...build }
  if (current == null) return unavailable(state, app == null ? 'no app installed yet' : `no version of ${app} installed yet (waiting for a release from the network)`)
  const proc = c.host.current
  const label = `${app ?? '?'}@${current.version}`
  if (proc?.running !== true) return unavailable(state, `${label} is not running (it exited; the daemon restarts it)`)
  if (!proc.ready) return unavailable(state, `${label} is not ready yet`)
  if (proc.unhealthyReason != null) return unavailable(state, `${label} is unhealthy: ${proc.unhealthyReason}`)
  return { status: 'ok', ...base, state, ...build }
}
