/**
 * `upgossip/app` — what an app imports. The daemon starts the app as a child process
 * and maps this module to its own SDK, so packages never bundle it.
 *
 * @example
 * ```js
 * import { connect } from 'upgossip/app'
 * const node = await connect()
 * node.serve(async (request, from) => ({ ok: true, echo: request }))
 * await node.ready()
 * ```
 */
import { IPC_PROTOCOL_VERSION } from '../host/ipc.js'
import type { AppMessage, HostMessage, IpcError } from '../host/ipc.js'

/** Handles one request in this app's own protocol version. */
export type RequestHandler = (request: unknown, from: string) => unknown

/** The app's view of its peer. */
export interface AppNode {
  /** Handle requests from other peers (and from `upgossip call`). */
  serve: (handler: RequestHandler) => void
  /** Call the app on another peer (or on this one, with this peer's id or null). */
  call: (peerId: string | null, request: unknown) => Promise<unknown>
  /** Peer ids that run this app, whatever their version. */
  peers: () => Promise<string[]>
  /** Where this version keeps its persistent state. */
  readonly stateDir: string
  /** This app's version. */
  readonly version: string
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

/** An error a remote app or the daemon returned. */
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
  const send = (message: AppMessage): void => { process.send?.(message) }
  // the daemon going away ends the app
  process.on('disconnect', () => process.exit(0))

  let handler: RequestHandler | undefined
  // requests that arrive before serve() wait for it (the daemon bounds how long)
  const early: Array<Extract<HostMessage, { t: 'request' }>> = []
  const waiting = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  const shutdownHooks: Array<() => unknown> = []
  let nextId = 1

  const handle = (message: Extract<HostMessage, { t: 'request' }>): void => {
    const { id, from, request } = message
    Promise.resolve().then(() => (handler as RequestHandler)(request, from)).then(
      value => { send({ t: 'response', id, ok: true, value }) },
      err => { send({ t: 'response', id, ok: false, error: toIpcError(err) }) }
    )
  }

  let resolveInit: (m: Extract<HostMessage, { t: 'init' }>) => void = () => {}
  let rejectInit: (e: Error) => void = () => {}
  const init = new Promise<Extract<HostMessage, { t: 'init' }>>((resolve, reject) => { resolveInit = resolve; rejectInit = reject })

  process.on('message', (message: HostMessage) => {
    switch (message?.t) {
      case 'init':
        if (message.v !== IPC_PROTOCOL_VERSION) rejectInit(new Error(`upgossip/app: the daemon speaks IPC protocol ${message.v}, this SDK ${IPC_PROTOCOL_VERSION}`))
        else resolveInit(message)
        return
      case 'request':
        if (handler == null) early.push(message)
        else handle(message)
        return
      case 'call-result': {
        const pending = waiting.get(message.id)
        waiting.delete(message.id)
        if (message.ok) pending?.resolve(message.value)
        else pending?.reject(new AppCallError(message.error.message, message.error.name))
        return
      }
      case 'peers-result': {
        const pending = waiting.get(message.id)
        waiting.delete(message.id)
        pending?.resolve(message.peers)
        return
      }
      case 'shutdown':
        Promise.allSettled(shutdownHooks.map(async hook => { await hook() })).then(() => { send({ t: 'shutdown-done' }) }, () => {})
    }
  })

  send({ t: 'hello', v: IPC_PROTOCOL_VERSION })
  const { stateDir, version, peerId, config } = await init

  const ask = async (message: (id: number) => AppMessage): Promise<unknown> => {
    const id = nextId++
    return await new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject })
      send(message(id))
    })
  }

  return {
    serve: (h) => {
      handler = h
      send({ t: 'serving' })
      for (const m of early.splice(0)) handle(m)
    },
    call: async (peerId, request) => await ask(id => ({ t: 'call', id, peer: peerId, request })),
    peers: async () => await ask(id => ({ t: 'peers', id })) as string[],
    stateDir,
    version,
    peerId,
    config,
    ready: async () => { send({ t: 'ready' }) },
    unhealthy: (reason) => { send({ t: 'unhealthy', reason: String(reason) }) },
    onShutdown: (hook) => { shutdownHooks.push(hook) }
  }
}
