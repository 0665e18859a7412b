/**
 * `host/` — the app as a child process: fork with advanced IPC and the `upgossip/app`
 * resolve hook, the daemon's side of the IPC protocol (`ipc/`), health (ready,
 * unhealthy, stable), restarts with backoff, request holding during a switch.
 *
 * @example
 * ```ts
 * const host = new AppHost({ peerId, config, logFile, onCall, onPeers, log })
 * const proc = host.launch({ app: 'kv', version: '1.0.0', packageDir, main: 'server.js', stateDir })
 * await proc.waitReady(30_000)
 * host.supervise()
 * await host.request('12D3…', { op: 'get', key: 'a' })
 * ```
 */
export * from './app-host.js'
export * from './app-process.js'
// the IPC protocol lives in ipc/ (the SDK speaks it too); re-exported for the daemon
export * from '../ipc/index.js'
export * from './app-proxy.js'
export * from './app-run.js'
export * from './http-message.js'
export * from './process-app.js'
export * from './process-group.js'
export * from './process-identity.js'
export * from './connection-activity.js'
export * from './socket-reader.js'
export * from './socket-stream.js'
export * from './socket-writer.js'
export * from './stream-so-runner.js'
export * from './tcp-app.js'
