/**
 * `daemon/` — the long-running peer: small parts (admission, trust updates, anti-entropy,
 * staging, publishing, beats, rollout, operator commands, status) created, started and
 * stopped in one place, behind a facade that serves the control API, metrics and the dashboard.
 *
 * @example
 * ```ts
 * const daemon = await Daemon.start(resolveDaemonOptions({ data: './peer-a', trust: 'trust.json', install: 'kv-v1.car' }))
 * console.log(daemon.status().releases)
 * await daemon.stop()
 * ```
 */
export type * from './api.js'
export * from './control-api.js'
export * from './daemon.js'
export * from './errors.js'
export * from './event-log.js'
export * from './freshness.js'
export * from './health.js'
export * from './memory-settle.js'
export * from './metrics.js'
export * from './metrics-listener.js'
export * from './node-state.js'
export * from './options.js'
export * from './rollout-view.js'
export * from './version-timeline.js'
