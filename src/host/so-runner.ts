/**
 * The simulation objects of a process app, run by the daemon in a worker thread of their
 * own ({@link SimulationRunner}): requests of another protocol version are served through
 * the chain (`local` reaches the app), and the app's calls to peers that speak another
 * version go out through it (`remote` reaches the peer). An SO that throws or runs past its
 * time limit fails that request; one that blocks its worker (a loop) is found by a
 * heartbeat, its worker ended and started again, and only its requests fail.
 */
import { Worker } from 'node:worker_threads'
import { SimulationError } from '../ipc/index.js'
import type { SimulationSpec } from '../ipc/index.js'
import type { RunnerMessage, WorkerMessage } from './so-messages.js'

const WORKER = new URL('./so-worker.js', import.meta.url)

/** How often a busy worker is asked whether it still runs. */
const HEARTBEAT_MS = 1000

/** What a runner needs. */
export interface SimulationRunnerInit {
  /** The app's own protocol version. */
  native: number
  /** Time limit of one SO call (default 10 s). */
  timeoutMs?: number
  log: (message: string) => void
}

interface Pending {
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  /** Where the chain's `local` (serve) or `remote` (call) requests go. */
  onward: (request: unknown) => Promise<unknown>
}

/** Runs one app version's SOs in a worker. */
export class SimulationRunner {
  private readonly init: SimulationRunnerInit
  private worker: Worker | undefined
  private simulations: SimulationSpec[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private loaded: ((spoken: number[]) => void) | undefined
  private heartbeat: NodeJS.Timeout | undefined
  private lastSign = 0
  /** The versions the app speaks through the chain (native only until SOs load). */
  spoken: number[]

  constructor (init: SimulationRunnerInit) {
    this.init = init
    this.spoken = [init.native]
  }

  private get timeoutMs (): number {
    return this.init.timeoutMs ?? 10_000
  }

  /** Load the SOs (a fresh chain); resolves with the versions then spoken. */
  async load (simulations: SimulationSpec[]): Promise<number[]> {
    this.simulations = simulations
    if (simulations.length === 0) {
      this.end('no simulation objects are loaded any more')
      this.spoken = [this.init.native]
      return this.spoken
    }
    const worker = this.ensure()
    const spoken = await new Promise<number[]>(resolve => {
      const timer = setTimeout(() => { resolve(this.spoken) }, this.timeoutMs)
      this.loaded = s => { clearTimeout(timer); resolve(s) }
      this.send(worker, { t: 'load', native: this.init.native, timeoutMs: this.timeoutMs, simulations })
    })
    this.spoken = spoken
    return spoken
  }

  /** Serve a request of `version` through the chain; `local` delivers a request of the app's own version. */
  async serve (version: number, request: unknown, local: (request: unknown) => Promise<unknown>): Promise<unknown> {
    return await this.run({ t: 'serve', id: 0, version, request }, local)
  }

  /** Send the app's request to a peer spoken to in `target`; `remote` delivers a request of `target`. */
  async call (target: number, request: unknown, remote: (request: unknown) => Promise<unknown>): Promise<unknown> {
    return await this.run({ t: 'call', id: 0, target, request }, remote)
  }

  /** End the worker; requests in flight fail. */
  async stop (): Promise<void> {
    this.end('the app version stopped')
  }

  private async run (message: Extract<RunnerMessage, { t: 'serve' | 'call' }>, onward: (request: unknown) => Promise<unknown>): Promise<unknown> {
    const worker = this.ensure()
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onward })
      this.send(worker, { ...message, id })
      this.watch()
    })
  }

  /** The worker, started (and its SOs loaded) if it is not running. */
  private ensure (): Worker {
    if (this.worker != null) return this.worker
    const worker = new Worker(WORKER, { resourceLimits: { maxOldGenerationSizeMb: 256 } })
    worker.unref()
    worker.on('message', (m: WorkerMessage) => { this.onMessage(worker, m) })
    worker.on('error', err => {
      this.init.log(`a simulation object's worker failed: ${err.message}`)
      if (this.worker === worker) this.end(`a simulation object failed: ${err.message}`)
    })
    worker.on('exit', () => { if (this.worker === worker) this.end('the simulation objects\' worker exited') })
    this.worker = worker
    this.lastSign = Date.now()
    if (this.simulations.length > 0) this.send(worker, { t: 'load', native: this.init.native, timeoutMs: this.timeoutMs, simulations: this.simulations })
    return worker
  }

  private send (worker: Worker, message: RunnerMessage): void {
    worker.postMessage(message)
  }

  private onMessage (worker: Worker, m: WorkerMessage): void {
    this.lastSign = Date.now()
    if (m.t === 'pong') return
    if (m.t === 'loaded') {
      for (const e of m.errors.slice(0, 20)) this.init.log(`simulation object not loaded: ${e}`)
      this.loaded?.(m.spoken)
      this.loaded = undefined
      return
    }
    const p = this.pending.get(m.id)
    if (p == null) return
    if (m.t === 'result') {
      this.pending.delete(m.id)
      if (m.ok) p.resolve(m.value)
      else p.reject(new SimulationError(m.error?.message ?? 'a simulation object failed', m.error?.name ?? 'SimulationError'))
      return
    }
    p.onward(m.request).then(
      value => { this.send(worker, { t: 'back', callback: m.callback, ok: true, value }) },
      (err: Error) => { this.send(worker, { t: 'back', callback: m.callback, ok: false, error: { name: err.name, message: err.message } }) }
    )
  }

  /**
   * While requests are in flight, make sure the worker still answers: an SO stuck in a
   * loop blocks its thread, which then sends nothing, not even to a ping.
   */
  private watch (): void {
    if (this.heartbeat != null) return
    this.heartbeat = setInterval(() => {
      const worker = this.worker
      if (worker == null || this.pending.size === 0) {
        clearInterval(this.heartbeat)
        this.heartbeat = undefined
        return
      }
      if (Date.now() - this.lastSign > this.timeoutMs + 2 * HEARTBEAT_MS) {
        this.init.log(`a simulation object blocked its worker for more than ${this.timeoutMs} ms; the worker is restarted`)
        this.end(`a simulation object ran past its ${this.timeoutMs} ms limit`, 'SimulationTimeoutError')
        return
      }
      // a worker answers at once, unless an SO blocks it
      this.send(worker, { t: 'ping' })
    }, HEARTBEAT_MS)
    this.heartbeat.unref()
  }

  /** End the worker and fail what it had in hand. */
  private end (reason: string, code = 'SimulationError'): void {
    const worker = this.worker
    this.worker = undefined
    clearInterval(this.heartbeat)
    this.heartbeat = undefined
    void worker?.terminate()
    for (const [id, p] of this.pending) {
      this.pending.delete(id)
      p.reject(new SimulationError(reason, code))
    }
  }
}
