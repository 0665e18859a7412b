/**
 * The IPC hop of a call: what one side queues in one turn of its event loop goes out as one
 * batch (a value that cannot be serialised fails only its own message), and the daemon sends
 * an app's `call` only while its version is still the route to that peer — otherwise it
 * answers `RouteChangedError`, and the app learns the route again.
 */
import os from 'node:os'
import path from 'node:path'
import { serialize } from 'node:v8'
import { describe, expect, it } from 'vitest'
import { AppProcess } from '../../src/host/index.js'
import type { AppProcessInit, Route } from '../../src/host/index.js'
import { MessageBatch, ROUTE_CHANGED } from '../../src/ipc/index.js'
import type { HostMessage } from '../../src/ipc/index.js'

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
    const init: AppProcessInit = {
      app: 'kv',
      version: '1.0.0',
      packageDir: os.tmpdir(),
      main: 'server.js',
      stateDir: path.join(os.tmpdir(), 'state'),
      config: null,
      peerId: 'self',
      logFile: path.join(os.tmpdir(), 'app.log'),
      protocol: 1,
      simulations: [],
      onRoute: async () => route,
      onSend: async (peer, version, request) => { sends.push({ peer, version, request }); return { answered: request } },
      onPeers: () => []
    }
    const proc = new AppProcess(init)
    const flat = (m: HostMessage): void => { if (m.t === 'batch') m.messages.forEach(flat); else sent.push(m) }
    Object.assign(proc, { child: { connected: true, pid: 1, send: flat } })
    return { proc, sent, sends }
  }

  const onMessage = (proc: AppProcess, m: unknown): void => { (proc as unknown as { onMessage: (m: unknown) => void }).onMessage(m) }
  const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await turn() }

  it('is sent when its version is still the route', async () => {
    const { proc, sent, sends } = appProcess({ self: false, version: 2 })
    onMessage(proc, { t: 'call', id: 7, peer: 'P', version: 2, request: { op: 'get' } })
    await settle()
    expect(sends).toEqual([{ peer: 'P', version: 2, request: { op: 'get' } }])
    expect(sent).toEqual([{ t: 'send-result', id: 7, ok: true, value: { answered: { op: 'get' } } }])
  })

  it('is not sent when the route changed: the app hears RouteChangedError', async () => {
    const { proc, sent, sends } = appProcess({ self: false, version: 3 })
    onMessage(proc, { t: 'call', id: 8, peer: 'P', version: 2, request: { op: 'get' } })
    await settle()
    expect(sends).toEqual([])
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ t: 'send-result', id: 8, ok: false, error: { name: ROUTE_CHANGED } })
  })
})
