/**
 * `POST /call` with `protocol` on a process app: the answer is the app's HTTP response,
 * printed as `upgossip call` prints one made without `protocol` (body as text), not bytes
 * that JSON would turn into `{ "0": …, "1": … }`.
 */
import { describe, expect, it } from 'vitest'
import { Operator } from '../../src/daemon/operator.js'
import type { OperatorComponents } from '../../src/daemon/operator.js'
import { ProcessApp } from '../../src/host/index.js'
import { ProtocolCallError } from '../../src/daemon/errors.js'

function operator (current: unknown, answer: unknown, spoken = [1, 2]): { op: Operator, seen: unknown[] } {
  const seen: unknown[] = []
  const host = {
    current,
    isHolding: false,
    spoken,
    request: async (_from: string, request: unknown, version?: number) => { seen.push({ request, version }); return answer }
  }
  const c = { host, self: () => 'self', clock: { now: () => Date.now() } } as unknown as OperatorComponents
  return { op: new Operator(c, { callTimeoutMs: 1000 }), seen }
}

/** `peer` null: this peer's own app. */
const toSelf: string | null = null

const processApp = (): ProcessApp => new ProcessApp({
  app: 'pykv',
  version: '2.0.0',
  packageDir: '/nonexistent',
  stateDir: '/nonexistent',
  protocol: 2,
  run: { command: ['python3', 'server.py'], wire: 'http' },
  simulations: [],
  peerId: 'self',
  logFile: '/nonexistent/app.log',
  proxyUrl: 'http://upgossip:x@127.0.0.1:1',
  onRoute: async () => ({ self: true, version: 2 }),
  onSend: async () => null
})

describe('POST /call with protocol', () => {
  it('a process app: the HTTP response with its body as text', async () => {
    const { op, seen } = operator(processApp(), { status: 200, headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode('blue') })
    const request = { method: 'GET', path: '/kv/colour' }
    expect(await op.call(toSelf, request, 1)).toEqual({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'blue' })
    expect(seen).toEqual([{ request, version: 1 }])
  })

  it('a process app: a body that is not UTF-8 as base64', async () => {
    const { op } = operator(processApp(), { status: 200, headers: {}, body: new Uint8Array([0xff, 0xfe]) })
    expect(await op.call(toSelf, { method: 'GET', path: '/x' }, 2)).toEqual({ status: 200, headers: {}, bodyBase64: '//4=' })
  })

  it('an SDK app: the answer as the app gave it', async () => {
    const { op } = operator({ running: true }, { value: 'blue' })
    expect(await op.call(toSelf, { op: 'get', key: 'colour' }, 1)).toEqual({ value: 'blue' })
  })

  it('a protocol the app does not speak is refused', async () => {
    const { op } = operator({ running: true }, null, [2])
    await expect(op.call(toSelf, {}, 1)).rejects.toBeInstanceOf(ProtocolCallError)
  })
})
