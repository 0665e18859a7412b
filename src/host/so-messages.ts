/**
 * The messages between the daemon's thread and a simulation-object worker: those of the
 * supervision every worker speaks ({@link SimulationSupervisor}: start, pings, loading),
 * and those of each kind of SO — messages of an HTTP app (`so-runner.ts`), byte streams
 * of a TCP app (`stream-so-runner.ts`).
 */
import type { SimulationSpec } from '../ipc/index.js'

/** An error as it crosses the thread boundary. */
export interface ThreadError {
  name: string
  message: string
}

/** What every SO worker is started with: where its modules are, and its kind's settings. */
export interface SimulationWorkerData<Settings = unknown, Modules extends string = string> {
  /**
   * URLs of the modules the worker imports (`thread`: the supervision loop of
   * `so-thread.ts`, and the kind's chain, …): a worker run from the sources (tests) cannot
   * follow a `.js` import to its `.ts` file, so it is told where each one is.
   */
  modules: Record<Modules | 'thread', string>
  settings: Settings
}

/** Supervision, from the daemon's thread to the worker. */
export type SupervisorMessage =
  | { t: 'ping', n: number }
  /** Replace the chain; `timeoutMs` is the time limit of one SO call where the kind has one; `n` comes back with the answer. */
  | { t: 'load', n: number, native: number, timeoutMs: number, specs: SimulationSpec[] }

/** Supervision, from the worker to the daemon's thread. */
export type ThreadMessage =
  /** Started: it answers pings from now on. */
  | { t: 'up' }
  | { t: 'pong', n: number }
  | { t: 'loaded', n: number, spoken: number[], errors: string[] }

/** HTTP messages (`so-runner.ts`), to the worker. */
export type ToMessageWorker =
  | { t: 'serve', id: number, version: number, request: unknown }
  | { t: 'call', id: number, target: number, request: unknown }
  | { t: 'back', callback: number, ok: boolean, value?: unknown, error?: ThreadError }

/** HTTP messages (`so-runner.ts`), from the worker. */
export type FromMessageWorker =
  | { t: 'result', id: number, ok: boolean, value?: unknown, error?: ThreadError }
  | { t: 'local' | 'remote', id: number, callback: number, request: unknown }

/** The two directions of a connection: `in` towards the app, `out` away from it. */
export type Direction = 'in' | 'out'

/** What a stream worker is set up with. */
export interface StreamWorkerSettings {
  /** Bytes per direction of a connection that may wait on the other side. */
  window: number
  /** The largest piece bytes are cut into. */
  maxChunk: number
}

/** Byte streams (`stream-so-runner.ts`), to the worker. */
export type ToStreamWorker =
  | { t: 'open', id: number, kind: 'serve' | 'call', version: number, peer: string }
  | { t: 'data', id: number, dir: Direction, chunk: Uint8Array }
  | { t: 'end', id: number, dir: Direction }
  | { t: 'credit', id: number, dir: Direction, bytes: number }
  | { t: 'close', id: number }

/** Byte streams (`stream-so-runner.ts`), from the worker. */
export type FromStreamWorker =
  | { t: 'data', id: number, dir: Direction, chunk: Uint8Array }
  | { t: 'end', id: number, dir: Direction }
  | { t: 'consumed', id: number, dir: Direction, bytes: number }
  | { t: 'failed', id: number, name: string, message: string }
