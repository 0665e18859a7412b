/**
 * `ipc/` — the IPC protocol between the daemon and an app's child process: the messages
 * each side sends, the protocol version both check, and the shapes they share (the route
 * of a call, a simulation object to load). It imports nothing of upgossip: the host, the
 * shim and the SDK (which depends on nothing else) all speak it.
 *
 * @example
 * ```ts
 * import { IPC_PROTOCOL_VERSION, isAppMessage } from '../ipc/index.js'
 * import type { HostMessage } from '../ipc/index.js'
 * const init: HostMessage = { t: 'init', v: IPC_PROTOCOL_VERSION, app: 'kv', version: '1.0.0', protocol: 1, stateDir, config: null, peerId, simulations: [] }
 * child.on('message', (m: unknown) => { if (isAppMessage(m) && m.t === 'ready') … })
 * ```
 */
export * from './protocol.js'
export * from './message-batch.js'
export * from './simulation-chain.js'
