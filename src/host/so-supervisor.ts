/**
 * The one mechanism that runs a process app's simulation objects on the daemon's side,
 * whatever their kind (HTTP messages: `so-runner.ts`; TCP streams: `stream-so-runner.ts`):
 * a worker thread of their own, so that an SO that loops, leaks or crashes fails its own
 * work without stalling the daemon.
 *
 * - The worker is started when there is work (or SOs to load), with a heap limit, and
 *   loads the SOs loaded before; what it writes goes to the app's log.
 * - While it has work in hand a watchdog pings it. A worker answers at once unless an SO
 *   blocks its thread (a loop), so one that leaves a ping unanswered for `watchdogMs` is
 *   terminated. So is one that crashes, exits or runs out of heap. Its work fails with a
 *   named error (`SimulationTimeoutError` for a hang, `SimulationError` otherwise), and
 *   the next piece of work starts a fresh worker.
 * - A piece of work may have a time limit of its own: past it, that piece alone fails
 *   with `SimulationTimeoutError` (the worker, which still answers, is kept).
 *
 * The worker's half is `so-thread.ts`; each kind's messages are its own (`so-messages.ts`).
 *
 * @example
 * ```ts
 * const supervisor = new SimulationSupervisor<Work>({ log }, { native: 2, worker, modules, noun: 'request', watchdogMs: 5000, maxOldGenerationSizeMb: 128, error: (m, n) => new SimulationError(m, n), onMessage })
 * await supervisor.load([{ module: '/…/past.js', version: 1 }]) // [1, 2]
 * const { id } = supervisor.open(id => ({ fail: reject }), 10_000)
 * supervisor.post({ t: 'serve', id, version: 1, request })
 * supervisor.settle(id) // on its answer
 * ```
 */
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import type { SimulationSpec } from '../ipc/index.js'
import type { SupervisorMessage, ThreadMessage } from './so-messages.js'
import { moduleBeside, startWorkerThread } from './so-thread-start.js'
import type { SimulationThread, StartThread } from './so-thread-start.js'

/** The supervision loop every worker imports (by URL: see `so-thread.ts`). */
const THREAD_URL = moduleBeside(import.meta.url, './so-thread').href

/** What a supervisor (and the runners built on it) works with. */
export interface SimulationWorkerComponents {
  /** A line for the app's log. */
  log: (line: string) => void
  /** Starts a worker thread (default: a real one, {@link startWorkerThread}); tests may hand a stub. */
  startThread?: StartThread
  /** Default: the system clock. */
  clock?: Clock
}

/** A piece of work in a worker's hands (a request, a connection): failed when the worker goes. */
export interface SupervisedWork {
  fail: (err: Error) => void
}

/** How one kind of SO worker is run. */
export interface SimulationSupervisorInit {
  /** The app's own protocol version. */
  native: number
  /** The worker's entry file (it runs `so-thread.ts`'s loop). */
  worker: URL
  /** URLs of the modules the worker imports besides the loop (see `SimulationWorkerData`). */
  modules: Record<string, string>
  /** The kind's own settings, in the worker's `workerData`. */
  settings?: unknown
  /** What a piece of work is called in the log: `request`, `connection`. */
  noun: string
  /** A busy worker that leaves a ping unanswered this long is stuck, and terminated. */
  watchdogMs: number
  /** The worker's heap. */
  maxOldGenerationSizeMb: number
  /** How long starting a worker and loading the SOs may take (default 10 s). */
  loadTimeoutMs?: number
  /** The time limit of one SO call, for kinds whose chain has one (default 10 s). */
  callTimeoutMs?: number
  /** This kind's error, named `name` (what callers branch on). */
  error: (message: string, name: string) => Error
  /** A message of the kind's own, from the current worker. */
  onMessage: (message: unknown) => void
}

type LoadAnswer = { spoken: number[], errors: string[] } | 'timeout' | 'down'

/** Runs one app version's SOs of one kind in a supervised worker. */
export class SimulationSupervisor<W extends SupervisedWork> {
  /** The versions the app speaks with its SOs (its own only, until they load). */
  spoken: number[]
  private readonly c: Required<SimulationWorkerComponents>
  private readonly init: Required<Omit<SimulationSupervisorInit, 'settings'>> & { settings?: unknown }
  private thread: SimulationThread | undefined
  private specs: SimulationSpec[] = []
  private readonly work = new Map<number, { work: W, timer?: NodeJS.Timeout }>()
  private nextId = 1
  /** Loads one after the other: the worker answers each in turn. */
  private loads: Promise<unknown> = Promise.resolve()
  /** The load waited for, and its number: a fresh worker's reload of earlier SOs is answered too, and is not that answer. */
  private loaded: ((answer: LoadAnswer) => void) | undefined
  private loadNumber = 0
  private watchdog: NodeJS.Timeout | undefined
  /** The worker said it started (before that, it has the load's time to do so). */
  private up = false
  private pings = 0
  /** When the ping not answered yet was sent. */
  private pingSentAt: number | undefined
  private stopped = false

  constructor (components: SimulationWorkerComponents, init: SimulationSupervisorInit) {
    this.c = { startThread: startWorkerThread, clock: systemClock, ...components }
    this.init = { loadTimeoutMs: 10_000, callTimeoutMs: 10_000, ...init }
    this.spoken = [init.native]
  }

  /** Pieces of work in hand. */
  get size (): number {
    return this.work.size
  }

  /** Load these SOs (replacing those loaded before; work in hand keeps its chain); resolves with the versions then spoken. */
  async load (specs: SimulationSpec[]): Promise<number[]> {
    const next = this.loads.then(async () => await this.loadNow(specs))
    this.loads = next.catch(() => {})
    return await next
  }

  private async loadNow (specs: SimulationSpec[]): Promise<number[]> {
    const native = this.init.native
    if (this.stopped) return this.spoken
    this.specs = specs
    if (specs.length === 0 && this.work.size === 0) {
      // nothing to run and nothing in hand: no worker is kept for it
      this.down(this.init.error('no simulation objects are loaded', 'SimulationError'), false)
      this.spoken = [native]
      return this.spoken
    }
    const thread = this.ensure(false)
    const answer = await new Promise<LoadAnswer>(resolve => {
      const timer = setTimeout(() => { resolve('timeout') }, this.init.loadTimeoutMs)
      this.loaded = a => { clearTimeout(timer); resolve(a) }
      thread.post({ t: 'load', n: ++this.loadNumber, native, timeoutMs: this.init.callTimeoutMs, specs } satisfies SupervisorMessage)
      this.watch()
    })
    this.loaded = undefined
    if (answer === 'timeout') {
      this.c.log(`the simulation objects did not load within ${this.init.loadTimeoutMs} ms; the app speaks protocol ${native} only`)
      this.down(this.init.error('the simulation objects did not load in time', 'SimulationTimeoutError'))
    }
    if (typeof answer === 'string') {
      this.spoken = [native]
      return this.spoken
    }
    for (const e of answer.errors.slice(0, 20)) this.c.log(`simulation object not loaded: ${e}`)
    const spoken = answer.spoken
    // a contiguous run around the native version: nothing in the worker can make us claim more
    const valid = spoken.includes(native) && spoken.length <= 64 && spoken.every((v, i) => Number.isInteger(v) && (i === 0 || v === (spoken[i - 1] as number) + 1))
    this.spoken = valid ? spoken : [native]
    return this.spoken
  }

  /**
   * Take a piece of work (built by `make` with its id), starting the worker if need be;
   * past `limitMs` it fails alone. Throws this kind's error once stopped.
   */
  open (make: (id: number) => W, limitMs?: number): { id: number, work: W } {
    this.ensure()
    const id = this.nextId++
    const entry: { work: W, timer?: NodeJS.Timeout } = { work: make(id) }
    if (limitMs != null) {
      entry.timer = setTimeout(() => {
        if (this.settle(id) == null) return
        entry.work.fail(this.init.error(`the ${this.init.noun} ran past its ${limitMs} ms limit in the simulation objects`, 'SimulationTimeoutError'))
      }, limitMs)
      entry.timer.unref()
    }
    this.work.set(id, entry)
    this.watch()
    return { id, work: entry.work }
  }

  /** The piece of work `id`, while in hand. */
  get (id: number): W | undefined {
    return this.work.get(id)?.work
  }

  /** The piece of work `id` is done (or failed): forget it; returns it if it was in hand. */
  settle (id: number): W | undefined {
    const entry = this.work.get(id)
    if (entry == null) return undefined
    this.work.delete(id)
    clearTimeout(entry.timer)
    return entry.work
  }

  /** Post to the current worker (nothing, when there is none: its work has failed already). */
  post (message: unknown, transfer?: ArrayBuffer[]): void {
    this.thread?.post(message, transfer)
  }

  /** End the worker for good: work in hand fails with `reason`. */
  async stop (reason: string): Promise<void> {
    this.stopped = true
    const thread = this.thread
    this.down(this.init.error(reason, 'SimulationError'), false)
    await thread?.terminate()
  }

  /** The worker, started if need be; a new one loads the SOs loaded before unless `reload` is false. */
  private ensure (reload = true): SimulationThread {
    if (this.stopped) throw this.init.error('the app is stopping', 'SimulationError')
    if (this.thread != null) return this.thread
    const thread: SimulationThread = this.c.startThread({
      file: this.init.worker,
      workerData: { modules: { thread: THREAD_URL, ...this.init.modules }, settings: this.init.settings },
      maxOldGenerationSizeMb: this.init.maxOldGenerationSizeMb
    }, {
      message: m => { if (this.thread === thread) this.receive(m) },
      error: err => { if (this.thread === thread) this.down(this.init.error(`the worker running the simulation objects failed: ${err.message}`, 'SimulationError')) },
      exit: code => { if (this.thread === thread) this.down(this.init.error(`the worker running the simulation objects exited (${code})`, 'SimulationError')) },
      output: text => {
        for (const line of text.split('\n').filter(l => l.trim() !== '').slice(0, 20)) this.c.log(`simulation object output: ${line.slice(0, 4000)}`)
      }
    })
    this.thread = thread
    this.up = false
    this.pingSentAt = undefined
    // work posted from now on goes to a fresh worker: it loads what was loaded before first
    if (reload && this.specs.length > 0) thread.post({ t: 'load', n: 0, native: this.init.native, timeoutMs: this.init.callTimeoutMs, specs: this.specs } satisfies SupervisorMessage)
    return thread
  }

  private receive (raw: unknown): void {
    // an SO runs in the worker and could post anything: only well-formed messages count
    const m = raw as Partial<ThreadMessage> | null
    if (m == null || typeof m !== 'object') return
    if (m.t === 'up') {
      this.up = true
    } else if (m.t === 'pong') {
      if (m.n === this.pings) this.pingSentAt = undefined
    } else if (m.t === 'loaded') {
      if (m.n !== this.loadNumber) return
      const { spoken, errors } = m as { spoken?: unknown, errors?: unknown }
      const answer = this.loaded
      this.loaded = undefined
      answer?.({ spoken: Array.isArray(spoken) ? spoken.filter((v): v is number => typeof v === 'number') : [], errors: Array.isArray(errors) ? errors.map(String) : [] })
    } else {
      this.init.onMessage(raw)
    }
  }

  /** Watch the worker while it has work or a load in hand. */
  private watch (): void {
    if (this.watchdog != null) return
    this.watchdog = setInterval(() => { this.check() }, Math.max(50, Math.floor(this.init.watchdogMs / 5)))
    this.watchdog.unref()
  }

  /** One round of the watchdog: a ping unanswered too long means a blocked worker; otherwise ping again. */
  private check (): void {
    const thread = this.thread
    if (thread != null && this.pingSentAt != null) {
      // a worker that is starting has the load's time to do so (a loaded machine is slow to start threads)
      const limit = this.up ? this.init.watchdogMs : this.init.loadTimeoutMs
      if (this.c.clock.now() - this.pingSentAt > limit) {
        this.down(this.init.error(`a simulation object blocked its worker for more than ${limit} ms (one that loops?); the worker was stopped`, 'SimulationTimeoutError'))
      }
      return
    }
    if (thread == null || (this.work.size === 0 && this.loaded == null)) {
      clearInterval(this.watchdog)
      this.watchdog = undefined
      return
    }
    this.pingSentAt = this.c.clock.now()
    thread.post({ t: 'ping', n: ++this.pings } satisfies SupervisorMessage)
  }

  /** End the worker: the work it had in hand fails with `err`, logged (with what failed) unless `log` is false and nothing did. */
  private down (err: Error, log = true): void {
    const thread = this.thread
    this.thread = undefined
    this.up = false
    this.pingSentAt = undefined
    clearInterval(this.watchdog)
    this.watchdog = undefined
    const answer = this.loaded
    this.loaded = undefined
    answer?.('down')
    if (thread != null) void thread.terminate().catch(() => {})
    const work = [...this.work.values()]
    this.work.clear()
    if (log || work.length > 0) this.c.log(`${err.message}; ${work.length} ${this.init.noun}(s) failed`)
    for (const entry of work) {
      clearTimeout(entry.timer)
      entry.work.fail(err)
    }
  }
}
