/**
 * A process app: any program, in any language, named by the manifest's `run`. The daemon
 * starts it in the unpacked package (no shell) in a process group of its own, with the
 * port it must listen on and the proxy it calls peers through in its environment; peers'
 * requests reach it as HTTP requests on 127.0.0.1; its health is its health path (or its
 * port) answering. Stopped with SIGTERM, then SIGKILL after the grace period.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { SimulationError } from '../ipc/index.js'
import type { Route, SimulationSpec } from '../ipc/index.js'
import { AppHttpClient, ProcessAppError } from './app-http-client.js'
import type { StreamedHttpResponse } from './app-http-client.js'
import { AppRun } from './app-run.js'
import { MalformedHttpMessageError, SMALL_BODY, printableResponse, readBody, toHttpRequest, toHttpResponse } from './http-message.js'
import { SimulationRunner } from './so-runner.js'
import type { HttpRequestHead, HttpRequestMessage, HttpResponseMessage } from './http-message.js'
import { recordGroup, forgetGroup, signalGroup } from './process-group.js'
import { RotatingWriter } from '../store/index.js'
import type { LogLimit } from '../store/index.js'

export { ProcessAppError }

/** How a process app runs (the manifest's `run`). */
export interface RunSpec {
  command: string[]
  wire: 'http' | 'tcp'
}

/** What a process app needs. */
export interface ProcessAppInit {
  app: string
  version: string
  packageDir: string
  stateDir: string
  protocol: number
  run: RunSpec
  /** Simulation objects to load at start (past chain, staged futures). */
  simulations: SimulationSpec[]
  /** `health.http`: the path that answers 2xx while the app is healthy. */
  healthPath?: string
  peerId: string
  logFile: string
  /** How big `logFile` grows before it is moved aside, and how many old ones stay (default 16 MiB, 4). */
  logLimit?: LogLimit
  /** `UPGOSSIP_PROXY`: the daemon's proxy with its credentials. */
  proxyUrl: string
  /** Where the process group is recorded, so a daemon that died does not leave it running. */
  groupFile?: string
  /** Where a call of the app to `peer` goes (null: itself). */
  /** The route to `peer` (of `app`, another class, when given). */
  onRoute: (peer: string | null, app?: string) => Promise<Route>
  /** Send a request of protocol `version` to `peer`. */
  onSend: (peer: string, version: number, request: unknown) => Promise<unknown>
  env?: Record<string, string>
}

/** How often health is checked before the app is ready, and after. */
const READY_POLL_MS = 100
const HEALTH_POLL_MS = 1000
/** Failed health checks in a row that make a ready app unhealthy. */
const UNHEALTHY_AFTER = 3
/** SIGTERM, then SIGKILL after this long (DESIGN: 10 s). */
const STOP_GRACE_MS = 10_000

/** A free port on 127.0.0.1, chosen by the kernel. */
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => { resolve(port) })
    })
  })
}

/** A running process app. */
export class ProcessApp extends AppRun {
  readonly init: ProcessAppInit
  private child: ChildProcess | undefined
  protected log: RotatingWriter | undefined
  private poll: NodeJS.Timeout | undefined
  private failedChecks = 0
  private stopping = false
  private started = false
  /** The port the app listens on (set at start). */
  port: number | undefined
  private readonly simulations: SimulationRunner
  private readonly client: AppHttpClient

  constructor (init: ProcessAppInit) {
    super(init.app, init.version, init.protocol)
    this.init = init
    this.simulations = new SimulationRunner({ log: message => { this.log?.write(`--- ${message}\n`) } }, { native: init.protocol })
    this.client = new AppHttpClient(this.label)
  }

  protected get readiness (): string {
    return this.init.healthPath == null ? `accept connections on its port ${this.port ?? '?'}` : `answer GET ${this.init.healthPath} with 2xx on its port ${this.port ?? '?'}`
  }

  /** The pid, while running. */
  get pid (): number | undefined {
    return this.child?.pid
  }

  /**
   * True between start and exit, including while the port is chosen before the program is
   * spawned: the host must not take an app that has not spawned yet for one that exited
   * (it would start a second copy beside it).
   */
  get running (): boolean {
    return this.started && !this.exited
  }

  /** Start the program (asynchronously: a port is chosen first); its end comes as `exit`. */
  start (): void {
    this.started = true
    fs.mkdirSync(this.init.stateDir, { recursive: true })
    fs.mkdirSync(path.dirname(this.init.logFile), { recursive: true })
    this.log = new RotatingWriter(this.init.logFile, this.init.logLimit)
    this.boot().catch((err: Error) => { this.end(null, null, `could not start: ${err.message}`) })
  }

  private async boot (): Promise<void> {
    const { run, packageDir } = this.init
    this.port = await freePort()
    // stopped while a port was chosen: nothing is started
    if (this.stopping) {
      this.end(null, null, 'stopped before it started')
      return
    }
    const [program = '', ...args] = run.command
    // ./name is the package's own program; any other name is looked up on PATH
    const file = program.startsWith('./') ? path.join(packageDir, ...program.slice(2).split('/')) : program
    this.log?.write(`--- ${new Date().toISOString()} starting ${this.label}: ${run.command.join(' ')} (port ${this.port})\n`)
    const child = spawn(file, args, {
      cwd: packageDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own process group: stopped as a whole, and never left behind by a daemon that died
      detached: true,
      env: {
        ...appEnvironment(this.init.env),
        UPGOSSIP_PORT: String(this.port),
        UPGOSSIP_STATE: this.init.stateDir,
        UPGOSSIP_PROXY: this.init.proxyUrl,
        UPGOSSIP_PEER_ID: this.init.peerId,
        UPGOSSIP_APP: this.init.app,
        UPGOSSIP_APP_VERSION: this.init.version
      }
    })
    this.child = child
    // recorded at once (not on the 'spawn' event, a tick later): a daemon that dies from here on leaves no group unrecorded
    if (this.init.groupFile != null && child.pid != null) {
      try {
        recordGroup(this.init.groupFile, child.pid)
      } catch {
        // an app is not refused for it: only a daemon that dies meanwhile would leave it running
      }
    }
    if (this.log != null) {
      child.stdout?.pipe(this.log, { end: false })
      child.stderr?.pipe(this.log, { end: false })
    }
    child.once('error', err => {
      const code = (err as NodeJS.ErrnoException).code ?? err.message
      this.end(null, null, code === 'ENOENT' ? `${program} was not found (is it installed, and on PATH or in the package?)` : `${program} could not start: ${code}`)
    })
    child.once('exit', (code, signal) => { this.end(code, signal) })
    this.checkHealth()
    if (this.init.simulations.length > 0) void this.loadSimulations(this.init.simulations)
  }

  private end (code: number | null, signal: NodeJS.Signals | null, failure?: string): void {
    if (this.exited) return
    if (failure != null) this.failure = failure
    clearTimeout(this.poll)
    this.markExited(code, signal)
    this.log?.write(`--- ${this.label} ${failure ?? `exited (${signal ?? String(code)})`}\n`)
    const pid = this.child?.pid
    if (pid != null) {
      // whatever the program started and left behind goes with it: its group is the app
      signalGroup(pid, 'SIGKILL')
      if (this.init.groupFile != null) forgetGroup(this.init.groupFile, pid)
    }
    this.inFlight = 0
    this.client.close()
    this.emit('exit', code, signal)
  }

  /** One health check, then the next: ready at the first success; unhealthy after several failures in a row. */
  private checkHealth (): void {
    if (this.exited || this.stopping) return
    this.probe().then(ok => {
      if (this.exited || this.stopping) return
      if (ok) {
        this.failedChecks = 0
        this.unhealthyReason = undefined
        if (!this.isReady) {
          this.isReady = true
          this.emit('ready')
          // the shim offers the app's protocol to peers once it answers
          this.emit('spoken', this.spoken)
        }
      } else if (this.isReady && ++this.failedChecks === UNHEALTHY_AFTER) {
        this.emit('unhealthy', `${this.readiness.replace(/^accept/, 'did not accept').replace(/^answer/, 'did not answer')} ${UNHEALTHY_AFTER} times in a row`)
      }
      this.poll = setTimeout(() => { this.checkHealth() }, this.isReady ? HEALTH_POLL_MS : READY_POLL_MS)
      this.poll.unref()
    }, () => {})
  }

  protected async probe (): Promise<boolean> {
    const port = this.port
    if (port == null) return false
    const healthPath = this.init.healthPath
    return await new Promise(resolve => {
      if (healthPath == null) {
        const socket = net.connect({ host: '127.0.0.1', port })
        socket.setTimeout(1000, () => { socket.destroy(); resolve(false) })
        socket.once('connect', () => { socket.destroy(); resolve(true) })
        socket.once('error', () => { resolve(false) })
        return
      }
      const req = http.get({ host: '127.0.0.1', port, path: healthPath, timeout: 1000, agent: false }, res => {
        res.resume()
        resolve(res.statusCode != null && res.statusCode >= 200 && res.statusCode < 300)
      })
      req.once('timeout', () => { req.destroy() })
      req.once('error', () => { resolve(false) })
    })
  }

  /** Load (more) simulation objects: the daemon runs them for the app, in a worker of their own. */
  async loadSimulations (simulations: SimulationSpec[]): Promise<number[]> {
    this.spoken = await this.simulations.load(simulations)
    // before it is ready, the shim hears of them with its readiness
    if (this.isReady) this.emit('spoken', this.spoken)
    return this.spoken
  }

  /** A request from a peer: made as an HTTP request to the app's port; resolves with its response message. */
  async request (_from: string, request: unknown, version?: number, timeoutMs = 30_000): Promise<HttpResponseMessage> {
    const message = toHttpRequest(request)
    const port = await this.takeRequest(timeoutMs)
    try {
      if (version == null || version === this.init.protocol) return await this.client.forward(port, message, timeoutMs)
      // a request of another version: through the SOs, whose `local` is the app itself
      return await translated(async () => await this.simulations.serve(version, message, async r => await this.client.forward(port, toHttpRequest(r), timeoutMs)))
    } finally {
      this.requestEnded()
    }
  }

  /**
   * A same-version request from a peer whose body streams in; the response's body streams
   * out (read whole when short). In flight until the response's body has gone.
   */
  async requestStreamed (head: HttpRequestHead, body: Uint8Array | AsyncIterable<Uint8Array>, timeoutMs = 30_000): Promise<StreamedHttpResponse> {
    const port = await this.takeRequest(timeoutMs)
    let answer: StreamedHttpResponse
    try {
      // a short body is read whole first: it goes to the app in one write with the request's head
      const whole = !(body instanceof Uint8Array) && head.length != null && head.length <= SMALL_BODY ? await readBody(body, SMALL_BODY) : body
      answer = await this.client.forwardStreamed(port, head, whole, timeoutMs)
    } catch (err) {
      this.requestEnded()
      throw err
    }
    if (answer.body instanceof Uint8Array) {
      this.requestEnded()
      return answer
    }
    const source = answer.body
    return {
      head: answer.head,
      body: (async function * (app: ProcessApp) {
        try {
          for await (const chunk of source) yield chunk
        } finally {
          app.requestEnded()
        }
      })(this)
    }
  }

  /** A request in flight ended (answered, failed, or its body fully sent). */
  private requestEnded (): void {
    this.inFlight = Math.max(0, this.inFlight - 1)
  }

  /** Count a request in flight once the app can take it (it waits while the program starts, as an SDK app's would); resolves with the app's port. */
  private async takeRequest (timeoutMs: number): Promise<number> {
    if (!this.running || this.stopping) throw new ProcessAppError(`${this.label} is not running`)
    this.inFlight++
    try {
      if (!this.isReady) await this.waitReady(timeoutMs)
      const port = this.port
      if (port == null) throw new ProcessAppError(`${this.label} has no port`)
      return port
    } catch (err) {
      this.requestEnded()
      throw err
    }
  }

  /**
   * The app's request to a peer spoken to in `version`: sent as it is in the app's own
   * version, or through the SOs, whose `remote` delivers it in `version`.
   */
  async callPeer (version: number, request: HttpRequestMessage, remote: (request: unknown) => Promise<unknown>): Promise<HttpResponseMessage> {
    if (version === this.init.protocol) return toHttpResponse(await remote(request))
    return await translated(async () => await this.simulations.call(version, request, remote))
  }

  /** `upgossip call`: a request (an HTTP request message) to `peer` as the app would make it through the proxy. */
  async callOut (peer: string | null, request: unknown, timeoutMs = 30_000): Promise<unknown> {
    const message = toHttpRequest(request)
    const route = await this.init.onRoute(peer)
    const answer = route.self
      ? await this.request(this.init.peerId, message, undefined, timeoutMs)
      : await this.callPeer(route.version, message, async r => await this.init.onSend(peer ?? '', route.version, r))
    return printableResponse(answer)
  }

  /** SIGTERM to the app's process group; SIGKILL after the grace period. */
  async stop (graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true
    clearTimeout(this.poll)
    await this.simulations.stop()
    this.client.close()
    const child = this.child
    // stopped before it was spawned: boot() sees `stopping` and spawns nothing
    if (child == null && this.started && !this.exited) this.end(null, 'SIGTERM', 'was stopped before it started')
    if (child?.pid != null && !this.exited) {
      const exited = new Promise(resolve => { this.once('exit', resolve) })
      signalGroup(child.pid, 'SIGTERM')
      const kill = setTimeout(() => { signalGroup(child.pid ?? 0, 'SIGKILL') }, graceMs)
      await exited
      clearTimeout(kill)
    }
    this.log?.end()
  }
}

/**
 * The environment a process app starts with: the daemon's, without proxy settings that
 * would send its calls around the daemon's proxy (`no_proxy` makes urllib and curl skip
 * it), and with Python's bytecode caches off (the package directory is content-addressed
 * and stays as it was unpacked).
 */
function appEnvironment (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, PYTHONDONTWRITEBYTECODE: '1' }
  for (const name of ['no_proxy', 'NO_PROXY', 'http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) Reflect.deleteProperty(env, name)
  return env
}

/** A translated response; an SO that fails gives that request a 502 with its error, not a dead peer. */
async function translated (run: () => Promise<unknown>): Promise<HttpResponseMessage> {
  try {
    return toHttpResponse(await run())
  } catch (err) {
    if (!(err instanceof SimulationError) && !(err instanceof MalformedHttpMessageError)) throw err
    return { status: 502, headers: { 'content-type': 'text/plain; charset=utf-8', 'x-upgossip-error': err.name }, body: new TextEncoder().encode(`simulation object failed: ${err.name}: ${err.message}\n`) }
  }
}
