/**
 * `shim/` — peers of different versions keep talking: app protocol ids, the version
 * choice, and the shim that serves every version the app speaks (through its simulation
 * objects, which run in the app's process) and routes its outgoing calls.
 *
 * @example
 * ```ts
 * const shim = new Shim({ streams, selfId, app, native, spoken, nativeOf, deliver, log })
 * await shim.update() // handle /upgossip/app/kv/1, /2, … as spoken now
 * const route = await shim.route(peerId) // { self: false, version: 2 }
 * ```
 */
export * from './chunk-queue.js'
export * from './class-calls.js'
export * from './served-protocols.js'
export * from './shim.js'
export * from './so-check.js'
export * from './stream-chain.js'
export * from './versions.js'
