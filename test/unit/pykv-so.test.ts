/**
 * The simulation objects of testnet/apps/pykv/v2 (past.js, future.js), module by module:
 * HTTP messages of protocol 1 and 2 translated both ways against stub apps and peers, as
 * the daemon will run them for a `wire: "http"` process app. No python3 needed (the
 * servers themselves are in pykv.test.ts), and the manifests' shape, since the project's
 * manifest schema does not know `run` yet.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'

const PYKV = fileURLToPath(new URL('../../testnet/apps/pykv/', import.meta.url))

interface Request { method: string, path: string, headers: Record<string, string>, body: Uint8Array }
interface Response { status: number, headers: Record<string, string>, body: Uint8Array }
type Send<M, R> = (message: M) => Promise<R>
interface SO {
  version: number
  serve: (request: Request, local: Send<Request, Response>) => Promise<Response>
  call: (request: Request, remote: Send<Request, Response>) => Promise<Response>
}

async function load (file: string): Promise<SO> {
  return (await import(pathToFileURL(path.join(PYKV, 'v2', file)).href) as { default: SO }).default
}
const past = await load('past.js')
const future = await load('future.js')

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)
const request = (method: string, p: string, body = '', headers: Record<string, string> = {}): Request =>
  ({ method, path: p, headers, body: bytes(body) })
const response = (status: number, body: string, headers: Record<string, string> = {}): Response =>
  ({ status, headers, body: bytes(body) })

/** A stub app or peer that records every message and answers from `answer`. */
function stub (answer: (req: Request) => Response): Send<Request, Response> & { seen: Request[] } {
  const seen: Request[] = []
  const send = async (req: Request): Promise<Response> => { seen.push(req); return answer(req) }
  return Object.assign(send, { seen })
}

describe('pykv: manifests', () => {
  it.each(['v1', 'v2'])('%s names a process app whose files are all there', async (v) => {
    const m = JSON.parse(await fs.readFile(path.join(PYKV, v, 'upgossip.json'), 'utf8'))
    expect(m).toMatchObject({ app: 'pykv', version: `${v.slice(1)}.0.0`, protocol: Number(v.slice(1)), run: { command: ['python3', 'server.py'], wire: 'http' }, health: { http: '/healthz' } })
    expect(m.main).toBeUndefined()
    const files = [m.run.command[1], ...Object.values(m.transform ?? {}).map(t => (t as { command: string[] }).command[1]), ...Object.values(m.simulation ?? {})]
    for (const f of files) await fs.access(path.join(PYKV, v, f as string))
  })

  it('v2 upgrades 1.x with command transforms and ships a past and a future SO', async () => {
    const m = JSON.parse(await fs.readFile(path.join(PYKV, 'v2', 'upgossip.json'), 'utf8'))
    expect(m.upgrades).toBe('^1.0.0')
    expect(m.transform).toEqual({ up: { command: ['python3', 'up.py'] }, down: { command: ['python3', 'down.py'] } })
    expect(m.simulation).toEqual({ past: 'past.js', future: 'future.js' })
    expect(past.version).toBe(1)
    expect(future.version).toBe(2)
  })
})

describe('pykv: simulation objects of 2.0.0', () => {
  it('a v1 PUT goes to v2 and back unchanged (past SO serving, future SO below it), replica flag included', async () => {
    // a v1 peer's copy reaches a v2 node (past.serve); for the round trip, "the v2 app" is a
    // 1.0.0 node behind the future SO, so what the v1 app at the end sees must be the original
    const v1App = stub(() => response(200, 'blåbær 🫐', { 'content-type': 'text/plain; charset=utf-8' }))
    const v2Seen: Request[] = []
    const asV2App = async (req2: Request): Promise<Response> => { v2Seen.push(req2); return await future.serve(req2, v1App) }
    const original = request('PUT', '/kv/users%2F42', 'blåbær 🫐', { 'x-replica': '1', 'content-type': 'text/plain' })

    const res1 = await past.serve(original, asV2App)

    expect(v2Seen).toHaveLength(1)
    const req2 = v2Seen[0] as Request
    expect(req2).toMatchObject({ method: 'PUT', path: '/v2/kv/users%2F42', headers: { 'content-type': 'application/json', 'x-replica': '1' } })
    expect(JSON.parse(text(req2.body))).toEqual({ value: 'blåbær 🫐' })
    const back = v1App.seen[0] as Request
    expect({ ...back, body: text(back.body) }).toMatchObject({ method: 'PUT', path: '/kv/users%2F42', headers: { 'x-replica': '1' }, body: 'blåbær 🫐' })
    expect(res1.status).toBe(200)
    expect(res1.headers['content-type']).toMatch(/^text\/plain/)
    expect(text(res1.body)).toBe('blåbær 🫐')
  })

  it('a client write (no x-replica) stays a client write, and a v1 GET becomes a v2 GET', async () => {
    const v2App = stub(() => response(200, JSON.stringify({ value: 'blue', updated: 5 }), { 'content-type': 'application/json' }))
    // a v1 value is text, even text that looks like JSON
    await past.serve(request('PUT', '/kv/colour', '{"value":"x"}'), v2App)
    expect(v2App.seen[0]?.headers['x-replica']).toBeUndefined()
    expect(JSON.parse(text(v2App.seen[0]?.body ?? bytes('')))).toEqual({ value: '{"value":"x"}' })

    const got = await past.serve(request('GET', '/kv/colour?x=1'), v2App)
    expect(v2App.seen[1]).toMatchObject({ method: 'GET', path: '/v2/kv/colour' })
    expect(got.status).toBe(200)
    expect(text(got.body)).toBe('blue')
  })

  it('a v2 response becomes a valid v1 response: 200 with the value as text, 404 with the error as text', async () => {
    // a 1.0.0 app calls a peer that already runs 2.0.0 (future.call)
    const v2Peer = stub(req => req.path.endsWith('/absent')
      ? response(404, JSON.stringify({ error: 'not found' }), { 'content-type': 'application/json' })
      : response(200, JSON.stringify({ value: 'ünïcode', updated: 1765000000000 }), { 'content-type': 'application/json' }))

    const ok = await future.call(request('GET', '/kv/colour'), v2Peer)
    expect(v2Peer.seen[0]).toMatchObject({ method: 'GET', path: '/v2/kv/colour' })
    expect(ok.status).toBe(200)
    expect(ok.headers).toEqual({ 'content-type': 'text/plain; charset=utf-8' })
    expect(ok.body).toBeInstanceOf(Uint8Array)
    expect(text(ok.body)).toBe('ünïcode')

    const absent = await future.call(request('GET', '/kv/absent'), v2Peer)
    expect(absent.status).toBe(404)
    expect(absent.headers['content-type']).toMatch(/^text\/plain/)
    expect(text(absent.body)).toBe('not found')

    await future.call(request('PUT', '/kv/colour', 'red', { 'x-replica': '1' }), v2Peer)
    expect(v2Peer.seen[2]).toMatchObject({ method: 'PUT', path: '/v2/kv/colour', headers: { 'x-replica': '1' } })
    expect(JSON.parse(text(v2Peer.seen[2]?.body ?? bytes('')))).toEqual({ value: 'red' })
  })

  it('a v2 app calling a v1 peer (past.call): JSON in, raw value out, and the v1 answer as v2 JSON', async () => {
    const v1Peer = stub(req => response(200, text(req.body), { 'content-type': 'text/plain; charset=utf-8' }))
    const res = await past.call(request('PUT', '/v2/kv/colour', JSON.stringify({ value: 'green', updated: 42 }), { 'x-replica': '1' }), v1Peer)
    expect(v1Peer.seen[0]).toMatchObject({ method: 'PUT', path: '/kv/colour', headers: { 'x-replica': '1' } })
    expect(text(v1Peer.seen[0]?.body ?? bytes(''))).toBe('green')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('application/json')
    // version 1 keeps no times: 0, as up.py writes
    expect(JSON.parse(text(res.body))).toEqual({ value: 'green', updated: 0 })
  })

  it('a v1 peer serving a v2 request (future.serve): the 404 of v1 becomes the JSON error of v2', async () => {
    const v1App = stub(() => response(404, 'not found'))
    const res = await future.serve(request('GET', '/v2/kv/nothing'), v1App)
    expect(v1App.seen[0]).toMatchObject({ method: 'GET', path: '/kv/nothing' })
    expect(res.status).toBe(404)
    expect(JSON.parse(text(res.body))).toEqual({ error: 'not found' })
  })

  it('refuses what it cannot translate (the daemon turns the error into a 502 for that request)', async () => {
    const never = stub(() => { throw new Error('not reached') })
    await expect(past.serve(request('GET', '/healthz'), never)).rejects.toThrow(/expected PUT or GET \/kv\/<key>/)
    await expect(past.serve(request('DELETE', '/kv/a'), never)).rejects.toThrow(/GET and PUT/)
    await expect(future.serve(request('PUT', '/v2/kv/a', '{"value":3}'), never)).rejects.toThrow(/string value/)
    await expect(future.serve(request('PUT', '/v2/kv/a', 'not json'), never)).rejects.toThrow()
    await expect(future.call(request('GET', '/kv/a'), stub(() => response(200, 'not json')))).rejects.toThrow()
    expect(never.seen).toHaveLength(0)
  })
})
