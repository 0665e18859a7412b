/**
 * Stream simulation objects of a process app whose wire is TCP, run by the daemon in a
 * worker thread of their own (`stream-so-worker.ts`, supervised by
 * {@link SimulationSupervisor}), so that an SO that loops, leaks or crashes fails its
 * connections without stalling the daemon: a worker that does not answer a ping within
 * the watchdog time, runs out of memory or dies is terminated, its connections are cut,
 * and the next connection starts a fresh one.
 *
 * Bytes cross to the worker and back with credit: at most `window` bytes per direction of
 * a connection wait on either side, so a slow reader slows the writer down the whole way
 * (socket, worker, libp2p stream) and nothing grows without bound.
 *
 * @example
 * ```ts
 * const sos = new StreamSimulations({ log }, { native: 2 })
 * await sos.load([{ module: '/…/past.js', version: 1 }]) // [1, 2]
 * const { in: toApp, out: toPeer } = sos.translate('serve', 1, peer, { in: fromPeer, out: fromApp })
 * ```
 */
import type { SimulationSpec } from '../ipc/index.js'
import { ChunkQueue, StreamSimulationError } from '../shim/index.js'
import type { ByteSource } from '../shim/index.js'
import type { Direction, FromStreamWorker, StreamWorkerSettings, ToStreamWorker } from './so-messages.js'
import { SimulationSupervisor } from './so-supervisor.js'
import type { SimulationWorkerComponents, SupervisedWork } from './so-supervisor.js'
import { moduleBeside } from './so-thread-start.js'

export type { Direction } from './so-messages.js'

/** What the stream SOs of one app need: a log line, and optionally how threads start (see the supervisor). */
export type StreamSimulationsComponents = SimulationWorkerComponents

/** How the stream SOs of one app are run. */
export interface StreamSimulationsInit {
  /** The app's own protocol version. */
  native: number
  /** Bytes per direction of a connection that may wait for the other side (default 256 KiB). */
  window?: number
  /** A worker that does not answer a ping for this long is terminated (default 5 s). */
  watchdogMs?: number
  /** Translated connections at once (default 256). */
  maxConnections?: number
  /** How long loading the SO modules may take (default 10 s). */
  loadTimeoutMs?: number
}

const WORKER_FILE = moduleBeside(import.meta.url, './stream-so-worker')
const CHAIN_URL = moduleBeside(import.meta.url, '../shim/stream-chain').href
const QUEUE_URL = moduleBeside(import.meta.url, '../shim/chunk-queue').href

/** Pieces bytes are cut into on their way to the worker and back. */
const MAX_CHUNK = 64 * 1024
const DIRECTIONS: Direction[] = ['in', 'out']

/** A copy of `length` bytes of `chunk` from `offset`, in a buffer of its own (one that can be transferred). */
function copyOf (chunk: Uint8Array, offset: number, length: number): Uint8Array {
  const piece = new Uint8Array(Math.min(length, chunk.byteLength - offset))
  piece.set(chunk.subarray(offset, offset + piece.byteLength))
  return piece
}

interface Connection extends SupervisedWork {
  peer: string
  output: Record<Direction, ChunkQueue>
  /** Bytes posted to the worker that its chain has not taken yet. */
  unread: Record<Direction, number>
  waiting: Record<Direction, (() => void) | undefined>
  ended: Set<Direction>
  closed: boolean
}

/** A process app's stream simulation objects, and the worker that runs them. */
export class StreamSimulations {
  private readonly init: Required<StreamSimulationsInit>
  private readonly log: (line: string) => void
  private readonly supervisor: SimulationSupervisor<Connection>
  private closed = false

  constructor (components: StreamSimulationsComponents, init: StreamSimulationsInit) {
    this.init = { window: 256 * 1024, watchdogMs: 5000, maxConnections: 256, loadTimeoutMs: 10_000, ...init }
    this.log = components.log
    const settings: StreamWorkerSettings = { window: this.init.window, maxChunk: MAX_CHUNK }
    this.supervisor = new SimulationSupervisor(components, {
      native: init.native,
      worker: WORKER_FILE,
      modules: { chain: CHAIN_URL, queue: QUEUE_URL },
      settings,
      noun: 'connection',
      // no time limit per connection: one may stay open, idle, as long as its apps like
      watchdogMs: this.init.watchdogMs,
      loadTimeoutMs: this.init.loadTimeoutMs,
      maxOldGenerationSizeMb: 128,
      error: (message, name) => new StreamSimulationError(message, name),
      onMessage: m => { this.receive(m) }
    })
  }

  /** The versions the app speaks with its SOs. */
  get spoken (): number[] {
    return this.supervisor.spoken
  }

  /** Load these SOs (replacing those loaded before; open connections keep theirs); resolves with the versions then spoken. */
  async load (specs: SimulationSpec[]): Promise<number[]> {
    return await this.supervisor.load(specs)
  }

  /**
   * Translate one connection: `sources.in` are the peer's bytes, `sources.out` the app's;
   * the answer's `in` is what the app reads, `out` what the peer reads. `kind` is `serve`
   * for a peer that connected in `version`, `call` for the app connecting to a peer in `version`.
   */
  translate (kind: 'serve' | 'call', version: number, peer: string, sources: Record<Direction, ByteSource>): Record<Direction, ByteSource> & { abort: (err: Error) => void } {
    if (this.closed) throw new StreamSimulationError('the app is stopping', 'SimulationError')
    if (!this.spoken.includes(version)) throw new StreamSimulationError(`this node cannot speak protocol version ${version} (it speaks ${this.spoken.join(', ')})`, 'UnsupportedVersionError')
    if (this.supervisor.size >= this.init.maxConnections) throw new StreamSimulationError(`${this.init.maxConnections} connections are being translated already`, 'SimulationBusyError')
    const { id, work: conn } = this.supervisor.open(id => this.connection(id, peer))
    this.post({ t: 'open', id, kind, version, peer })
    for (const dir of DIRECTIONS) {
      this.pump(id, conn, dir, sources[dir]).catch((err: Error) => { this.fail(id, err, false) })
    }
    return { in: conn.output.in, out: conn.output.out, abort: err => { this.fail(id, err, false) } }
  }

  private connection (id: number, peer: string): Connection {
    const bound = this.init.window + MAX_CHUNK
    const conn: Connection = {
      peer,
      output: {
        in: new ChunkQueue(bound, bytes => { this.post({ t: 'credit', id, dir: 'in', bytes }) }, () => { this.abandon(id) }),
        out: new ChunkQueue(bound, bytes => { this.post({ t: 'credit', id, dir: 'out', bytes }) }, () => { this.abandon(id) })
      },
      unread: { in: 0, out: 0 },
      waiting: { in: undefined, out: undefined },
      ended: new Set(),
      closed: false,
      // its worker went (stuck, crashed, stopped): the supervisor has let go of it already
      fail: err => { this.cut(id, conn, err) }
    }
    return conn
  }

  /** Feed one direction's bytes to the worker, within the window. */
  private async pump (id: number, conn: Connection, dir: Direction, source: ByteSource): Promise<void> {
    for await (const chunk of source) {
      for (let offset = 0; offset < chunk.byteLength; offset += MAX_CHUNK) {
        while (!conn.closed && conn.unread[dir] >= this.init.window) await new Promise<void>(resolve => { conn.waiting[dir] = resolve })
        if (conn.closed) return
        const piece = copyOf(chunk, offset, MAX_CHUNK)
        conn.unread[dir] += piece.byteLength
        this.supervisor.post({ t: 'data', id, dir, chunk: piece } satisfies ToStreamWorker, [piece.buffer as ArrayBuffer])
      }
    }
    if (!conn.closed) this.post({ t: 'end', id, dir })
  }

  private post (message: ToStreamWorker): void {
    this.supervisor.post(message)
  }

  private receive (raw: unknown): void {
    const m = raw as Partial<FromStreamWorker>
    const { id, dir } = m as { id?: unknown, dir?: unknown }
    const conn = typeof id === 'number' ? this.supervisor.get(id) : undefined
    if (conn == null || typeof id !== 'number') return
    if (m.t === 'failed') {
      this.fail(id, new StreamSimulationError(`simulation object failed: ${String(m.message).slice(0, 1000)}`, typeof m.name === 'string' && /^\w{1,64}$/.test(m.name) ? m.name : 'SimulationError'))
      return
    }
    if (dir !== 'in' && dir !== 'out') return
    if (m.t === 'data' && m.chunk instanceof Uint8Array) {
      conn.output[dir].push(m.chunk)
      if (conn.output[dir].closed && !conn.ended.has(dir)) this.fail(id, new StreamSimulationError('the simulation objects sent more than their window', 'SimulationError'))
    } else if (m.t === 'end') {
      conn.ended.add(dir)
      conn.output[dir].end()
      if (conn.ended.size === 2) this.forget(id, conn)
    } else if (m.t === 'consumed' && typeof m.bytes === 'number') {
      conn.unread[dir] = Math.max(0, conn.unread[dir] - m.bytes)
      conn.waiting[dir]?.()
      conn.waiting[dir] = undefined
    }
  }

  private forget (id: number, conn: Connection): void {
    conn.closed = true
    this.supervisor.settle(id)
    for (const dir of DIRECTIONS) {
      conn.waiting[dir]?.()
      conn.waiting[dir] = undefined
    }
  }

  /** The reader of a direction stopped: the worker drops the connection. */
  private abandon (id: number): void {
    const conn = this.supervisor.get(id)
    if (conn == null) return
    this.cut(id, conn, new StreamSimulationError('the connection was closed', 'SimulationError'))
  }

  /** A connection failed: both directions end with `err`, logged once when it failed here. */
  private fail (id: number, err: Error, here = true): void {
    const conn = this.supervisor.get(id)
    if (conn == null) return
    if (here) this.log(`a connection with ${conn.peer} failed in the stream simulation objects: ${err.name}: ${err.message}`)
    this.cut(id, conn, err)
  }

  /** End a connection here and in the worker: what reads either direction gets `err`. */
  private cut (id: number, conn: Connection, err: Error): void {
    if (conn.closed) return
    this.forget(id, conn)
    this.post({ t: 'close', id })
    for (const dir of DIRECTIONS) conn.output[dir].fail(err)
  }

  /** Stop the worker; open connections are cut. */
  async close (): Promise<void> {
    this.closed = true
    await this.supervisor.stop('the app stopped')
  }
}
