/**
 * The worker thread that runs one process app's stream simulation objects (wire "tcp"):
 * it loads the SO modules, and for every translated connection runs the chain's two
 * transforms on the chunks the daemon posts, posting what they yield back. Both ways
 * are bounded by credit: the daemon posts at most a window of bytes the chain has not
 * taken yet, and this side posts at most a window the daemon has not written on yet.
 * It answers pings, so the daemon can tell an SO that loops from one that is slow, and
 * terminate it.
 *
 * It imports nothing of upgossip at load (run from the sources, a `.js` import would not
 * find its `.ts` file): the chain and the queue come by URL in `workerData`.
 */
import { pathToFileURL } from 'node:url'
import { parentPort, workerData } from 'node:worker_threads'
import type * as ChunkQueueModule from '../shim/chunk-queue.js'
import type { ChunkQueue } from '../shim/chunk-queue.js'
import type * as StreamChainModule from '../shim/stream-chain.js'
import type { StreamSimulationChain } from '../shim/stream-chain.js'
import type { Direction, FromStreamWorker, StreamWorkerData, ToStreamWorker } from './stream-so-runner.js'

const data = workerData as StreamWorkerData
const chainModule = await import(data.chainUrl) as typeof StreamChainModule
const queueModule = await import(data.queueUrl) as typeof ChunkQueueModule

interface Connection {
  inbox: Record<Direction, ChunkQueue>
  /** Bytes posted to the daemon and not yet written on by it, per direction. */
  outstanding: Record<Direction, number>
  waiting: Record<Direction, (() => void) | undefined>
  closed: boolean
}

const DIRECTIONS: Direction[] = ['in', 'out']
const port = parentPort
let chain: StreamSimulationChain | undefined
let loading: Promise<void> = Promise.resolve()
const connections = new Map<number, Connection>()

function post (message: FromStreamWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer)
}

async function load (native: number, specs: Array<{ module: string, version: number }>): Promise<void> {
  const next = new chainModule.StreamSimulationChain(native)
  const errors: string[] = []
  for (const spec of specs) {
    try {
      const mod = await import(spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href) as { default?: unknown }
      const so = chainModule.asStreamSimulationObject(mod.default, spec.module)
      if (so.version !== spec.version) throw new Error(`${spec.module} simulates version ${so.version}, expected ${spec.version}`)
      next.add(so)
    } catch (err) {
      errors.push(String((err as Error)?.message ?? err))
    }
  }
  chain = next
  post({ t: 'loaded', spoken: next.spoken(), errors })
}

function close (id: number, conn: Connection): void {
  if (conn.closed) return
  conn.closed = true
  connections.delete(id)
  for (const dir of DIRECTIONS) {
    conn.inbox[dir].fail(new Error('the connection was closed'))
    conn.waiting[dir]?.()
  }
}

function fail (id: number, conn: Connection, err: unknown): void {
  if (conn.closed) return
  post({ t: 'failed', id, name: String((err as Error)?.name ?? 'Error'), message: String((err as Error)?.message ?? err) })
  close(id, conn)
}

/** One direction: the transform's output, cut into pieces of at most `maxChunk`, posted within the window. */
async function run (id: number, conn: Connection, dir: Direction, transform: (source: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>): Promise<void> {
  for await (const chunk of transform(conn.inbox[dir])) {
    for (let offset = 0; offset < chunk.byteLength; offset += data.maxChunk) {
      while (!conn.closed && conn.outstanding[dir] >= data.window) await new Promise<void>(resolve => { conn.waiting[dir] = resolve })
      if (conn.closed) return
      // a copy in a buffer of its own, which can be transferred (a Buffer's may be a shared pool)
      const piece = new Uint8Array(Math.min(data.maxChunk, chunk.byteLength - offset))
      piece.set(chunk.subarray(offset, offset + piece.byteLength))
      conn.outstanding[dir] += piece.byteLength
      post({ t: 'data', id, dir, chunk: piece }, [piece.buffer])
    }
  }
  if (!conn.closed) post({ t: 'end', id, dir })
}

function open (m: Extract<ToStreamWorker, { t: 'open' }>): void {
  const conn: Connection = {
    inbox: {
      in: new queueModule.ChunkQueue(data.window + data.maxChunk, bytes => { post({ t: 'consumed', id: m.id, dir: 'in', bytes }) }),
      out: new queueModule.ChunkQueue(data.window + data.maxChunk, bytes => { post({ t: 'consumed', id: m.id, dir: 'out', bytes }) })
    },
    outstanding: { in: 0, out: 0 },
    waiting: { in: undefined, out: undefined },
    closed: false
  }
  connections.set(m.id, conn)
  // chunks that arrive before the SOs are loaded wait in the inboxes
  void loading.then(() => {
    if (conn.closed) return
    try {
      if (chain == null) throw new Error('no simulation objects are loaded')
      const directions = m.kind === 'serve' ? chain.serve(m.version, { peer: m.peer }) : chain.call(m.version, { peer: m.peer })
      for (const dir of DIRECTIONS) run(m.id, conn, dir, directions[dir]).catch(err => { fail(m.id, conn, err) })
    } catch (err) {
      fail(m.id, conn, err)
    }
  })
}

port?.on('message', (m: ToStreamWorker) => {
  switch (m.t) {
    case 'load':
      loading = loading.then(async () => { await load(m.native, m.specs) })
      return
    case 'open':
      open(m)
      return
    case 'ping':
      post({ t: 'pong', n: m.n })
      return
  }
  const conn = connections.get(m.id)
  if (conn == null) return
  switch (m.t) {
    case 'data':
      conn.inbox[m.dir].push(m.chunk)
      return
    case 'end':
      conn.inbox[m.dir].end()
      return
    case 'credit':
      conn.outstanding[m.dir] = Math.max(0, conn.outstanding[m.dir] - m.bytes)
      conn.waiting[m.dir]?.()
      conn.waiting[m.dir] = undefined
      return
    case 'close':
      close(m.id, conn)
  }
})
post({ t: 'up' })
