/**
 * The worker thread that runs one process app's stream simulation objects (wire "tcp"):
 * for every translated connection it runs the chain's two transforms on the chunks the
 * daemon posts, posting what they yield back. Both ways are bounded by credit: the daemon
 * posts at most a window of bytes the chain has not taken yet, and this side posts at most
 * a window the daemon has not written on yet. Starting, pings and loading are the
 * supervision loop's (`so-thread.ts`).
 *
 * It imports nothing of upgossip at load (run from the sources, a `.js` import would not
 * find its `.ts` file): the loop, the chain and the queue come by URL in `workerData`.
 */
import { workerData } from 'node:worker_threads'
import type * as ChunkQueueModule from '../shim/chunk-queue.js'
import type { ChunkQueue } from '../shim/chunk-queue.js'
import type * as StreamChainModule from '../shim/stream-chain.js'
import type { StreamSimulationChain, StreamSimulationObject } from '../shim/stream-chain.js'
import type { Direction, FromStreamWorker, SimulationWorkerData, StreamWorkerSettings, ToStreamWorker } from './so-messages.js'
import type * as ThreadModule from './so-thread.js'

const data = workerData as SimulationWorkerData<StreamWorkerSettings, 'chain' | 'queue'>
const { superviseThread } = await import(data.modules.thread) as typeof ThreadModule
const chainModule = await import(data.modules.chain) as typeof StreamChainModule
const queueModule = await import(data.modules.queue) as typeof ChunkQueueModule
const { window, maxChunk } = data.settings

interface Connection {
  inbox: Record<Direction, ChunkQueue>
  /** Bytes posted to the daemon and not yet written on by it, per direction. */
  outstanding: Record<Direction, number>
  waiting: Record<Direction, (() => void) | undefined>
  closed: boolean
}

const DIRECTIONS: Direction[] = ['in', 'out']
const connections = new Map<number, Connection>()

const thread = superviseThread<StreamSimulationObject, StreamSimulationChain, ToStreamWorker, FromStreamWorker>({
  chain: native => new chainModule.StreamSimulationChain(native),
  shape: (value, where) => chainModule.asStreamSimulationObject(value, where),
  receive
})

function post (message: FromStreamWorker, transfer: ArrayBuffer[] = []): void {
  thread.post(message, transfer)
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
    for (let offset = 0; offset < chunk.byteLength; offset += maxChunk) {
      while (!conn.closed && conn.outstanding[dir] >= window) await new Promise<void>(resolve => { conn.waiting[dir] = resolve })
      if (conn.closed) return
      // a copy in a buffer of its own, which can be transferred (a Buffer's may be a shared pool)
      const piece = new Uint8Array(Math.min(maxChunk, chunk.byteLength - offset))
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
      in: new queueModule.ChunkQueue(window + maxChunk, bytes => { post({ t: 'consumed', id: m.id, dir: 'in', bytes }) }),
      out: new queueModule.ChunkQueue(window + maxChunk, bytes => { post({ t: 'consumed', id: m.id, dir: 'out', bytes }) })
    },
    outstanding: { in: 0, out: 0 },
    waiting: { in: undefined, out: undefined },
    closed: false
  }
  connections.set(m.id, conn)
  // chunks that arrive before the SOs are loaded wait in the inboxes
  void thread.loaded().then(() => {
    if (conn.closed) return
    try {
      const chain = thread.chain()
      if (chain == null) throw new chainModule.StreamSimulationError(`this node cannot speak protocol version ${m.version} (no simulation objects are loaded)`, 'UnsupportedVersionError')
      const directions = m.kind === 'serve' ? chain.serve(m.version, { peer: m.peer }) : chain.call(m.version, { peer: m.peer })
      for (const dir of DIRECTIONS) run(m.id, conn, dir, directions[dir]).catch(err => { fail(m.id, conn, err) })
    } catch (err) {
      fail(m.id, conn, err)
    }
  })
}

function receive (m: ToStreamWorker): void {
  if (m.t === 'open') {
    open(m)
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
}
