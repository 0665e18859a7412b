/**
 * The messages between the daemon's thread and a simulation-object worker.
 */
import type { SimulationSpec } from '../ipc/index.js'

/** An error as it crosses the thread boundary. */
export interface ThreadError {
  name: string
  message: string
}

/** From the daemon's thread to the worker. */
export type RunnerMessage =
  | { t: 'load', native: number, timeoutMs: number, simulations: SimulationSpec[] }
  | { t: 'serve', id: number, version: number, request: unknown }
  | { t: 'call', id: number, target: number, request: unknown }
  | { t: 'back', callback: number, ok: boolean, value?: unknown, error?: ThreadError }
  | { t: 'ping' }

/** From the worker to the daemon's thread. */
export type WorkerMessage =
  | { t: 'loaded', spoken: number[], errors: string[] }
  | { t: 'pong' }
  | { t: 'result', id: number, ok: boolean, value?: unknown, error?: ThreadError }
  | { t: 'local' | 'remote', id: number, callback: number, request: unknown }
