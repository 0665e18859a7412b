/**
 * Stream simulation objects of a process app whose wire is TCP, run by the daemon in a
 * worker thread of their own (`stream-so-worker.ts`), so that an SO that loops, leaks or
 * crashes fails its connections without stalling the daemon: a worker that does not
 * answer a ping within the watchdog time, runs out of memory or dies is terminated, its
 * connections are cut, and the next connection starts a fresh one.
 *
 * Bytes cross to the worker and back with credit: at most `window` bytes per direction of
 * a connection wait on either side, so a slow reader slows the writer down the whole way
 * (socket, worker, libp2p stream) and nothing grows without bound.
 *
 * @example
 * ```ts
 * const sos = new StreamSimulations({ native: 2, log })
 * await sos.load([{ module: '/…/past.js', version: 1 }]) // [1, 2]
 * const { in: toApp, out: toPeer } = sos.translate('serve', 1, peer, { in: fromPeer, out: fromApp })
 * ```
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { SimulationSpec } from '../ipc/index.js'
import { ChunkQueue, StreamSimulationError } from '../shim/index.js'
import type { ByteSource } from '../shim/index.js'

/** The two directions of a connection: `in` towards the app, `out` away from it. */
export type Direction = 'in' | 'out'

/** What the worker is started with. */
export interface StreamWorkerData {
  chainUrl: string
  queueUrl: string
  window: number
  maxChunk: number
}

/** Messages to the worker. */
export type ToStreamWorker =
  | { t: 'load', native: number, specs: SimulationSpec[] }
  | { t: 'open', id: number, kind: 'serve' | 'call', version: number, peer: string }
  | { t: 'data', id: number, dir: Direction, chunk: Uint8Array }
  | { t: 'end', id: number, dir: Direction }
  | { t: 'credit', id: number, dir: Direction, bytes: number }
  | { t: 'close', id: number }
  | { t: 'ping', n: number }

/** Messages from the worker. */
export type FromStreamWorker =
  /** Started: it answers pings from now on. */
  | { t: 'up' }
  | { t: 'loaded', spoken: number[], errors: string[] }
  | { t: 'data', id: number, dir: Direction, chunk: Uint8Array }
  | { t: 'end', id: number, dir: Direction }
  | { t: 'consumed', id: number, dir: Direction, bytes: number }
  | { t: 'failed', id: number, name: string, message: string }
  | { t: 'pong', n: number }

/** What the stream SOs of one app need. */
export interface StreamSimulationsInit {
  /** The app's own protocol version. */
  native: number
  /** A line for the app's log (`app.log`). */
  log: (line: string) => void
  /** Bytes per direction of a connection that may wait for the other side (default 256 KiB). */
  window?: number
  /** A worker that does not answer a ping for this long is terminated (default 5 s). */
  watchdogMs?: number
  /** Translated connections at once (default 256). */
  maxConnections?: number
  /** How long loading the SO modules may take (default 10 s). */
  loadTimeoutMs?: number
}

/** Compiled: the `.js` files beside; from the sources (tests): the `.ts` files. */
function sibling (name: string): URL {
  return [new URL(`${name}.js`, import.meta.url), new URL(`${name}.ts`, import.meta.url)].find(u => existsSync(fileURLToPath(u))) as URL
}
const WORKER_FILE = sibling('./stream-so-worker')
const CHAIN_URL = sibling('../shim/stream-chain').href
const QUEUE_URL = sibling('../shim/chunk-queue').href

/** Pieces bytes are cut into on their way to the worker and back. */
const MAX_CHUNK = 64 * 1024
const DIRECTIONS: Direction[] = ['in', 'out']

/** A copy of `length` bytes of `chunk` from `offset`, in a buffer of its own (one that can be transferred). */
function copyOf (chunk: Uint8Array, offset: number, length: number): Uint8Array {
  const piece = new Uint8Array(Math.min(length, chunk.byteLength - offset))
  piece.set(chunk.subarray(offset, offset + piece.byteLength))
  return piece
}

interface Connection {
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
  /** The versions the app speaks with its SOs. */
  spoken: number[]
  private readonly init: Required<StreamSimulationsInit>
  private worker: Worker | undefined
  private specs: SimulationSpec[] = []
  private readonly connections = new Map<number, Connection>()
  private nextId = 1
  private loaded: ((answer: { spoken: number[], errors: string[] }) => void) | undefined
  /** Loads one after the other: the worker answers each in turn. */
  private loads: Promise<unknown> = Promise.resolve()
  private watchdog: NodeJS.Timeout | undefined
  private pings = 0
  private pongs = 0
  private lastPong = 0
  /** The worker has said it started. */
  private up = false
  private closed = false

  constructor (init: StreamSimulationsInit) {
    this.init = { window: 256 * 1024, watchdogMs: 5000, maxConnections: 256, loadTimeoutMs: 10_000, ...init }
    this.spoken = [init.native]
  }

  /** Load these SOs (replacing those loaded before; open connections keep theirs); resolves with the versions then spoken. */
  async load (specs: SimulationSpec[]): Promise<number[]> {
    const next = this.loads.then(async () => await this.loadNow(specs))
    this.loads = next.catch(() => {})
    return await next
  }

  private async loadNow (specs: SimulationSpec[]): Promise<number[]> {
    if (this.closed) return this.spoken
    this.specs = specs
    if (specs.length === 0 && this.worker == null) {
      this.spoken = [this.init.native]
      return this.spoken
    }
    const worker = this.ensureWorker(false)
    const answer = await new Promise<{ spoken: number[], errors: string[] } | undefined>(resolve => {
      const timer = setTimeout(() => { this.loaded = undefined; resolve(undefined) }, this.init.loadTimeoutMs)
      this.loaded = a => { clearTimeout(timer); resolve(a) }
      worker.postMessage({ t: 'load', native: this.init.native, specs } satisfies ToStreamWorker)
    })
    if (answer == null) {
      this.init.log(`--- the stream simulation objects did not load within ${this.init.loadTimeoutMs} ms; the app speaks protocol ${this.init.native} only`)
      this.kill(new StreamSimulationError('the simulation objects did not load in time', 'SimulationTimeoutError'))
      this.spoken = [this.init.native]
      return this.spoken
    }
    for (const e of answer.errors.slice(0, 20)) this.init.log(`--- simulation object not loaded: ${e}`)
    const spoken = answer.spoken
    const native = this.init.native
    // a contiguous run around the native version: nothing in the worker can make us claim more
    const valid = spoken.includes(native) && spoken.length <= 64 && spoken.every((v, i) => Number.isInteger(v) && (i === 0 || v === (spoken[i - 1] as number) + 1))
    this.spoken = valid ? spoken : [native]
    return this.spoken
  }

  /**
   * Translate one connection: `sources.in` are the peer's bytes, `sources.out` the app's;
   * the answer's `in` is what the app reads, `out` what the peer reads. `kind` is `serve`
   * for a peer that connected in `version`, `call` for the app connecting to a peer in `version`.
   */
  translate (kind: 'serve' | 'call', version: number, peer: string, sources: Record<Direction, ByteSource>): Record<Direction, ByteSource> & { abort: (err: Error) => void } {
    if (this.closed) throw new StreamSimulationError('the app is stopping', 'SimulationError')
    if (!this.spoken.includes(version)) throw new StreamSimulationError(`this node cannot speak protocol version ${version} (it speaks ${this.spoken.join(', ')})`, 'UnsupportedVersionError')
    if (this.connections.size >= this.init.maxConnections) throw new StreamSimulationError(`${this.init.maxConnections} connections are being translated already`, 'SimulationBusyError')
    const worker = this.ensureWorker()
    const id = this.nextId++
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
      closed: false
    }
    this.connections.set(id, conn)
    worker.postMessage({ t: 'open', id, kind, version, peer } satisfies ToStreamWorker)
    for (const dir of DIRECTIONS) {
      this.pump(id, conn, dir, sources[dir]).catch((err: Error) => { this.fail(id, err, false) })
    }
    return { in: conn.output.in, out: conn.output.out, abort: err => { this.fail(id, err, false) } }
  }

  /** Feed one direction's bytes to the worker, within the window. */
  private async pump (id: number, conn: Connection, dir: Direction, source: ByteSource): Promise<void> {
    for await (const chunk of source) {
      for (let offset = 0; offset < chunk.byteLength; offset += MAX_CHUNK) {
        while (!conn.closed && conn.unread[dir] >= this.init.window) await new Promise<void>(resolve => { conn.waiting[dir] = resolve })
        if (conn.closed) return
        const piece = copyOf(chunk, offset, MAX_CHUNK)
        conn.unread[dir] += piece.byteLength
        this.worker?.postMessage({ t: 'data', id, dir, chunk: piece } satisfies ToStreamWorker, [piece.buffer as ArrayBuffer])
      }
    }
    if (!conn.closed) this.post({ t: 'end', id, dir })
  }

  private post (message: ToStreamWorker): void {
    this.worker?.postMessage(message)
  }

  /** The worker, started if need be; a new one loads the SOs loaded before unless `reload` is false. */
  private ensureWorker (reload = true): Worker {
    if (this.worker != null) return this.worker
    const data: StreamWorkerData = { chainUrl: CHAIN_URL, queueUrl: QUEUE_URL, window: this.init.window, maxChunk: MAX_CHUNK }
    const worker = new Worker(WORKER_FILE, { workerData: data, resourceLimits: { maxOldGenerationSizeMb: 128 }, stdout: true, stderr: true })
    this.worker = worker
    for (const out of [worker.stdout, worker.stderr]) out.on('data', (d: Buffer) => { this.init.log(String(d).trimEnd().slice(0, 4000)) })
    worker.on('message', (m: unknown) => { if (this.worker === worker) this.onMessage(m) })
    worker.on('error', err => { if (this.worker === worker) this.kill(new StreamSimulationError(`the worker running the simulation objects failed: ${err.message}`, 'SimulationError')) })
    worker.on('exit', code => { if (this.worker === worker) this.kill(new StreamSimulationError(`the worker running the simulation objects exited (${code})`, 'SimulationError')) })
    // a connection opened now goes to a fresh worker: it loads what was loaded before
    if (reload && this.specs.length > 0) worker.postMessage({ t: 'load', native: this.init.native, specs: this.specs } satisfies ToStreamWorker)
    this.pings = 0
    this.pongs = 0
    this.up = false
    this.lastPong = Date.now()
    this.watchdog = setInterval(() => { this.checkWorker() }, Math.max(50, Math.floor(this.init.watchdogMs / 5)))
    this.watchdog.unref()
    return worker
  }

  /** Ping the worker; one that has not answered for the watchdog time is stuck (an SO that loops) and is terminated. */
  private checkWorker (): void {
    if (this.worker == null) return
    // a worker that is starting has the load's time to do so (a loaded machine is slow to start threads)
    const limit = this.up ? this.init.watchdogMs : this.init.loadTimeoutMs
    if (this.pongs < this.pings && Date.now() - this.lastPong > limit) {
      this.kill(new StreamSimulationError(`the simulation objects did not answer for ${this.init.watchdogMs} ms (an SO that loops?) and were stopped`, 'SimulationTimeoutError'))
      return
    }
    if (this.pongs === this.pings) this.post({ t: 'ping', n: ++this.pings })
  }

  private onMessage (raw: unknown): void {
    // an SO runs in the worker and could post anything: only well-formed messages count
    const m = raw as Partial<FromStreamWorker> | null
    if (m == null || typeof m !== 'object') return
    if (m.t === 'up') {
      this.up = true
      this.lastPong = Date.now()
      return
    }
    if (m.t === 'pong') {
      this.pongs = this.pings
      this.lastPong = Date.now()
      return
    }
    if (m.t === 'loaded') {
      const { spoken, errors } = m as { spoken?: unknown, errors?: unknown }
      this.loaded?.({ spoken: Array.isArray(spoken) ? spoken.filter((v): v is number => typeof v === 'number') : [], errors: Array.isArray(errors) ? errors.map(String) : [] })
      this.loaded = undefined
      return
    }
    const { id, dir } = m as { id?: unknown, dir?: unknown }
    const conn = typeof id === 'number' ? this.connections.get(id) : undefined
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
    this.connections.delete(id)
    for (const dir of DIRECTIONS) {
      conn.waiting[dir]?.()
      conn.waiting[dir] = undefined
    }
  }

  /** The reader of a direction stopped: the worker drops the connection. */
  private abandon (id: number): void {
    const conn = this.connections.get(id)
    if (conn == null) return
    this.forget(id, conn)
    this.post({ t: 'close', id })
    for (const dir of DIRECTIONS) conn.output[dir].fail(new StreamSimulationError('the connection was closed', 'SimulationError'))
  }

  /** A connection failed: both directions end with `err`, logged once when it failed here. */
  private fail (id: number, err: Error, here = true): void {
    const conn = this.connections.get(id)
    if (conn == null) return
    if (here) this.init.log(`--- a connection with ${conn.peer} failed in the stream simulation objects: ${err.name}: ${err.message}`)
    this.forget(id, conn)
    this.post({ t: 'close', id })
    for (const dir of DIRECTIONS) conn.output[dir].fail(err)
  }

  /** Terminate the worker: every connection it carried fails with `err`. */
  private kill (err: Error): void {
    const worker = this.worker
    this.worker = undefined
    clearInterval(this.watchdog)
    this.loaded?.({ spoken: [this.init.native], errors: [err.message] })
    this.loaded = undefined
    if (worker != null) void worker.terminate()
    if (this.connections.size > 0) this.init.log(`--- ${err.message}; ${this.connections.size} connection(s) cut`)
    for (const [id, conn] of [...this.connections]) {
      this.forget(id, conn)
      for (const dir of DIRECTIONS) conn.output[dir].fail(err)
    }
  }

  /** Stop the worker; open connections are cut. */
  async close (): Promise<void> {
    this.closed = true
    const worker = this.worker
    this.kill(new StreamSimulationError('the app stopped', 'SimulationError'))
    await worker?.terminate()
  }
}
