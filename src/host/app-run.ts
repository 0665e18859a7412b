/**
 * What the host runs, whatever the kind of app: a running version with its health
 * (ready, unhealthy, exited), the requests in flight, and the protocol versions it
 * speaks. An SDK app ({@link AppProcess}) and a process app ({@link ProcessApp}) share
 * how readiness and stability are waited for.
 */
import { EventEmitter } from 'node:events'
import { UpgossipError } from '../errors.js'
import type { SimulationSpec } from '../ipc/index.js'

/** The app exited, reported itself unhealthy, or failed its health check where health was awaited. */
export class AppUnhealthyError extends UpgossipError {
  static override name = 'AppUnhealthyError'
}

/** Events of a running app. */
export interface AppRunEvents {
  exit: [number | null, NodeJS.Signals | null]
  unhealthy: [string]
  ready: []
  spoken: [number[]]
}

/** A running app version, as the host and the upgrade engine see it. */
export abstract class AppRun extends EventEmitter<AppRunEvents> {
  /** Requests delivered and not yet answered. */
  inFlight = 0
  /** The protocol versions the app speaks, with its simulation objects (native only until they load). */
  spoken: number[]
  /** `app@version`, for messages. */
  readonly label: string
  protected isReady = false
  protected exited = false
  private exitCode: number | null = null
  private exitSignal: NodeJS.Signals | null = null
  /** Why the app ended, when it did not simply exit (it could not start, say). */
  protected failure: string | undefined
  /**
   * Why the app is unhealthy now, if it is: it said so (`node.unhealthy`), or its health
   * checks failed; a process app whose checks pass again is healthy again (`/healthz`).
   */
  unhealthyReason: string | undefined

  constructor (app: string, version: string, protocol: number) {
    super()
    this.label = `${app}@${version}`
    this.spoken = [protocol]
    this.on('unhealthy', reason => { this.unhealthyReason = reason })
  }

  /** The pid, while running. */
  abstract get pid (): number | undefined
  /** True between start and exit. */
  abstract get running (): boolean
  /** Start the app. */
  abstract start (): void
  /** Load (more) simulation objects; resolves with the versions it then speaks. */
  abstract loadSimulations (simulations: SimulationSpec[], timeoutMs?: number): Promise<number[]>
  /** Make the app's own call to `peer` (`upgossip call`). */
  abstract callOut (peer: string | null, request: unknown, timeoutMs?: number): Promise<unknown>
  /** Deliver a request (of protocol `version`, the app's own when absent); resolves with the app's response. */
  abstract request (from: string, request: unknown, version?: number, timeoutMs?: number): Promise<unknown>
  /** Stop the app (gracefully first). */
  abstract stop (graceMs?: number): Promise<void>
  /** What the app must do to count as ready, for messages ("call ready()", "answer its health check"). */
  protected abstract get readiness (): string

  /** The process ended: remember how, for waiters that come later. */
  protected markExited (code: number | null, signal: NodeJS.Signals | null): void {
    this.exited = true
    this.exitCode = code
    this.exitSignal = signal
  }

  /** True once the app is ready. */
  get ready (): boolean {
    return this.isReady
  }

  private exitText (code: number | null, signal: string | null): string {
    return this.failure ?? signal ?? String(code)
  }

  /** Resolve once the app is ready; reject if it exits, reports itself unhealthy, or takes longer than `ms`. */
  async waitReady (ms: number): Promise<void> {
    if (this.isReady) return
    await this.watch(ms, 'ready', code => `${this.label} exited (${code}) before it was ready`, ms2 => `${this.label} did not ${this.readiness} within ${ms2} ms`)
  }

  /** Resolve after `ms` of health; reject if the app exits or reports itself unhealthy meanwhile. */
  async stayHealthy (ms: number): Promise<void> {
    await this.watch(ms, 'timer', code => `${this.label} exited (${code}) within its stable period`)
  }

  private async watch (ms: number, until: 'ready' | 'timer', exitMessage: (code: string) => string, lateMessage?: (ms: number) => string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer)
        this.off('ready', onReady)
        this.off('exit', onExit)
        this.off('unhealthy', onUnhealthy)
        if (err != null) reject(err)
        else resolve()
      }
      const onReady = (): void => { done() }
      const onExit = (code: number | null, signal: string | null): void => { done(new AppUnhealthyError(exitMessage(this.exitText(code, signal)))) }
      const onUnhealthy = (reason: string): void => { done(new AppUnhealthyError(`${this.label} reported itself unhealthy: ${reason}`)) }
      const timer = setTimeout(() => { done(lateMessage == null ? undefined : new AppUnhealthyError(lateMessage(ms))) }, ms)
      if (until === 'ready') this.on('ready', onReady)
      this.on('exit', onExit)
      this.on('unhealthy', onUnhealthy)
      if (this.exited) onExit(this.exitCode, this.exitSignal)
    })
  }

  /** Wait until no request is in flight, at most `ms`. */
  async drain (ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while (this.inFlight > 0 && this.running && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  }
}
