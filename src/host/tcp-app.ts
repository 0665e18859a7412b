/**
 * A process app whose wire is TCP (`run.wire: "tcp"`): it speaks its own protocol over
 * plain TCP connections. A peer's connection reaches it as a connection to
 * 127.0.0.1:UPGOSSIP_PORT; its own connections to peers go through the proxy with
 * `CONNECT <peer host>:1`. Bytes are carried as they are between two apps of one protocol
 * version, and through the app's stream simulation objects otherwise (run in a worker
 * thread of the daemon: {@link StreamSimulations}).
 *
 * @example
 * ```ts
 * const app = new TcpProcessApp({ ...init, run: { command: ['python3', 'chat.py'], wire: 'tcp' }, onOpenBytes })
 * app.start()
 * const pipe = await app.accept(peerId, 1) // a v1 peer's connection, to this app's port
 * await pipe(streamFromThatPeer)
 * ```
 */
import type { SimulationSpec } from '../ipc/index.js'
import type { ByteStream } from '../net/index.js'
import { StreamSimulationError } from '../shim/index.js'
import { ConnectionActivity } from './connection-activity.js'
import { ProcessApp, ProcessAppError } from './process-app.js'
import type { ProcessAppInit } from './process-app.js'
import { carry, connectPort, socketByteStream } from './socket-stream.js'
import type { Translate } from './socket-stream.js'
import { StreamSimulations } from './stream-so-runner.js'

/** What carries one connection's bytes once the app has accepted it. */
export type Pipe = (stream: ByteStream) => Promise<void>

/** What a TCP process app needs beyond a process app's. */
export interface TcpAppInit extends ProcessAppInit {
  /** Open a byte stream to `peer`'s app in protocol `version` (resolves once its app accepted it). */
  /** Open a byte stream to `peer`'s app (of `app`, another class, when given) in protocol `version`. */
  onOpenBytes: (peer: string, version: number, app?: string) => Promise<ByteStream>
  /** Where bytes moving on its connections are recorded (the host's, which outlives a restart); one of its own when absent. */
  activity?: ConnectionActivity
}

/** A running process app with `wire: "tcp"`. */
export class TcpProcessApp extends ProcessApp {
  private readonly onOpenBytes: TcpAppInit['onOpenBytes']
  private readonly initialSimulations: SimulationSpec[]
  private readonly sos: StreamSimulations
  /** When bytes last moved on its connections, either way, incoming or its own (the `idle` rule's measure). */
  private readonly activity: ConnectionActivity
  /** Connections being carried, cut when the app stops. */
  private readonly open = new Set<ByteStream>()
  /** The SOs of the start, loading: the app is not ready (and offers no version) before they are. */
  private loading: Promise<unknown> = Promise.resolve()

  constructor (init: TcpAppInit) {
    // its SOs are stream SOs, loaded here, not the message SOs a process app loads at boot
    super({ ...init, simulations: [] })
    this.onOpenBytes = init.onOpenBytes
    this.activity = init.activity ?? new ConnectionActivity(Date.now)
    this.initialSimulations = init.simulations
    this.sos = new StreamSimulations({ log: line => { this.log?.write(`--- ${line}\n`) } }, { native: init.protocol })
    this.on('exit', () => { void this.sos.close() })
  }

  /** Start the program, and load its stream SOs meanwhile. */
  override start (): void {
    if (this.initialSimulations.length > 0) this.loading = this.loadSimulations(this.initialSimulations)
    super.start()
  }

  /** Ready once its port accepts connections and its SOs are loaded, so that peers are offered every version at once. */
  protected override async probe (): Promise<boolean> {
    await this.loading
    return await super.probe()
  }

  /** Load (more) stream SOs; resolves with the versions then spoken (offered to peers once the app is ready). */
  override async loadSimulations (simulations: SimulationSpec[]): Promise<number[]> {
    if (this.exited) return this.spoken
    this.spoken = await this.sos.load(simulations)
    if (this.ready && this.running) this.emit('spoken', this.spoken)
    return this.spoken
  }

  /** A TCP app takes connections, not messages. */
  override async request (): Promise<never> {
    throw new ProcessAppError(`${this.label} speaks TCP (wire "tcp"): peers reach it through a connection (CONNECT <peer host>:1 through their proxy), not with HTTP requests`)
  }

  /** `upgossip call` sends one message; a TCP app has none. */
  override async callOut (): Promise<never> {
    throw new ProcessAppError(`${this.label} speaks TCP (wire "tcp"): upgossip call sends HTTP messages; connect with CONNECT <peer host>:1 through the proxy instead`)
  }

  /**
   * A peer's connection in protocol `version` (the app's own when absent): connect to the
   * app's port; resolves with what carries the connection's bytes, through the SOs when
   * `version` is not the app's own. Counted in flight while it lasts, so a switch drains it.
   */
  async accept (from: string, version = this.init.protocol): Promise<Pipe> {
    const port = this.port
    if (!this.running || port == null) throw new ProcessAppError(`${this.label} is not running`)
    const native = this.init.protocol
    if (version !== native && !this.spoken.includes(version)) throw new StreamSimulationError(`${this.label} cannot speak protocol version ${version} (it speaks ${this.spoken.join(', ')})`, 'UnsupportedVersionError')
    const app = socketByteStream(await connectPort(port))
    return async stream => {
      await this.carried(app, stream, version === native ? undefined : sources => this.sos.translate('serve', version, from, sources), true)
    }
  }

  /**
   * The app's own connection to `peer` (its CONNECT): the version by the shim's route,
   * the peer's app reached (or this app's own port, for itself); resolves with what
   * carries the app's side of the connection.
   */
  async connectOut (peer: string, app?: string): Promise<Pipe> {
    const chosen = await this.init.onRoute(peer, app)
    if (chosen.self) return await this.accept(peer)
    const version = chosen.version
    const remote = await this.onOpenBytes(peer, version, chosen.app)
    if (!this.running) {
      remote.abort(new ProcessAppError(`${this.label} stopped`))
      throw new ProcessAppError(`${this.label} is not running`)
    }
    return async client => {
      // a peer of another class is called in the protocol `calls` names, translated (if at all) on its side
      await this.carried(client, remote, chosen.app != null || version === this.init.protocol ? undefined : sources => this.sos.translate('call', version, peer, sources), false)
    }
  }

  /**
   * Carry one connection. An incoming one counts in flight while open, so that a switch
   * drains it; for the `idle` rule, any connection counts only when bytes move on it.
   */
  private async carried (app: ByteStream, peer: ByteStream, translate: Translate | undefined, incoming: boolean): Promise<void> {
    this.open.add(peer)
    if (incoming) this.inFlight++
    const tracked = this.activity.track()
    try {
      await carry(app, peer, { translate, onBytes: tracked.moved })
    } finally {
      tracked.close()
      this.open.delete(peer)
      if (incoming) this.inFlight = Math.max(0, this.inFlight - 1)
    }
  }

  /** Stop the program; connections still open are cut, and the SOs' worker ends. */
  override async stop (graceMs?: number): Promise<void> {
    await super.stop(graceMs)
    for (const stream of [...this.open]) stream.abort(new ProcessAppError(`${this.label} stopped`))
    await this.sos.close()
  }
}
