/**
 * `upgossip/app` — what an app imports. The daemon starts the app as a child process
 * and maps this module to its own SDK, so packages never bundle it. Requests of other
 * protocol versions reach the app's handler through simulation objects, which the SDK
 * loads next to the app; the app only ever sees its own version.
 *
 * @example
 * ```js
 * import { connect } from 'upgossip/app'
 * const node = await connect()
 * node.serve(async (request, from) => ({ ok: true, echo: request }))
 * await node.ready()
 * ```
 */
import { pathToFileURL } from 'node:url'
import { IPC_PROTOCOL_VERSION, MessageBatch, ROUTE_CHANGED, isBatch } from '../ipc/index.js'
import type { AppMessage, HostMessage, IpcError, IpcResult, Route, SimulationSpec } from '../ipc/index.js'
import { SimulationChain, asSimulationObject } from './chain.js'

export { SimulationChain, SimulationError } from './chain.js'
export type { SimulationObject } from './chain.js'

/** Handles one request in this app's own protocol version. */
export type RequestHandler = (request: unknown, from: string) => unknown

/** The app's view of its peer. */
export interface AppNode {
  /** Handle requests from other peers (and from `upgossip call`), in this app's own version. */
  serve: (handler: RequestHandler) => void
  /**
   * Call the app on another peer (or this one, with its id or null), whatever its version;
   * with `{ app }`, a peer of another class, in the protocol this version's manifest names
   * in `calls` (the callee's simulation objects translate it).
   */
  call: (peerId: string | null, request: unknown, options?: { app?: string }) => Promise<unknown>
  /** Peer ids that run this app (or `{ app }`, another class), whatever their version. */
  peers: (options?: { app?: string }) => Promise<string[]>
  /** Where this version keeps its persistent state. */
  readonly stateDir: string
  /** This app's version. */
  readonly version: string
  /** This app's protocol version. */
  readonly protocol: number
  /** This peer's id. */
  readonly peerId: string
  /** Per-peer settings from the daemon's `--app-config FILE`. */
  readonly config: unknown
  /** Health: the daemon waits for this after a start. */
  ready: () => Promise<void>
  /** Report this app unhealthy (a new version that does this is rolled back). */
  unhealthy: (reason: string) => void
  /** Run before the app is stopped (drain). */
  onShutdown: (hook: () => unknown) => void
}

/** An error a remote app, a simulation object or the daemon returned. */
export class AppCallError extends Error {
  constructor (message: string, readonly code: string) {
    super(message)
    this.name = code
  }
}

function toIpcError (err: unknown): IpcError {
  return { name: (err as Error)?.name ?? 'Error', message: String((err as Error)?.message ?? err) }
}

let connected: Promise<AppNode> | undefined

/** Connect to the daemon that started this process. Call once; later calls return the same node. */
export async function connect (): Promise<AppNode> {
  connected ??= connectOnce()
  return await connected
}

async function connectOnce (): Promise<AppNode> {
  if (process.send == null) throw new Error('upgossip/app: this process was not started by an upgossip daemon (no IPC channel)')
  // what is queued in one turn of the event loop goes to the daemon as one message
  const batch = new MessageBatch<AppMessage>(message => { process.send?.(message) })
  const send = (message: AppMessage): void => {
    batch.push(message, err => {
      // a value IPC cannot carry (a function, a symbol): answer with an error instead
      if ('id' in message && (message.t === 'response' || message.t === 'call-out-result')) {
        batch.push({ t: message.t, id: message.id, ok: false, error: { name: 'UnencodableValueError', message: `the answer cannot be sent: ${err.message}` } })
      }
    })
  }
  // the daemon going away ends the app
  process.on('disconnect', () => process.exit(0))

  let handler: RequestHandler | undefined
  let nowServing: () => void = () => {}
  const serving = new Promise<void>(resolve => { nowServing = resolve })
  // assigned once connect() has the protocol; handlers that run before then see undefined
  // eslint-disable-next-line prefer-const
  let chain: SimulationChain | undefined
  // requests that arrive before serve() (or before the simulation objects load) wait
  const early: Array<Extract<HostMessage, { t: 'request' }>> = []
  const waiting = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  const shutdownHooks: Array<() => unknown> = []
  let nextId = 1

  // `upgossip call` may arrive before connect() has returned: it waits for the node
  // eslint-disable-next-line prefer-const
  let node: AppNode | undefined
  const earlyCalls: Array<Extract<HostMessage, { t: 'call-out' }>> = []
  const callOut = (message: Extract<HostMessage, { t: 'call-out' }>): void => {
    (node as AppNode).call(message.peer, message.request).then(
      value => { send({ t: 'call-out-result', id: message.id, ok: true, value }) },
      err => { send({ t: 'call-out-result', id: message.id, ok: false, error: toIpcError(err) }) }
    )
  }

  /** Answer request `id` with what `answering` gives (a throw, even a synchronous one, is the answer too). */
  const answer = async (id: number, answering: () => unknown): Promise<void> => {
    try {
      send({ t: 'response', id, ok: true, value: await answering() })
    } catch (err) {
      send({ t: 'response', id, ok: false, error: toIpcError(err) })
    }
  }
  const handle = (message: Extract<HostMessage, { t: 'request' }>): void => {
    const { id, from, request } = message
    const version = message.version ?? (chain as SimulationChain).native
    if (version === (chain as SimulationChain).native) {
      // the app's own version: straight to its handler (a throw is its answer, as from the chain)
      void answer(id, () => (handler as RequestHandler)(request, from))
      return
    }
    const local = async (r: unknown): Promise<unknown> => await (handler as RequestHandler)(r, from)
    void answer(id, () => (chain as SimulationChain).serve(version, request, local))
  }

  const loadSimulations = async (specs: SimulationSpec[]): Promise<void> => {
    const errors: string[] = []
    for (const spec of specs) {
      try {
        const mod = await import(spec.module.startsWith('file:') ? spec.module : pathToFileURL(spec.module).href) as { default?: unknown }
        const so = asSimulationObject(mod.default, spec.module)
        if (so.version !== spec.version) throw new Error(`${spec.module} simulates version ${so.version}, expected ${spec.version}`)
        chain?.add(so)
      } catch (err) {
        errors.push(String((err as Error).message))
      }
    }
    send({ t: 'simulations-loaded', spoken: chain?.spoken() ?? [], errors })
  }

  let resolveInit: (m: Extract<HostMessage, { t: 'init' }>) => void = () => {}
  let rejectInit: (e: Error) => void = () => {}
  const init = new Promise<Extract<HostMessage, { t: 'init' }>>((resolve, reject) => { resolveInit = resolve; rejectInit = reject })

  const settle = (message: IpcResult): void => {
    const pending = waiting.get(message.id)
    waiting.delete(message.id)
    if (message.ok) pending?.resolve(message.value)
    else pending?.reject(new AppCallError(message.error.message, message.error.name))
  }

  const onOne = (message: HostMessage): void => {
    try {
      onMessage(message)
    } catch (err) {
      // one bad message must not end the app
      process.stderr.write(`upgossip/app: could not handle a ${String(message?.t)} message: ${(err as Error).message}\n`)
    }
  }
  process.on('message', (message: HostMessage) => {
    if (isBatch(message)) for (const m of message.messages) onOne(m)
    else onOne(message)
  })

  function onMessage (message: HostMessage): void {
    switch (message?.t) {
      case 'init':
        if (message.v !== IPC_PROTOCOL_VERSION) rejectInit(new Error(`upgossip/app: the daemon speaks IPC protocol ${message.v}, this SDK ${IPC_PROTOCOL_VERSION}`))
        else resolveInit(message)
        return
      case 'request':
        if (handler == null || chain == null) early.push(message)
        else handle(message)
        return
      case 'simulations':
        void loadSimulations(message.simulations)
        return
      case 'route-result':
      case 'send-result':
        settle(message)
        return
      case 'peers-result': {
        const pending = waiting.get(message.id)
        waiting.delete(message.id)
        pending?.resolve(message.peers)
        return
      }
      case 'call-out':
        if (node == null) earlyCalls.push(message)
        else callOut(message)
        return
      case 'shutdown':
        Promise.allSettled(shutdownHooks.map(async hook => { await hook() })).then(() => { send({ t: 'shutdown-done' }) }, () => {})
    }
  }

  send({ t: 'hello', v: IPC_PROTOCOL_VERSION })
  const { app, stateDir, version, protocol, peerId, config, simulations } = await init
  chain = new SimulationChain(protocol)
  await loadSimulations(simulations)

  // a message IPC cannot carry fails the question it asked
  const unsendable = (id: number) => (err: Error): void => {
    const pending = waiting.get(id)
    waiting.delete(id)
    pending?.reject(new AppCallError(`the request cannot be sent: ${err.message}`, 'UnencodableValueError'))
  }
  const ask = (message: (id: number) => AppMessage): Promise<unknown> => new Promise((resolve, reject) => {
    const id = nextId++
    waiting.set(id, { resolve, reject })
    batch.push(message(id), unsendable(id))
  })
  /** A call in `version` to `peer` (the route the app learnt), one round trip to the daemon. */
  const callAs = (peer: string, version: number, request: unknown): Promise<unknown> => ask(id => ({ t: 'call', id, peer, version, request }))
  /** A call to `peer` on a route in `version`: through the simulation objects between, or straight when it is this app's own. */
  const callOnRoute = async (peer: string, version: number, request: unknown): Promise<unknown> =>
    version === protocol ? await callAs(peer, version, request) : await chain.call(version, request, async r => await callAs(peer, version, r))

  // the route of each peer called (by class): every call after the first is one round trip
  // to the daemon, which sends it only if the route still holds (else ROUTE_CHANGED)
  const routes = new Map<string, Extract<Route, { self: false }>>()
  const routeOf = async (peer: string, other: string | undefined): Promise<Route> => {
    const key = other == null ? peer : `${other} ${peer}`
    const known = routes.get(key)
    if (known != null) return known
    const route = await ask(id => ({ t: 'route', id, peer, ...(other == null ? {} : { app: other }) })) as Route
    if (!route.self) {
      if (routes.size >= 4096) routes.clear()
      routes.set(key, route)
    }
    return route
  }
  const callOnce = async (peer: string, request: unknown, other: string | undefined): Promise<unknown> => {
    const route = await routeOf(peer, other)
    if (other != null) {
      // another class: sent as it is, in the protocol `calls` names; the callee translates
      if (route.self) throw new Error(`this peer does not run ${other}`)
      return await ask(id => ({ t: 'call', id, peer, version: route.version, request, app: other }))
    }
    // a call to this peer itself never leaves the process (and waits for serve(), like any request)
    if (route.self) {
      await serving
      return await (handler as RequestHandler)(request, peerId)
    }
    return await callOnRoute(peer, route.version, request)
  }

  node = {
    serve: (h) => {
      handler = h
      nowServing()
      send({ t: 'serving' })
      for (const m of early.splice(0)) handle(m)
    },
    call: async (peer, request, options) => {
      const other = options?.app != null && options.app !== app ? options.app : undefined
      if (peer == null || (other == null && peer === peerId)) {
        if (other != null) throw new AppCallError(`this peer runs ${app}, not ${other}`, 'WrongAppError')
        // a call to this peer itself never leaves the process (and waits for serve(), like any request)
        await serving
        return await (handler as RequestHandler)(request, peerId)
      }
      try {
        // the common case, a peer of this class whose route is known and needs no simulation object
        const known = other == null ? routes.get(peer) : undefined
        return known == null ? await callOnce(peer, request, other) : await callOnRoute(peer, known.version, request)
      } catch (err) {
        if ((err as Error).name !== ROUTE_CHANGED) throw err
        // a switch changed the route since it was learnt: learn it again, call anew (once)
        routes.delete(other == null ? peer : `${other} ${peer}`)
        return await callOnce(peer, request, other)
      }
    },
    peers: async options => await ask(id => ({ t: 'peers', id, ...(options?.app == null ? {} : { app: options.app }) })) as string[],
    stateDir,
    version,
    protocol,
    peerId,
    config,
    ready: async () => { send({ t: 'ready' }) },
    unhealthy: (reason) => { send({ t: 'unhealthy', reason: String(reason) }) },
    onShutdown: (hook) => { shutdownHooks.push(hook) }
  }
  for (const m of earlyCalls.splice(0)) callOut(m)
  return node
}
