/** The network view, as the schedule sees it: peers from their status beats. */
import type { ViewEntry } from '../net/index.js'
import type { SchedulePeer } from '../schedule/index.js'

/** The peers in view as the schedule sees them: those of `app`, or (`others`) of every other app. */
export function schedulePeers (view: ViewEntry[], app: string | null, others = false): SchedulePeer[] {
  // peers of other apps on the same network take no part in this app's rollout, but `after` with an `app` counts them
  return view.filter(e => (e.beat.app === app) !== others).map(e => ({
    peerId: e.peerId,
    app: e.beat.app,
    version: e.beat.version,
    state: e.beat.state,
    labels: e.beat.labels,
    since: e.beat.since ?? undefined,
    upgrading: e.beat.upgrading ?? null,
    claim: e.beat.claim ?? null,
    failed: e.beat.failed ?? []
  }))
}
