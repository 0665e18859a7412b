/**
 * The worker's half of the supervision of simulation objects (the daemon's half is
 * `so-supervisor.ts`): it says it is up, answers pings at once — so the daemon can tell
 * an SO that loops, which blocks this thread, from one that is slow — and loads the SO
 * modules into a fresh chain of its kind on every `load`. Everything else goes to the
 * kind's own handler (`so-worker.ts` for HTTP messages, `stream-so-worker.ts` for streams).
 *
 * It imports nothing of upgossip: a worker run from the sources could not follow a `.js`
 * import to its `.ts` file, so workers import this module by the URL in their workerData.
 *
 * @example
 * ```ts
 * const { superviseThread } = await import(data.modules.thread) as typeof SoThread
 * const thread = superviseThread({ chain: native => new Chain(native), shape: asSO, receive: m => { … } })
 * thread.post({ t: 'result', id, ok: true, value })
 * ```
 */
import { pathToFileURL } from 'node:url'
import { parentPort } from 'node:worker_threads'
import type { SupervisorMessage, ThreadMessage } from './so-messages.js'

/** A chain of SOs as the loop builds it. */
export interface LoadableChain<SO> {
  add: (so: SO) => void
  spoken: () => number[]
}

/** What one kind of SO worker gives the loop. */
export interface ThreadKind<SO extends { version: number }, Chain extends LoadableChain<SO>, In> {
  /** An empty chain for a node whose own version is `native`; `timeoutMs` limits one SO call where the kind has such a limit. */
  chain: (native: number, timeoutMs: number) => Chain
  /** A module's default export as an SO of this kind; throws a named error when it is not one. */
  shape: (value: unknown, where: string) => SO
  /** A message that is not the supervisor's. */
  receive: (message: In) => void
}

/** The loop, as the kind's handler uses it. */
export interface SupervisedThread<Chain, Out> {
  /** Post to the daemon's thread (`transfer`: buffers handed over, not copied). */
  post: (message: Out, transfer?: ArrayBuffer[]) => void
  /** The chain of the last load; none before the first. */
  chain: () => Chain | undefined
  /** Resolves once every load asked for so far is done (work that comes first waits for it). */
  loaded: () => Promise<void>
}

/** Run the supervision loop on this worker's port. */
export function superviseThread<SO extends { version: number }, Chain extends LoadableChain<SO>, In, Out> (kind: ThreadKind<SO, Chain, In>): SupervisedThread<Chain, Out> {
  const port = parentPort
  if (port == null) throw new Error('a simulation-object worker runs as a worker thread')
  let chain: Chain | undefined
  let loading: Promise<void> = Promise.resolve()
  const post = (message: Out | ThreadMessage, transfer: ArrayBuffer[] = []): void => { port.postMessage(message, transfer) }

  async function load (n: number, native: number, timeoutMs: number, specs: Array<{ module: string, version: number }>): Promise<void> {
    const next = kind.chain(native, timeoutMs)
    const errors: string[] = []
    for (const spec of specs) {
      try {
        const mod = await import(spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href) as { default?: unknown }
        const so = kind.shape(mod.default, spec.module)
        if (so.version !== spec.version) throw new Error(`${spec.module} simulates version ${so.version}, expected ${spec.version}`)
        next.add(so)
      } catch (err) {
        const message = String((err as Error | undefined)?.message ?? err)
        // the daemon's log names the module, once
        errors.push(message.includes(spec.module) ? message : `${spec.module}: ${message}`)
      }
    }
    chain = next
    post({ t: 'loaded', n, spoken: next.spoken(), errors })
  }

  port.on('message', (m: SupervisorMessage | In) => {
    const own = m as Partial<SupervisorMessage>
    if (own.t === 'ping') {
      post({ t: 'pong', n: (m as { n: number }).n })
    } else if (own.t === 'load') {
      const { n, native, timeoutMs, specs } = m as Extract<SupervisorMessage, { t: 'load' }>
      // one after the other: the daemon waits for each answer in turn
      loading = loading.then(async () => { await load(n, native, timeoutMs, specs) }).catch((err: unknown) => {
        post({ t: 'loaded', n, spoken: [native], errors: [`the simulation objects could not be loaded: ${String((err as Error | undefined)?.message ?? err)}`] })
      })
    } else {
      kind.receive(m as In)
    }
  })
  post({ t: 'up' })
  return { post, chain: () => chain, loaded: async () => { await loading } }
}
