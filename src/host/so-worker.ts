/**
 * The worker thread that runs a process app's simulation objects for the daemon: it
 * loads the SO modules, and serves and calls through their chain; `local` and `remote`
 * go back to the daemon's thread. A worker per app version, so an SO that loops, leaks or
 * throws fails its own requests and is restarted, while the daemon goes on.
 */
import { parentPort } from 'node:worker_threads'
import { pathToFileURL } from 'node:url'
import { SimulationChain, SimulationError, asSimulationObject } from '../ipc/index.js'
import type { SimulationSpec } from '../ipc/index.js'
import type { RunnerMessage, WorkerMessage } from './so-messages.js'

const port = parentPort
if (port == null) throw new Error('so-worker.js runs as a worker thread')

let chain = new SimulationChain(1)
let nextCallback = 1
const callbacks = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()

function post (message: WorkerMessage): void {
  port?.postMessage(message)
}

/** Ask the daemon's thread to deliver `request` (to the app, or to the peer). */
async function back (id: number, kind: 'local' | 'remote', request: unknown): Promise<unknown> {
  const callback = nextCallback++
  return await new Promise((resolve, reject) => {
    callbacks.set(callback, { resolve, reject })
    post({ t: kind, id, callback, request })
  })
}

async function load (native: number, timeoutMs: number, simulations: SimulationSpec[]): Promise<void> {
  const next = new SimulationChain(native, timeoutMs)
  const errors: string[] = []
  for (const spec of simulations) {
    try {
      const mod = await import(pathToFileURL(spec.module).href) as { default?: unknown }
      const so = asSimulationObject(mod.default, spec.module)
      if (so.version !== spec.version) throw new SimulationError(`${spec.module} simulates version ${so.version}, expected ${spec.version}`)
      next.add(so)
    } catch (err) {
      errors.push(`${spec.module}: ${(err as Error).message}`)
    }
  }
  chain = next
  post({ t: 'loaded', spoken: chain.spoken(), errors })
}

function reply (id: number, run: Promise<unknown>): void {
  run.then(
    value => { post({ t: 'result', id, ok: true, value }) },
    (err: Error) => { post({ t: 'result', id, ok: false, error: { name: err.name, message: err.message } }) }
  )
}

port.on('message', (m: RunnerMessage) => {
  switch (m.t) {
    case 'ping':
      post({ t: 'pong' })
      return
    case 'load':
      void load(m.native, m.timeoutMs, m.simulations)
      return
    case 'serve':
      reply(m.id, chain.serve(m.version, m.request, async r => await back(m.id, 'local', r)))
      return
    case 'call':
      reply(m.id, chain.call(m.target, m.request, async r => await back(m.id, 'remote', r)))
      return
    case 'back': {
      const cb = callbacks.get(m.callback)
      if (cb == null) return
      callbacks.delete(m.callback)
      if (m.ok) cb.resolve(m.value)
      else cb.reject(new SimulationError(m.error?.message ?? 'failed', m.error?.name ?? 'Error'))
    }
  }
})
