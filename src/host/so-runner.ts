/**
 * The simulation objects of a process app whose wire is HTTP, run by the daemon in a
 * worker thread of their own ({@link SimulationSupervisor}): requests of another protocol
 * version are served through the chain (`local` reaches the app), and the app's calls to
 * peers that speak another version go out through it (`remote` reaches the peer). An SO
 * that throws or runs past its time limit fails that request; one that blocks its worker
 * (a loop) is found by the supervisor's watchdog, its worker ended and started again, and
 * only its requests fail.
 *
 * @example
 * ```ts
 * const runner = new SimulationRunner({ log }, { native: 2 })
 * await runner.load([{ module: '/…/past.js', version: 1 }]) // [1, 2]
 * const response = await runner.serve(1, request, async req => await askTheApp(req))
 * ```
 */
import { SimulationError } from '../ipc/index.js'
import type { SimulationSpec } from '../ipc/index.js'
import type { FromMessageWorker, ThreadError, ToMessageWorker } from './so-messages.js'
import { SimulationSupervisor } from './so-supervisor.js'
import type { SimulationWorkerComponents, SupervisedWork } from './so-supervisor.js'
import { moduleBeside } from './so-thread-start.js'

const WORKER = moduleBeside(import.meta.url, './so-worker')
const CHAIN_URL = moduleBeside(import.meta.url, '../ipc/simulation-chain').href

/** What a runner needs: a log line, and optionally how threads start (see the supervisor). */
export type SimulationRunnerComponents = SimulationWorkerComponents

/** How a runner runs its SOs. */
export interface SimulationRunnerInit {
  /** The app's own protocol version. */
  native: number
  /** Time limit of one SO call (default 10 s). */
  timeoutMs?: number
}

/** A request in the worker's hands. */
interface PendingRequest extends SupervisedWork {
  resolve: (value: unknown) => void
  /** Where the chain's `local` (serve) or `remote` (call) requests go. */
  onward: (request: unknown) => Promise<unknown>
}

/** An error's name as it may come back from the worker: what callers branch on, and a header of the 502 an app's peer gets. */
const ERROR_NAME = /^\w{1,64}$/

/** Runs one app version's HTTP SOs in a worker. */
export class SimulationRunner {
  private readonly supervisor: SimulationSupervisor<PendingRequest>
  /** Past this, a request fails even if its worker never answers (the worker's own limit answers first). */
  private readonly requestLimitMs: number

  constructor (components: SimulationRunnerComponents, init: SimulationRunnerInit) {
    const timeoutMs = init.timeoutMs ?? 10_000
    // an SO call may run `timeoutMs` in the worker; a ping left unanswered longer than that means an SO blocks the thread
    const watchdogMs = timeoutMs + 2000
    this.requestLimitMs = timeoutMs + 2 * watchdogMs
    this.supervisor = new SimulationSupervisor(components, {
      native: init.native,
      worker: WORKER,
      modules: { chain: CHAIN_URL },
      noun: 'request',
      watchdogMs,
      callTimeoutMs: timeoutMs,
      maxOldGenerationSizeMb: 256,
      error: (message, name) => new SimulationError(message, name),
      onMessage: m => { this.receive(m) }
    })
  }

  /** The versions the app speaks through the chain (native only until SOs load). */
  get spoken (): number[] {
    return this.supervisor.spoken
  }

  /** Load the SOs (a fresh chain); resolves with the versions then spoken. */
  async load (simulations: SimulationSpec[]): Promise<number[]> {
    return await this.supervisor.load(simulations)
  }

  /** Serve a request of `version` through the chain; `local` delivers a request of the app's own version. */
  async serve (version: number, request: unknown, local: (request: unknown) => Promise<unknown>): Promise<unknown> {
    return await this.run(id => ({ t: 'serve', id, version, request }), local)
  }

  /** Send the app's request to a peer spoken to in `target`; `remote` delivers a request of `target`. */
  async call (target: number, request: unknown, remote: (request: unknown) => Promise<unknown>): Promise<unknown> {
    return await this.run(id => ({ t: 'call', id, target, request }), remote)
  }

  /** End the worker; requests in flight fail. */
  async stop (): Promise<void> {
    await this.supervisor.stop('the app version stopped')
  }

  private async run (message: (id: number) => ToMessageWorker, onward: (request: unknown) => Promise<unknown>): Promise<unknown> {
    return await new Promise((resolve, reject) => {
      const { id } = this.supervisor.open(() => ({ resolve, fail: reject, onward }), this.requestLimitMs)
      this.supervisor.post(message(id))
    })
  }

  private receive (raw: unknown): void {
    const m = raw as Partial<FromMessageWorker>
    if (typeof m.id !== 'number') return
    if (m.t === 'result') {
      const pending = this.supervisor.settle(m.id)
      if (pending == null) return
      if (m.ok === true) pending.resolve(m.value)
      else pending.fail(asError(m.error))
      return
    }
    if (m.t !== 'local' && m.t !== 'remote') return
    const pending = this.supervisor.get(m.id)
    const callback = m.callback
    if (pending == null || typeof callback !== 'number') return
    pending.onward(m.request).then(
      value => { this.back(callback, { t: 'back', callback, ok: true, value }) },
      (err: Error) => { this.back(callback, { t: 'back', callback, ok: false, error: { name: err.name, message: err.message } }) }
    )
  }

  /** Answer the worker's `local` or `remote`; an answer that cannot cross to the worker fails that step, not the daemon. */
  private back (callback: number, message: ToMessageWorker): void {
    try {
      this.supervisor.post(message)
    } catch (err) {
      this.supervisor.post({ t: 'back', callback, ok: false, error: { name: 'SimulationError', message: `the answer could not be passed to the simulation objects: ${(err as Error).message}` } } satisfies ToMessageWorker)
    }
  }
}

/** An error the worker reported, as a {@link SimulationError} of its name. */
function asError (error: Partial<ThreadError> | undefined): SimulationError {
  const name = typeof error?.name === 'string' && ERROR_NAME.test(error.name) ? error.name : 'SimulationError'
  return new SimulationError(String(error?.message ?? 'a simulation object failed').slice(0, 4000), name)
}
