/**
 * The worker thread that runs a process app's HTTP simulation objects for the daemon
 * (`so-runner.ts`): it serves and calls through their chain, with the chain's time limit
 * per SO call; `local` and `remote` go back to the daemon's thread. Starting, pings and
 * loading are the supervision loop's (`so-thread.ts`).
 *
 * It imports nothing of upgossip at load (run from the sources, a `.js` import would not
 * find its `.ts` file): the loop and the chain come by URL in `workerData`.
 */
import { workerData } from 'node:worker_threads'
import type * as ChainModule from '../ipc/simulation-chain.js'
import type { SimulationChain, SimulationObject } from '../ipc/simulation-chain.js'
import type { FromMessageWorker, SimulationWorkerData, ToMessageWorker } from './so-messages.js'
import type * as ThreadModule from './so-thread.js'

const data = workerData as SimulationWorkerData<undefined, 'chain'>
const { superviseThread } = await import(data.modules.thread) as typeof ThreadModule
const chains = await import(data.modules.chain) as typeof ChainModule

let nextCallback = 1
const callbacks = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()

const thread = superviseThread<SimulationObject, SimulationChain, ToMessageWorker, FromMessageWorker>({
  chain: (native, timeoutMs) => new chains.SimulationChain(native, timeoutMs),
  shape: (value, where) => chains.asSimulationObject(value, where),
  receive
})

/** Ask the daemon's thread to deliver `request` (to the app, or to the peer). */
async function back (id: number, kind: 'local' | 'remote', request: unknown): Promise<unknown> {
  const callback = nextCallback++
  return await new Promise((resolve, reject) => {
    callbacks.set(callback, { resolve, reject })
    try {
      thread.post({ t: kind, id, callback, request })
    } catch (err) {
      // a request an SO built that cannot cross to the daemon (a function in it, say) fails that request
      callbacks.delete(callback)
      reject(err instanceof Error ? err : new Error(String(err)))
    }
  })
}

function reply (id: number, run: () => Promise<unknown>): void {
  const failed = (err: Error): void => { thread.post({ t: 'result', id, ok: false, error: { name: String(err?.name ?? 'Error'), message: String(err?.message ?? err) } }) }
  // work that comes with a load (a fresh worker's first) waits for the SOs
  thread.loaded().then(run).then(value => {
    try {
      thread.post({ t: 'result', id, ok: true, value })
    } catch (err) {
      failed(new chains.SimulationError(`a simulation object answered with what cannot be sent: ${(err as Error).message}`))
    }
  }, failed)
}

function receive (m: ToMessageWorker): void {
  switch (m.t) {
    case 'serve':
      reply(m.id, async () => await chainOf(m.version).serve(m.version, m.request, async r => await back(m.id, 'local', r)))
      return
    case 'call':
      reply(m.id, async () => await chainOf(m.target).call(m.target, m.request, async r => await back(m.id, 'remote', r)))
      return
    case 'back': {
      const cb = callbacks.get(m.callback)
      if (cb == null) return
      callbacks.delete(m.callback)
      if (m.ok) cb.resolve(m.value)
      else cb.reject(new chains.SimulationError(m.error?.message ?? 'failed', m.error?.name ?? 'Error'))
    }
  }
}

/** The chain loaded last, to speak `version`. */
function chainOf (version: number): SimulationChain {
  const chain = thread.chain()
  if (chain == null) throw new chains.SimulationError(`this node cannot speak protocol version ${version} (no simulation objects are loaded)`, 'UnsupportedVersionError')
  return chain
}
