/**
 * `daemon/` — the long-running peer: wires store, releases, network and (later) the
 * app host and upgrade engine; serves the control API, metrics and the dashboard.
 *
 * @example
 * ```ts
 * const daemon = await Daemon.start(resolveDaemonOptions({ data: './peer-a', trust: 'trust.json', install: 'kv-v1.car' }))
 * console.log(daemon.status().releases)
 * await daemon.stop()
 * ```
 */
export * from './control-api.js'
export * from './daemon.js'
export * from './event-log.js'
export * from './freshness.js'
export * from './memory-settle.js'
export * from './metrics.js'
export * from './node-state.js'
export * from './options.js'
export * from './version-timeline.js'
