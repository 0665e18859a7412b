/**
 * How a simulation-object worker thread is started: the seam between
 * {@link SimulationSupervisor} and `node:worker_threads`, so that tests can hand the
 * supervisor a stub thread, and the one place that knows where a worker's files are.
 *
 * @example
 * ```ts
 * const thread = startWorkerThread({ file: moduleBeside(import.meta.url, './so-worker'), workerData, maxOldGenerationSizeMb: 256 }, { message, error, exit, output })
 * thread.post({ t: 'ping', n: 1 })
 * await thread.terminate()
 * ```
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { SimulationWorkerData } from './so-messages.js'

/** What a worker thread is started with. */
export interface ThreadStart {
  /** Its entry file. */
  file: URL
  workerData: SimulationWorkerData
  /** Its heap: past it the thread is terminated (an `error`). */
  maxOldGenerationSizeMb: number
}

/** What a worker thread tells its supervisor. */
export interface ThreadEvents {
  message: (message: unknown) => void
  /** An uncaught error in the thread, or its heap exhausted. */
  error: (err: Error) => void
  exit: (code: number) => void
  /** A piece of what the thread wrote on stdout or stderr (an SO's `console.log`). */
  output: (text: string) => void
}

/** A started worker thread, as its supervisor uses it. */
export interface SimulationThread {
  /** Post a message (`transfer`: buffers handed over, not copied). */
  post: (message: unknown, transfer?: ArrayBuffer[]) => void
  terminate: () => Promise<void>
}

/** Starts a worker thread. */
export type StartThread = (start: ThreadStart, events: ThreadEvents) => SimulationThread

/** A real worker thread. */
export const startWorkerThread: StartThread = (start, events) => {
  // its output is captured for the app's log: an SO's console.log must not reach the daemon's stdout (`--json` output)
  const worker = new Worker(start.file, { workerData: start.workerData, resourceLimits: { maxOldGenerationSizeMb: start.maxOldGenerationSizeMb }, stdout: true, stderr: true })
  // the process does not wait for it: the daemon's (or the CLI's) own work decides when it ends
  worker.unref()
  worker.on('message', events.message)
  worker.on('error', events.error)
  worker.on('exit', events.exit)
  for (const out of [worker.stdout, worker.stderr]) out.on('data', (d: Buffer) => { events.output(String(d)) })
  return {
    post: (message, transfer = []) => { worker.postMessage(message, transfer) },
    terminate: async () => { await worker.terminate() }
  }
}

/**
 * The module `name` (no extension) beside the module at `base`: compiled, the `.js` file;
 * run from the sources (tests), the `.ts` one, which Node runs by stripping its types.
 */
export function moduleBeside (base: string, name: string): URL {
  const js = new URL(`${name}.js`, base)
  const ts = new URL(`${name}.ts`, base)
  return existsSync(fileURLToPath(js)) || !existsSync(fileURLToPath(ts)) ? js : ts
}
