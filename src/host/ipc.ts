/**
 * The IPC protocol between the daemon and an app's child process (`fork`, advanced
 * serialization). Both sides check the protocol version; the SDK imports only this file
 * of the host.
 */

/** The IPC protocol version spoken by this daemon and SDK. */
export const IPC_PROTOCOL_VERSION = 1

/** A serialisable error. */
export interface IpcError {
  name: string
  message: string
}

/** Messages from the daemon to the app. */
export type HostMessage =
  | { t: 'init', v: number, app: string, version: string, stateDir: string, config: unknown, peerId: string }
  | { t: 'request', id: number, from: string, request: unknown }
  | { t: 'call-result', id: number, ok: true, value: unknown }
  | { t: 'call-result', id: number, ok: false, error: IpcError }
  | { t: 'peers-result', id: number, peers: string[] }
  | { t: 'shutdown' }

/** Messages from the app to the daemon. */
export type AppMessage =
  | { t: 'hello', v: number }
  | { t: 'serving' }
  | { t: 'ready' }
  | { t: 'unhealthy', reason: string }
  | { t: 'response', id: number, ok: true, value: unknown }
  | { t: 'response', id: number, ok: false, error: IpcError }
  | { t: 'call', id: number, peer: string | null, request: unknown }
  | { t: 'peers', id: number }
  | { t: 'shutdown-done' }

/** True when `value` looks like an {@link AppMessage} (the host checks every field it uses). */
export function isAppMessage (value: unknown): value is AppMessage {
  return value != null && typeof value === 'object' && typeof (value as { t?: unknown }).t === 'string'
}
