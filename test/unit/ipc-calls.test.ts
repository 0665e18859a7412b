/**
 * The IPC hop of a call: what one side queues in one turn of its event loop goes out as one
 * batch (a value that cannot be serialised fails only its own message), and the daemon sends
 * an app's `call` only while its version is still the route to that peer — otherwise it
 * answers `RouteChangedError`, and the app learns the route again. Last, an SDK app in a
 * real child process (the SDK of src/, see sdk-from-source.mjs): the route of a peer changes
 * between two of its calls, and the second call succeeds through the SDK's one retry.
 */
import path from 'node:path'
import { serialize } from 'node:v8'
import { afterEach, describe, expect, it } from 'vitest'
import { AppProcess } from '../../src/host/index.js'
import type { Route } from '../../src/host/index.js'
import { MessageBatch, ROUTE_CHANGED } from '../../src/ipc/index.js'
import type { HostMessage } from '../../src/ipc/index.js'
import { tempDir, writeTree } from '../helpers.js'
import { appProcessInit, fromApp, stubbedAppProcess } from './app-process-stub.js'

const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

describe('IPC batches', () => {
  it('messages queued in one turn go as one batch, in order; a lone message goes by itself', async () => {
    const written: unknown[] = []
    const batch = new MessageBatch<{ n: number }>(m => { written.push(m) })
    for (let n = 1; n <= 3; n++) batch.push({ n })
    expect(written).toEqual([])
    await turn()
    expect(written).toEqual([{ t: 'batch', messages: [{ n: 1 }, { n: 2 }, { n: 3 }] }])
    batch.push({ n: 4 })
    await turn()
    expect(written.at(-1)).toEqual({ n: 4 })
  })

  it('a value that cannot be serialised fails its own message only', async () => {
    const written: unknown[] = []
    const failed: number[] = []
    // as process.send does: serialising a function throws
    const batch = new MessageBatch<{ n: number, value?: unknown }>(m => { serialize(m); written.push(m) })
    batch.push({ n: 1 })
    batch.push({ n: 2, value: () => {} }, () => { failed.push(2) })
    batch.push({ n: 3 })
    await turn()
    expect(failed).toEqual([2])
    expect(written).toEqual([{ n: 1 }, { n: 3 }])
  })
})

describe('an app\'s call through the daemon', () => {
  function appProcess (route: Route): { proc: AppProcess, sent: HostMessage[], sends: unknown[] } {
    const sent: HostMessage[] = []
    const sends: unknown[] = []
    const init = appProcessInit({
      protocol: 1,
      onRoute: async () => route,
      onSend: async (peer, version, request) => { sends.push({ peer, version, request }); return { answered: request } }
    })
    const flat = (m: HostMessage): void => { if (m.t === 'batch') m.messages.forEach(flat); else sent.push(m) }
    return { proc: stubbedAppProcess(init, { connected: true, send: flat }), sent, sends }
  }

  const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await turn() }

  it('is sent when its version is still the route', async () => {
    const { proc, sent, sends } = appProcess({ self: false, version: 2 })
    fromApp(proc, { t: 'call', id: 7, peer: 'P', version: 2, request: { op: 'get' } })
    await settle()
    expect(sends).toEqual([{ peer: 'P', version: 2, request: { op: 'get' } }])
    expect(sent).toEqual([{ t: 'send-result', id: 7, ok: true, value: { answered: { op: 'get' } } }])
  })

  it('is not sent when the route changed: the app hears RouteChangedError', async () => {
    const { proc, sent, sends } = appProcess({ self: false, version: 3 })
    fromApp(proc, { t: 'call', id: 8, peer: 'P', version: 2, request: { op: 'get' } })
    await settle()
    expect(sends).toEqual([])
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ t: 'send-result', id: 8, ok: false, error: { name: ROUTE_CHANGED } })
  })
})

describe('an SDK app in its own process, when the route to a peer changes between its calls', () => {
  // the app: protocol 2, speaking 1 too through its past SO, which wraps what it sends a v1 peer
  const APP = {
    'server.js': "import { connect } from 'upgossip/app'\nconst node = await connect()\nnode.serve(async () => null)\nawait node.ready()\n",
    'so/past.js': 'export default { version: 1, async serve (req, local) { return await local(req) }, async call (req, remote) { return await remote({ v1: req }) } }\n'
  }
  const SDK_FROM_SOURCE = { NODE_OPTIONS: `--experimental-transform-types --disable-warning=ExperimentalWarning --import ${new URL('./sdk-from-source.mjs', import.meta.url).href}` }
  let proc: AppProcess | undefined
  afterEach(async () => { await proc?.stop() })

  /** The app started, its calls going by `onRoute`; what it sends is kept in `sends` and answered with the version it went in. */
  async function started (onRoute: () => Route): Promise<{ proc: AppProcess, sends: unknown[] }> {
    const dir = await tempDir('upgossip-route-')
    await writeTree(path.join(dir, 'pkg'), APP)
    const sends: unknown[] = []
    proc = new AppProcess(appProcessInit({
      protocol: 2,
      packageDir: path.join(dir, 'pkg'),
      stateDir: path.join(dir, 'state'),
      logFile: path.join(dir, 'app.log'),
      simulations: [{ module: path.join(dir, 'pkg', 'so', 'past.js'), version: 1 }],
      env: SDK_FROM_SOURCE,
      onRoute: async () => onRoute(),
      onSend: async (peer, version, request) => { sends.push({ peer, version, request }); return { answeredIn: version } }
    }))
    proc.start()
    await proc.waitReady(15_000)
    return { proc, sends }
  }

  it('the call after the peer switched goes out once, in its new version, through the SDK\'s retry', async () => {
    let route: Route = { self: false, version: 1 }
    const { proc, sends } = await started(() => route)
    expect(await proc.callOut('P', { op: 'get' })).toEqual({ answeredIn: 1 })
    // P switched to protocol 2: the route the app remembers (1) no longer holds
    route = { self: false, version: 2 }
    expect(await proc.callOut('P', { op: 'get' })).toEqual({ answeredIn: 2 })
    expect(sends).toEqual([
      { peer: 'P', version: 1, request: { v1: { op: 'get' } } },
      { peer: 'P', version: 2, request: { op: 'get' } }
    ])
  })

  it('retries once only: a route that changes at every look fails the call with RouteChangedError, nothing sent', async () => {
    let looks = 0
    const { proc, sends } = await started(() => ({ self: false, version: 1 + (looks++ % 2) }))
    await expect(proc.callOut('P', { op: 'get' })).rejects.toMatchObject({ name: ROUTE_CHANGED })
    // the app's look, the daemon's check (changed), the app's second look, the daemon's check (changed again)
    expect(looks).toBe(4)
    expect(sends).toEqual([])
  })
})
