/**
 * The IPC protocol between the daemon and an app's child process (`fork`, advanced
 * serialization). Both sides check the protocol version: the host speaks it from the
 * daemon's side, the SDK from the app's, and the shim answers routes in its terms.
 */

/** The IPC protocol version spoken by this daemon and SDK. */
export const IPC_PROTOCOL_VERSION = 3

/**
 * The error name of a `call` whose version is no longer the route to its peer (a switch
 * happened since the app learnt it): the app asks for the route again and makes the call anew.
 */
export const ROUTE_CHANGED = 'RouteChangedError'

/** A serialisable error. */
export interface IpcError {
  name: string
  message: string
}

/** A simulation object for the app to load: its module and the version it lets the app speak. */
export interface SimulationSpec {
  module: string
  version: number
}

/** An answer to a numbered question. */
export type IpcResult = { id: number, ok: true, value: unknown } | { id: number, ok: false, error: IpcError }

/** Messages from the daemon to the app. */
export type HostMessage =
  /** Messages queued in one turn of the daemon's event loop ({@link MessageBatch}). */
  | { t: 'batch', messages: HostMessage[] }
  | { t: 'init', v: number, app: string, version: string, protocol: number, stateDir: string, config: unknown, peerId: string, simulations: SimulationSpec[] }
  /** A request of protocol `version` (the app's own when absent). */
  | { t: 'request', id: number, from: string, request: unknown, version?: number }
  | { t: 'simulations', simulations: SimulationSpec[] }
  /** Where a call to `peer` goes: this peer itself, or a peer spoken to in `version`. */
  | ({ t: 'route-result' } & IpcResult)
  | ({ t: 'send-result' } & IpcResult)
  | { t: 'peers-result', id: number, peers: string[] }
  /** `upgossip call`: make the app send this request exactly as its own `node.call`. */
  | { t: 'call-out', id: number, peer: string | null, request: unknown }
  | { t: 'shutdown' }

/** Messages from the app to the daemon. */
export type AppMessage =
  /** Messages queued in one turn of the app's event loop ({@link MessageBatch}). */
  | { t: 'batch', messages: AppMessage[] }
  | { t: 'hello', v: number }
  | { t: 'serving' }
  | { t: 'ready' }
  | { t: 'unhealthy', reason: string }
  | ({ t: 'response' } & IpcResult)
  /** The simulation objects are loaded: the versions the app now speaks. */
  | { t: 'simulations-loaded', spoken: number[], errors: string[] }
  /** `app`: a peer of another class (the release's `calls` names the version). */
  | { t: 'route', id: number, peer: string | null, app?: string }
  | { t: 'send', id: number, peer: string, version: number, request: unknown, app?: string }
  /**
   * A `send` in `version` only if that is still the route of a call to `peer` (for `app`,
   * another class: the version `calls` names); else the answer is a {@link ROUTE_CHANGED}
   * error. One round trip instead of a `route` and a `send`: the app keeps the routes it learnt.
   */
  | { t: 'call', id: number, peer: string, version: number, request: unknown, app?: string }
  | { t: 'peers', id: number, app?: string }
  | ({ t: 'call-out-result' } & IpcResult)
  | { t: 'shutdown-done' }

/** The route of a call, as the daemon answers it. */
export type Route = { self: true } | { self: false, version: number, app?: string }

/** True when `value` looks like an {@link AppMessage} (the host checks every field it uses). */
export function isAppMessage (value: unknown): value is AppMessage {
  return value != null && typeof value === 'object' && typeof (value as { t?: unknown }).t === 'string'
}
