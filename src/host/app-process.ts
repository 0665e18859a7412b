/**
 * One run of an app version as a child process: `fork(main)` on the daemon's Node,
 * advanced IPC serialization, the SDK resolve hook, output to a log file. Requests go
 * in with a deadline; the app's calls and peer queries go out to the daemon.
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { RemoteNamedError, UpgossipError } from '../errors.js'
import { IPC_PROTOCOL_VERSION, MessageBatch, ROUTE_CHANGED, isAppMessage, isBatch } from '../ipc/index.js'
import type { HostMessage, IpcError, Route, SimulationSpec } from '../ipc/index.js'
import { AppRun } from './app-run.js'
import { RotatingWriter } from '../store/index.js'
import type { LogLimit } from '../store/index.js'

export { AppUnhealthyError } from './app-run.js'

/** The app answered a request with an error, or never answered. */
export class AppRequestError extends UpgossipError {
  static override name = 'AppRequestError'
}

/** The app process is not running (not started, exited, or stopping). */
export class AppNotRunningError extends UpgossipError {
  static override name = 'AppNotRunningError'
}

/** A call in a version that is no longer the route to its peer: the app learns the route again. */
export class RouteChangedError extends UpgossipError {
  static override name = ROUTE_CHANGED
}

/** The app sent an IPC message the daemon cannot act on (it is logged and ignored). */
export class MalformedIpcMessageError extends UpgossipError {
  static override name = 'MalformedIpcMessageError'
}

/**
 * The text of a value the app sent where a string belongs. Structured clone carries any
 * data, such as an object whose `toString` is not a function: `String()` of that throws.
 */
function textOf (value: unknown, fallback: string): string {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  return fallback
}

/** What an app process needs. */
export interface AppProcessInit {
  app: string
  version: string
  packageDir: string
  main: string
  stateDir: string
  config: unknown
  peerId: string
  logFile: string
  /** How big `logFile` grows before it is moved aside, and how many old ones stay (default 16 MiB, 4). */
  logLimit?: LogLimit
  /** The app's protocol version. */
  protocol: number
  /** Simulation objects to load at start. */
  simulations: SimulationSpec[]
  /** Where a call of the app to `peer` goes (null: itself). */
  onRoute: (peer: string | null, app?: string) => Promise<Route>
  /** Send a request of protocol `version` to `peer` (of `app`, another class, when given). */
  onSend: (peer: string, version: number, request: unknown, app?: string) => Promise<unknown>
  /** The app asks which peers run it (or `app`, another class). */
  onPeers: (app?: string) => string[]
  env?: Record<string, string>
}

const REGISTER_FILE = new URL('./sdk-register.js', import.meta.url)

/** A running app version. */
export class AppProcess extends AppRun {
  readonly init: AppProcessInit
  private child: ChildProcess | undefined
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  private nextId = 1
  private log: RotatingWriter | undefined
  private stopping = false
  private shutdownDone: (() => void) | undefined
  private readonly outgoing = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  /** What is sent to the app in one turn of the event loop goes as one message. */
  private readonly batch = new MessageBatch<HostMessage>(message => { if (this.child?.connected === true) this.child.send(message) })

  constructor (init: AppProcessInit) {
    super(init.app, init.version, init.protocol)
    this.init = init
  }

  protected get readiness (): string {
    return 'call ready()'
  }

  /** The pid, while running. */
  get pid (): number | undefined {
    return this.child?.pid
  }

  /** True between start and exit. */
  get running (): boolean {
    return this.child != null && !this.exited
  }

  /** Fork the app. */
  start (): void {
    const { packageDir, main, logFile } = this.init
    fs.mkdirSync(this.init.stateDir, { recursive: true })
    fs.mkdirSync(path.dirname(logFile), { recursive: true })
    this.log = new RotatingWriter(logFile, this.init.logLimit)
    this.log.write(`--- ${new Date().toISOString()} starting ${this.init.app}@${this.init.version}\n`)
    const child = fork(path.join(packageDir, ...main.split('/')), [], {
      cwd: packageDir,
      execPath: process.execPath,
      execArgv: ['--import', REGISTER_FILE.href],
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // its own process group: a Ctrl-C at the daemon's terminal reaches the daemon, which stops the app after its shutdown hooks
      detached: true,
      env: { ...process.env, ...this.init.env, UPGOSSIP_APP: this.init.app, UPGOSSIP_APP_VERSION: this.init.version }
    })
    this.child = child
    child.stdout?.pipe(this.log, { end: false })
    child.stderr?.pipe(this.log, { end: false })
    const onOne = (message: unknown): void => {
      try {
        this.onMessage(message)
      } catch (err) {
        // whatever the app sends, the daemon stays up
        this.log?.write(`--- ignored a malformed message from the app: ${(err as Error).message}\n`)
      }
    }
    child.on('message', (message: unknown) => {
      if (isBatch(message)) for (const m of message.messages) onOne(m)
      else onOne(message)
    })
    child.on('error', err => { this.log?.write(`--- process error: ${err.message}\n`) })
    child.on('exit', (code, signal) => {
      this.markExited(code, signal)
      this.log?.write(`--- exited (${signal ?? code})\n`)
      for (const map of [this.pending, this.outgoing]) {
        for (const [id, p] of map) {
          clearTimeout(p.timer)
          p.reject(new AppNotRunningError(`${this.init.app}@${this.init.version} exited before answering`))
          map.delete(id)
        }
      }
      this.inFlight = 0
      this.shutdownDone?.()
      this.emit('exit', code, signal)
    })
  }

  private send (message: HostMessage): void {
    // a value that cannot be serialised fails that message only (a request is answered by its timeout)
    this.batch.push(message, err => { this.log?.write(`--- a message to the app could not be sent: ${err.message}\n`) })
  }

  private onMessage (message: unknown): void {
    if (!isAppMessage(message)) return
    const m = message
    switch (m.t) {
      case 'hello':
        if (m.v !== IPC_PROTOCOL_VERSION) {
          this.log?.write(`--- the app's SDK speaks IPC protocol ${textOf(m.v, '?')}, the daemon ${IPC_PROTOCOL_VERSION}\n`)
        }
        this.send({ t: 'init', v: IPC_PROTOCOL_VERSION, app: this.init.app, version: this.init.version, protocol: this.init.protocol, stateDir: this.init.stateDir, config: this.init.config, peerId: this.init.peerId, simulations: this.init.simulations })
        return
      case 'simulations-loaded': {
        const spoken = Array.isArray(m.spoken) ? m.spoken.filter((v): v is number => Number.isInteger(v) && v > 0) : []
        // a contiguous run around the native version, and not too many: the app cannot make us handle anything else
        const native = this.init.protocol
        const valid = spoken.includes(native) && spoken.length <= 64 && spoken.every((v, i) => i === 0 || v === (spoken[i - 1] as number) + 1)
        if (Array.isArray(m.errors)) for (const e of m.errors.slice(0, 20)) this.log?.write(`--- simulation object not loaded: ${textOf(e, '(no reason given)')}\n`)
        if (!valid) {
          this.log?.write(`--- the app reported an impossible set of protocol versions; it speaks only ${native}\n`)
          this.spoken = [native]
        } else {
          this.spoken = spoken
        }
        this.emit('spoken', this.spoken)
        return
      }
      case 'ready':
        if (!this.isReady) {
          this.isReady = true
          this.emit('ready')
        }
        return
      case 'unhealthy':
        this.emit('unhealthy', textOf(m.reason, 'no reason given').slice(0, 500))
        return
      case 'response': {
        const p = this.pending.get(m.id)
        if (p == null) return
        this.pending.delete(m.id)
        clearTimeout(p.timer)
        this.inFlight = Math.max(0, this.inFlight - 1)
        // the app's own error, under its own name (one name, not wrapped in ours)
        if (m.ok) p.resolve(m.value)
        else p.reject(new RemoteNamedError(textOf((m.error as IpcError | undefined)?.name, 'Error'), textOf((m.error as IpcError | undefined)?.message, '')))
        return
      }
      case 'route':
        if (m.peer != null && typeof m.peer !== 'string') throw new MalformedIpcMessageError('route: peer is not a string')
        if (m.app != null && typeof m.app !== 'string') throw new MalformedIpcMessageError('route: app is not a string')
        this.init.onRoute(m.peer, m.app).then(
          value => { this.send({ t: 'route-result', id: m.id, ok: true, value }) },
          (err: Error) => { this.send({ t: 'route-result', id: m.id, ok: false, error: { name: err.name, message: err.message } }) }
        )
        return
      case 'send':
        if (typeof m.peer !== 'string' || !Number.isInteger(m.version) || (m.app != null && typeof m.app !== 'string')) throw new MalformedIpcMessageError('send: bad peer, version or app')
        this.init.onSend(m.peer, m.version, m.request, m.app).then(
          value => { this.send({ t: 'send-result', id: m.id, ok: true, value }) },
          (err: Error) => { this.send({ t: 'send-result', id: m.id, ok: false, error: { name: err.name, message: err.message } }) }
        )
        return
      case 'call': {
        if (typeof m.peer !== 'string' || !Number.isInteger(m.version) || (m.app != null && typeof m.app !== 'string')) throw new MalformedIpcMessageError('call: bad peer, version or app')
        void this.call(m.id, m.peer, m.version, m.request, m.app)
        return
      }
      case 'call-out-result': {
        const p = this.outgoing.get(m.id)
        if (p == null) return
        this.outgoing.delete(m.id)
        clearTimeout(p.timer)
        if (m.ok) p.resolve(m.value)
        else p.reject(new RemoteNamedError(textOf(m.error?.name, 'Error'), textOf(m.error?.message, '')))
        return
      }
      case 'peers':
        if (m.app != null && typeof m.app !== 'string') throw new MalformedIpcMessageError('peers: app is not a string')
        this.send({ t: 'peers-result', id: m.id, peers: this.init.onPeers(m.app) })
        return
      case 'shutdown-done':
        this.shutdownDone?.()
    }
  }

  /** The app's call in `version` to `peer`: sent if that is still the route, else answered with {@link RouteChangedError}. */
  private async call (id: number, peer: string, version: number, request: unknown, app: string | undefined): Promise<void> {
    try {
      const route = await this.init.onRoute(peer, app)
      if (route.self || route.version !== version) throw new RouteChangedError(`a call to ${peer} now takes ${route.self ? 'this peer itself' : `protocol version ${route.version}`}, not ${version}`)
      this.send({ t: 'send-result', id, ok: true, value: await this.init.onSend(peer, version, request, app) })
    } catch (err) {
      this.send({ t: 'send-result', id, ok: false, error: { name: (err as Error).name, message: (err as Error).message } })
    }
  }

  /** Load (more) simulation objects into the running app; resolves with the versions it then speaks. */
  async loadSimulations (simulations: SimulationSpec[], timeoutMs = 10_000): Promise<number[]> {
    if (!this.running) return this.spoken
    return await new Promise(resolve => {
      const timer = setTimeout(() => { this.off('spoken', onSpoken); resolve(this.spoken) }, timeoutMs)
      const onSpoken = (spoken: number[]): void => { clearTimeout(timer); resolve(spoken) }
      this.once('spoken', onSpoken)
      this.send({ t: 'simulations', simulations })
    })
  }

  /** Make the app send `request` to `peer` exactly as its own `node.call` (`upgossip call`). */
  async callOut (peer: string | null, request: unknown, timeoutMs = 30_000): Promise<unknown> {
    if (!this.running || this.stopping) throw new AppNotRunningError(`${this.init.app}@${this.init.version} is not running`)
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.outgoing.delete(id)
        reject(new AppRequestError(`${this.init.app}@${this.init.version} did not complete the call within ${timeoutMs} ms`))
      }, timeoutMs)
      this.outgoing.set(id, { resolve, reject, timer })
      this.send({ t: 'call-out', id, peer, request })
    })
  }

  /** Deliver a request (of protocol `version`, the app's own when absent); resolves with the app's response. */
  async request (from: string, request: unknown, version?: number, timeoutMs = 30_000): Promise<unknown> {
    if (!this.running || this.stopping) throw new AppNotRunningError(`${this.init.app}@${this.init.version} is not running`)
    const id = this.nextId++
    this.inFlight++
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        this.inFlight = Math.max(0, this.inFlight - 1)
        reject(new AppRequestError(`${this.init.app}@${this.init.version} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, { resolve, reject, timer })
      this.batch.push({ t: 'request', id, from, request, version }, err => {
        clearTimeout(timer)
        this.pending.delete(id)
        this.inFlight = Math.max(0, this.inFlight - 1)
        reject(new AppRequestError(`the request cannot be sent to ${this.init.app}@${this.init.version}: ${err.message}`))
      })
    })
  }

  /** Run the app's shutdown hooks (bounded), then end the process. */
  async stop (graceMs = 5000): Promise<void> {
    if (this.child == null || this.exited) {
      this.log?.end()
      return
    }
    this.stopping = true
    const child = this.child
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, graceMs)
      this.shutdownDone = () => { clearTimeout(timer); resolve() }
      this.send({ t: 'shutdown' })
    })
    if (!this.exited) {
      const exited = new Promise(resolve => child.once('exit', resolve))
      // closing the channel makes the SDK exit; a stuck process is killed
      if (child.connected) child.disconnect()
      const kill = setTimeout(() => child.kill('SIGKILL'), 2000)
      await exited
      clearTimeout(kill)
    }
    this.log?.end()
  }
}
