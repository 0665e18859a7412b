/**
 * The app host: keeps the current app version running (restarts it with backoff when
 * it crashes; a crash loop makes the peer `failed`), holds incoming requests during a
 * switch and delivers them to whichever version runs next, and tracks how idle the app is.
 */
import { EventEmitter } from 'node:events'
import { UpgossipError } from '../errors.js'
import type { ByteStream } from '../net/index.js'
import { AppNotRunningError, AppProcess } from './app-process.js'
import type { AppProcessInit } from './app-process.js'
import type { AppRun } from './app-run.js'
import type { StreamedHttpResponse } from './app-http-client.js'
import { readBody, toHttpRequestHead, toHttpResponse } from './http-message.js'
import { ConnectionActivity } from './connection-activity.js'
import { BusySamples } from './busy-samples.js'
import { ProcessApp } from './process-app.js'
import type { RunSpec } from './process-app.js'
import { TcpProcessApp } from './tcp-app.js'
import type { Pipe } from './tcp-app.js'
import type { LogLimit } from '../store/index.js'

/** Requests held during a switch went over their bound (count or time). */
export class RequestHoldOverflowError extends UpgossipError {
  static override name = 'RequestHoldOverflowError'
}

/** A connection (CONNECT) for an app whose wire is not TCP. */
export class WrongWireError extends UpgossipError {
  static override name = 'WrongWireError'
}

/** The app crash-looped: no version can run. */
export class AppCrashLoopError extends UpgossipError {
  static override name = 'AppCrashLoopError'
}

/** Which version to run: an SDK app (`main`) or a process app (`run`). */
export type AppSpec = Pick<AppProcessInit, 'app' | 'version' | 'packageDir' | 'stateDir' | 'protocol' | 'simulations'> & {
  /** An SDK app's module. */
  main?: string
  /** A process app's program. */
  run?: RunSpec
  /** A process app's health path. */
  healthPath?: string
}

/** What the host needs. */
export interface AppHostInit {
  peerId: string
  config: unknown
  logFile: string
  /** How big `logFile` grows before it is moved aside, and how many old ones stay (default 16 MiB, 4). */
  logLimit?: LogLimit
  onRoute: AppProcessInit['onRoute']
  onSend: AppProcessInit['onSend']
  onPeers: AppProcessInit['onPeers']
  log: (message: string) => void
  clock?: () => number
  /** Bounds on requests held during a switch: count, bytes (as they came off the wire) and time. */
  maxHeld?: number
  maxHeldBytes?: number
  maxHoldMs?: number
  env?: Record<string, string>
  /** `UPGOSSIP_PROXY` for process apps: the daemon's proxy with its credentials. */
  proxyUrl?: () => string
  /** Where a process app's process group is recorded. */
  groupFile?: string
  /** For apps whose wire is TCP: open a byte stream to `peer`'s app in protocol `version`. */
  onOpenBytes?: (peer: string, version: number, app?: string) => Promise<ByteStream>
}

interface Held {
  from: string
  request: unknown
  version?: number
  bytes: number
  resolve: (v: unknown) => void
  reject: (e: Error) => void
  timer: NodeJS.Timeout
}

const CRASH_WINDOW_MS = 60_000
const MAX_CRASHES = 5

/** Runs the app and stands between it and every caller. */
export class AppHost extends EventEmitter<{ failed: [string], restarted: [AppSpec], spoken: [number[]], unhealthy: [AppSpec, string] }> {
  private readonly init: AppHostInit
  private proc: AppRun | undefined
  private spec: AppSpec | undefined
  private supervising = false
  private crashes: number[] = []
  private restartTimer: NodeJS.Timeout | undefined
  private holding = false
  private held: Held[] = []
  private heldBytes = 0
  /** Connections (wire "tcp") waiting for the switch to end. */
  private heldConnections: Array<{ resume: (err?: Error) => void }> = []
  /** Requests and connections held since the last `hold()` (the switch's count, for metrics). */
  private heldSinceHold = 0
  private readonly busy = new BusySamples()
  /** Bytes moving on a TCP app's connections, kept across its restarts and versions. */
  private readonly activity: ConnectionActivity
  private readonly startedAt: number
  failedReason: string | undefined

  constructor (init: AppHostInit) {
    super()
    this.init = init
    this.startedAt = this.now()
    this.activity = new ConnectionActivity(() => this.now())
  }

  private now (): number {
    return this.init.clock?.() ?? Date.now()
  }

  /** The running process, if any. */
  get current (): AppRun | undefined {
    return this.proc
  }

  /** The version running now, if any. */
  get runningSpec (): AppSpec | undefined {
    return this.proc?.running === true ? this.spec : undefined
  }

  /** Start `spec` (not supervised until {@link supervise}); the previous process must be stopped first. */
  launch (spec: AppSpec): AppRun {
    clearTimeout(this.restartTimer)
    this.spec = spec
    this.supervising = false
    this.failedReason = undefined
    const { peerId, logFile, logLimit, onRoute, onSend, env } = this.init
    const processInit = { ...spec, peerId, logFile, logLimit, onRoute, onSend, env, proxyUrl: this.init.proxyUrl?.() ?? '', groupFile: this.init.groupFile }
    const onOpenBytes = this.init.onOpenBytes ?? (async () => { throw new WrongWireError('this daemon opens no byte streams') })
    const proc: AppRun = spec.run?.wire === 'tcp'
      ? new TcpProcessApp({ ...processInit, run: spec.run, onOpenBytes, activity: this.activity })
      : spec.run != null
        ? new ProcessApp({ ...processInit, run: spec.run })
        : new AppProcess({ ...spec, main: spec.main ?? '', config: this.init.config, peerId, logFile, logLimit, onRoute, onSend, onPeers: this.init.onPeers, env })
    this.proc = proc
    proc.on('spoken', spoken => { if (this.proc === proc) this.emit('spoken', spoken) })
    // while a switch verifies the version, the engine watches it; after that, the host reports
    proc.on('unhealthy', reason => { if (this.proc === proc && this.supervising) this.emit('unhealthy', spec, reason) })
    proc.on('exit', (code, signal) => { this.onExit(proc, code, signal) })
    proc.start()
    return proc
  }

  /** From now on, restart the current version when it crashes (at once, if it already has). */
  supervise (): void {
    this.supervising = true
    const proc = this.proc
    if (proc != null && !proc.running && this.spec != null) this.onExit(proc, null, null)
  }

  private onExit (proc: AppRun, code: number | null, signal: NodeJS.Signals | null): void {
    if (proc !== this.proc || !this.supervising || this.spec == null) return
    const spec = this.spec
    const now = this.now()
    this.crashes = [...this.crashes.filter(t => now - t < CRASH_WINDOW_MS), now]
    if (this.crashes.length >= MAX_CRASHES) {
      this.supervising = false
      this.failedReason = `${spec.app}@${spec.version} crashed ${this.crashes.length} times within ${CRASH_WINDOW_MS / 1000}s (last: ${signal ?? String(code)})`
      this.init.log(this.failedReason)
      this.emit('failed', this.failedReason)
      return
    }
    const delay = Math.min(30_000, 500 * 2 ** (this.crashes.length - 1))
    this.init.log(`${spec.app}@${spec.version} exited (${signal ?? String(code)}); restarting in ${delay} ms`)
    this.restartTimer = setTimeout(() => {
      if (this.proc !== proc || this.spec !== spec) return
      const next = this.launch(spec)
      this.supervising = true
      this.emit('restarted', spec)
      void next
    }, delay)
    this.restartTimer.unref()
  }

  /** Stop the current process (its shutdown hooks run first). */
  async stopCurrent (graceMs?: number): Promise<void> {
    clearTimeout(this.restartTimer)
    this.supervising = false
    const proc = this.proc
    this.proc = undefined
    await proc?.stop(graceMs)
  }

  /** Start holding incoming requests (a switch begins). */
  hold (): void {
    this.holding = true
    this.heldSinceHold = 0
  }

  /** How many requests and connections were held since the switch began (or the last one did). */
  get heldCount (): number {
    return this.heldSinceHold
  }

  /** Stop holding: deliver every held request to the version running now. */
  unhold (): void {
    this.holding = false
    const held = this.held
    this.held = []
    this.heldBytes = 0
    for (const h of held) {
      clearTimeout(h.timer)
      this.deliver(h.from, h.request, h.version).then(h.resolve, h.reject)
    }
    const connections = this.heldConnections
    this.heldConnections = []
    for (const c of connections) c.resume()
  }

  /** True while requests are held. */
  get isHolding (): boolean {
    return this.holding
  }

  private async deliver (from: string, request: unknown, version?: number): Promise<unknown> {
    const proc = this.proc
    if (proc?.running !== true) throw new AppNotRunningError('the app is not running on this peer')
    this.busy.push(this.now(), proc.inFlight + 1)
    try {
      return await proc.request(from, request, version)
    } finally {
      this.busy.push(this.now(), proc.inFlight)
    }
  }

  /** The protocol versions the running app speaks now. */
  get spoken (): number[] {
    return this.proc?.running === true ? this.proc.spoken : []
  }

  /**
   * A request for the app (of protocol `version`; its own when absent): delivered now,
   * or held during a switch and delivered to the next version, translated by its
   * simulation objects (callers see delay, not errors).
   */
  async request (from: string, request: unknown, version?: number, bytes = 0): Promise<unknown> {
    if (!this.holding) return await this.deliver(from, request, version)
    if (this.held.length >= (this.init.maxHeld ?? 1000)) throw new RequestHoldOverflowError('too many requests are held during the switch; try again shortly')
    if (this.heldBytes + bytes > (this.init.maxHeldBytes ?? 64 * 1024 * 1024)) throw new RequestHoldOverflowError('the requests held during the switch are too large in total; try again shortly')
    this.heldBytes += bytes
    this.heldSinceHold++
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.held = this.held.filter(h => h.timer !== timer)
        this.heldBytes -= bytes
        reject(new RequestHoldOverflowError(`the switch took longer than ${this.init.maxHoldMs ?? 60_000} ms; request not delivered`))
      }, this.init.maxHoldMs ?? 60_000)
      this.held.push({ from, request, version, bytes, resolve, reject, timer })
    })
  }

  /** The running app, when its wire is TCP. */
  private tcpApp (): TcpProcessApp {
    const proc = this.proc
    if (proc?.running !== true) throw new AppNotRunningError('the app is not running on this peer')
    if (!(proc instanceof TcpProcessApp)) throw new WrongWireError(`${proc.label} does not speak TCP (its wire is not "tcp"): reach it with HTTP, not CONNECT`)
    return proc
  }

  /**
   * A peer's connection (wire "tcp") in protocol `version` (the app's own when absent):
   * held during a switch like a request (bounded by count and time), then accepted by the
   * app that runs; resolves with what carries its bytes.
   */
  async acceptConnection (from: string, version?: number): Promise<Pipe> {
    await this.heldThroughSwitch('connection')
    return await this.tcpApp().accept(from, version)
  }

  /**
   * A peer's streamed HTTP request in protocol `version` (wire "http"): held during a
   * switch like a connection, then streamed to the app when it speaks `version` natively;
   * otherwise (a switch changed the version meanwhile) read whole and translated like any
   * request.
   */
  async exchangeHttp (from: string, version: number, head: unknown, body: Uint8Array | AsyncIterable<Uint8Array>): Promise<StreamedHttpResponse> {
    const request = toHttpRequestHead(head)
    await this.heldThroughSwitch('request')
    const proc = this.proc
    if (proc?.running !== true) throw new AppNotRunningError('the app is not running on this peer')
    if (proc instanceof ProcessApp && !(proc instanceof TcpProcessApp) && version === proc.init.protocol) {
      this.busy.push(this.now(), proc.inFlight + 1)
      const answer = await proc.requestStreamed(request, body)
      this.busy.push(this.now(), proc.inFlight)
      return answer
    }
    const response = toHttpResponse(await this.deliver(from, { ...request, body: body instanceof Uint8Array ? body : await readBody(body) }, version))
    return { head: { status: response.status, headers: response.headers, length: response.body.byteLength }, body: response.body }
  }

  /** During a switch: wait (bounded by count and time) until it ended. */
  private async heldThroughSwitch (what: 'connection' | 'request'): Promise<void> {
    if (this.holding) {
      if (this.heldConnections.length + this.held.length >= (this.init.maxHeld ?? 1000)) throw new RequestHoldOverflowError('too many requests are held during the switch; try again shortly')
      const maxHoldMs = this.init.maxHoldMs ?? 60_000
      this.heldSinceHold++
      await new Promise<void>((resolve, reject) => {
        const entry = {
          resume: (err?: Error) => {
            clearTimeout(timer)
            if (err == null) resolve()
            else reject(err)
          }
        }
        const timer = setTimeout(() => {
          this.heldConnections = this.heldConnections.filter(c => c !== entry)
          reject(new RequestHoldOverflowError(`the switch took longer than ${maxHoldMs} ms; ${what} not ${what === 'connection' ? 'accepted' : 'delivered'}`))
        }, maxHoldMs)
        this.heldConnections.push(entry)
      })
    }
  }

  /** The app's own connection (CONNECT) to `peer` (of `app`, another class, when given), this peer included: resolves with what carries the app's side of it. */
  async connectOut (peer: string, app?: string): Promise<Pipe> {
    return await this.tcpApp().connectOut(peer, app)
  }

  /**
   * How long the app has had at most `maxInFlight` requests in flight (0 when it has more
   * now). For an app whose wire is TCP, a connection counts only while bytes move on it:
   * how long bytes have moved on at most `maxInFlight` connections ({@link ConnectionActivity}).
   */
  idleFor (maxInFlight: number): number {
    const now = this.now()
    if (this.proc instanceof TcpProcessApp) {
      if (this.heldConnections.length > maxInFlight) return 0
      return this.activity.quietFor(maxInFlight) ?? now - this.startedAt
    }
    if ((this.proc?.inFlight ?? 0) > maxInFlight || this.held.length > 0) return 0
    // idle since the sample that ended the last busy stretch
    return now - (this.busy.quietSince(maxInFlight) ?? this.startedAt)
  }

  /** Stop everything; held requests are refused. */
  async close (): Promise<void> {
    for (const h of this.held) {
      clearTimeout(h.timer)
      h.reject(new AppNotRunningError('the daemon is stopping'))
    }
    this.held = []
    for (const c of this.heldConnections) c.resume(new AppNotRunningError('the daemon is stopping'))
    this.heldConnections = []
    await this.stopCurrent()
  }
}
