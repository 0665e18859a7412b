/**
 * The Python demo app of testnet/apps/pykv, run as the daemon will run it, without a daemon:
 * each version's server.py as a child process with a temporary state directory, a free
 * port, and a fake of the daemon's forward proxy (a small HTTP server that checks the proxy
 * credentials, answers `http://upgossip/peers` and records what the app sends to peers).
 * Then the transform commands on state the servers wrote, and the v2 simulation objects
 * against the real servers.
 *
 * Skipped when python3 is missing, except on CI (CI=true), where that fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers.js'

const PYKV = fileURLToPath(new URL('../../testnet/apps/pykv/', import.meta.url))
const PYTHON = spawnSync('python3', ['--version']).status === 0

// the fake daemon's view: this peer, one other peer of pykv, and a peer of another app
const USER = 'upgossip'
const TOKEN = 'tok3n:with/odd+chars'
const SELF_HOST = 'k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8'
const OTHER_HOST = 'k51qzi5uqu5dgutdk6i1ynyzgkqngpha5xpgia3a5qqp4jsh0u4csozksxel3r'
const STORE_HOST = 'k51qzi5uqu5dh9ihj4p2v5sl3hxvv27ryx2w0xrsv6jmmqi91t9xp8p0dcb5bk'

describe.runIf(!PYTHON && process.env.CI === 'true')('pykv on CI', () => {
  it('needs python3 (.ci/run installs it)', () => { expect.fail('python3 is not on PATH') })
})

interface Forwarded { method: string, url: string, headers: http.IncomingHttpHeaders, body: string }

/** A fake of the daemon's forward proxy. */
class FakeProxy {
  readonly forwarded: Forwarded[] = []
  refused = 0
  peerLookups = 0
  private readonly server = http.createServer((req, res) => { void this.handle(req, res) })

  async start (): Promise<void> {
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve))
  }

  get url (): string {
    const { port } = this.server.address() as AddressInfo
    return `http://${encodeURIComponent(USER)}:${encodeURIComponent(TOKEN)}@127.0.0.1:${port}`
  }

  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise(resolve => this.server.close(resolve))
  }

  private async handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks).toString('utf8')
    if (req.headers['proxy-authorization'] !== `Basic ${Buffer.from(`${USER}:${TOKEN}`).toString('base64')}`) {
      this.refused++
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="upgossip"' }).end()
      return
    }
    if (req.url === 'http://upgossip/peers') {
      this.peerLookups++
      const peer = (id: string, host: string, app: string): object => ({ id, host, app, version: '1.0.0', protocol: 1 })
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        self: '12D3KooWSelf',
        selfHost: SELF_HOST,
        peers: [peer('12D3KooWSelf', SELF_HOST, 'pykv'), peer('12D3KooWOther', OTHER_HOST, 'pykv'), peer('12D3KooWStore', STORE_HOST, 'store')]
      }))
      return
    }
    this.forwarded.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'text/plain' }).end(body)
  }
}

/** A port free a moment ago (the server binds it right after). */
async function freePort (): Promise<number> {
  const server = http.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

async function until<T> (what: string, check: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

interface App { child: ChildProcess, port: number, stderr: () => string, exited: Promise<number | null> }
const running = new Set<App>()

/** Start `python3 server.py` of a version the way the daemon does (cwd, environment), and wait for /healthz. */
async function startApp (version: string, state: string, proxy?: FakeProxy): Promise<App> {
  const port = await freePort()
  const child = spawn('python3', ['server.py'], {
    cwd: path.join(PYKV, version),
    env: {
      ...process.env,
      UPGOSSIP_PORT: String(port),
      UPGOSSIP_STATE: state,
      ...(proxy != null ? { UPGOSSIP_PROXY: proxy.url } : {}),
      UPGOSSIP_PEER_ID: '12D3KooWSelf',
      UPGOSSIP_APP: 'pykv',
      UPGOSSIP_APP_VERSION: `${version.slice(1)}.0.0`
    },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  const app = { child, port, stderr: () => stderr, exited }
  running.add(app)
  let gone = false
  void exited.then(() => { gone = true })
  await until(`${version} to answer /healthz`, async () => {
    if (gone) throw new Error(`server.py exited: ${stderr}`)
    const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined)
    return res?.status === 200 ? true : undefined
  })
  return app
}

/** SIGTERM, as the daemon stops an app; resolves with the exit code and how long it took. */
async function stopApp (app: App): Promise<{ code: number | null, ms: number }> {
  const t0 = Date.now()
  app.child.kill('SIGTERM')
  const code = await app.exited
  running.delete(app)
  return { code, ms: Date.now() - t0 }
}

afterEach(() => {
  for (const app of running) app.child.kill('SIGKILL')
  running.clear()
})

/** The two wire formats, as a client of each version uses them. */
const VERSIONS = [
  {
    dir: 'v1',
    kv: (key: string) => `/kv/${encodeURIComponent(key)}`,
    put: (value: string) => value,
    read: (body: string) => body,
    state: (entries: Record<string, string>) => entries
  },
  {
    dir: 'v2',
    kv: (key: string) => `/v2/kv/${encodeURIComponent(key)}`,
    put: (value: string) => JSON.stringify({ value }),
    read: (body: string) => (JSON.parse(body) as { value: string }).value,
    state: (entries: Record<string, string>) => Object.fromEntries(Object.entries(entries).map(([k, value]) => [k, { value, updated: expect.any(Number) }]))
  }
]

describe.skipIf(!PYTHON)('pykv: the servers', () => {
  let root: string
  let proxy: FakeProxy
  let runs = 0
  beforeAll(async () => {
    root = await tempDir('upgossip-pykv-')
    proxy = new FakeProxy()
    await proxy.start()
  })
  afterAll(async () => {
    await proxy.stop()
    await fs.rm(root, { recursive: true, force: true })
  })
  const stateDir = (): string => path.join(root, `state-${++runs}`)

  describe.each(VERSIONS)('$dir', (v) => {
    const put = async (app: App, key: string, value: string, headers: Record<string, string> = {}): Promise<Response> =>
      await fetch(`http://127.0.0.1:${app.port}${v.kv(key)}`, { method: 'PUT', body: v.put(value), headers })
    const get = async (app: App, key: string): Promise<string | null> => {
      const res = await fetch(`http://127.0.0.1:${app.port}${v.kv(key)}`)
      return res.status === 404 ? null : v.read(await res.text())
    }

    it('answers /healthz, stores and reads values, writes state.json atomically', async () => {
      const state = stateDir()
      const app = await startApp(v.dir, state)
      expect((await fetch(`http://127.0.0.1:${app.port}/healthz`)).status).toBe(200)
      expect(await get(app, 'colour')).toBeNull()
      const res = await put(app, 'colour', 'blue')
      expect(res.status).toBe(200)
      expect(v.read(await res.text())).toBe('blue')
      await put(app, 'users/42', 'ådä ✓')
      expect(await get(app, 'colour')).toBe('blue')
      expect(await get(app, 'users/42')).toBe('ådä ✓')
      expect(JSON.parse(await fs.readFile(path.join(state, 'state.json'), 'utf8'))).toEqual(v.state({ colour: 'blue', 'users/42': 'ådä ✓' }))
      expect(await fs.readdir(state)).toEqual(['state.json']) // no temporary file left behind
      expect((await fetch(`http://127.0.0.1:${app.port}/nowhere`)).status).toBe(404)
    })

    it('copies a client write to the other peer through the proxy, with its credentials and x-replica; never a replica', async () => {
      const app = await startApp(v.dir, stateDir(), proxy)
      const before = proxy.forwarded.length
      const refused = proxy.refused
      const lookups = proxy.peerLookups
      await put(app, 'from-a-peer', 'r', { 'x-replica': '1' }) // a copy: stored, not copied again
      expect(await get(app, 'from-a-peer')).toBe('r')
      await put(app, 'k/1', 'one')
      const copy = await until('the copy', () => proxy.forwarded.slice(before).find(f => f.url.includes('k%2F1')))
      expect(copy.method).toBe('PUT')
      expect(copy.url).toBe(`http://${OTHER_HOST}${v.kv('k/1')}`) // absolute-form, to the other pykv peer only
      expect(copy.headers['x-replica']).toBe('1')
      expect(copy.headers.host).toBe(OTHER_HOST)
      expect(v.read(copy.body)).toBe('one')
      if (v.dir === 'v2') expect(JSON.parse(copy.body)).toEqual({ value: 'one', updated: expect.any(Number) })
      await new Promise(resolve => setTimeout(resolve, 200))
      const sent = proxy.forwarded.slice(before)
      expect(sent.map(f => f.url)).toEqual([copy.url]) // not to itself, not to the other app, not the replica
      expect(proxy.refused - refused).toBe(0)
      expect(proxy.peerLookups - lookups).toBeGreaterThan(0)
      expect((await stopApp(app)).code).toBe(0)
    })

    it('keeps its state across a restart, and exits promptly on SIGTERM', async () => {
      const state = stateDir()
      const first = await startApp(v.dir, state)
      await put(first, 'colour', 'teal')
      const stopped = await stopApp(first)
      expect(stopped.code).toBe(0)
      expect(stopped.ms).toBeLessThan(2000)
      const second = await startApp(v.dir, state)
      expect(await get(second, 'colour')).toBe('teal')
      expect(second.stderr()).toMatch(/serving 1 keys/)
    })

    it('refuses to start on a damaged state (so the daemon sees it unhealthy) and leaves the file alone', async () => {
      const state = stateDir()
      await fs.mkdir(state)
      await fs.writeFile(path.join(state, 'state.json'), '{"colour": ')
      await expect(startApp(v.dir, state)).rejects.toThrow(/cannot load the state/)
      expect(await fs.readFile(path.join(state, 'state.json'), 'utf8')).toBe('{"colour": ')
    })
  })

  it('v2 keeps the newer of two writes (last writer wins by `updated`)', async () => {
    const app = await startApp('v2', stateDir())
    const write = async (value: string, updated: number): Promise<unknown> => await (await fetch(`http://127.0.0.1:${app.port}/v2/kv/k`, {
      method: 'PUT', body: JSON.stringify({ value, updated }), headers: { 'x-replica': '1' }
    })).json()
    expect(await write('new', 2000)).toEqual({ value: 'new', updated: 2000 })
    expect(await write('old', 1000)).toEqual({ value: 'new', updated: 2000 }) // a late copy does not undo it
    const bad = await fetch(`http://127.0.0.1:${app.port}/v2/kv/k`, { method: 'PUT', body: '"just a string"' })
    expect(bad.status).toBe(400)
  })
})

describe.skipIf(!PYTHON)('pykv: transforms and simulation objects on real servers', () => {
  let root: string
  beforeAll(async () => { root = await tempDir('upgossip-pykv-tf-') })
  afterAll(async () => { await fs.rm(root, { recursive: true, force: true }) })

  /** Run a transform command as the daemon does: in the package, UPGOSSIP_FROM and UPGOSSIP_TO set. */
  function transform (script: string, from: string, to: string): { status: number | null, stderr: string } {
    const r = spawnSync('python3', [script], { cwd: path.join(PYKV, 'v2'), env: { ...process.env, UPGOSSIP_FROM: from, UPGOSSIP_TO: to }, encoding: 'utf8' })
    return { status: r.status, stderr: r.stderr }
  }

  it('up.py then down.py round-trips what 1.0.0 wrote, byte for byte, and 2.0.0 serves the state between', async () => {
    const s1 = path.join(root, 'v1-state')
    const v1 = await startApp('v1', s1)
    for (const [k, value] of [['colour', 'blue'], ['users/42', 'ada'], ['unicode', 'smörgåsbord 🥪'], ['__proto__', 'just a key']]) {
      await fetch(`http://127.0.0.1:${v1.port}/kv/${encodeURIComponent(k as string)}`, { method: 'PUT', body: value })
    }
    await stopApp(v1)
    const s2 = path.join(root, 'v2-state')
    const back = path.join(root, 'v1-again')
    await fs.mkdir(s2)
    await fs.mkdir(back)

    expect(transform('up.py', s1, s2)).toMatchObject({ status: 0 })
    const v2 = await startApp('v2', s2)
    expect(await (await fetch(`http://127.0.0.1:${v2.port}/v2/kv/users%2F42`)).json()).toEqual({ value: 'ada', updated: 0 })
    expect(await (await fetch(`http://127.0.0.1:${v2.port}/v2/kv/__proto__`)).json()).toEqual({ value: 'just a key', updated: 0 })
    await stopApp(v2)

    expect(transform('down.py', s2, back)).toMatchObject({ status: 0 })
    expect(await fs.readFile(path.join(back, 'state.json'))).toEqual(await fs.readFile(path.join(s1, 'state.json')))
  })

  it('a peer that never stored anything: no state.json becomes an empty state', async () => {
    const from = path.join(root, 'empty-from')
    const to = path.join(root, 'empty-to')
    await fs.mkdir(from)
    await fs.mkdir(to)
    expect(transform('up.py', from, to).status).toBe(0)
    expect(await fs.readFile(path.join(to, 'state.json'), 'utf8')).toBe('{}')
  })

  it.each([
    ['up.py', '{"colour": "bl', /damaged/],
    ['up.py', '{"colour": 7}', /not pykv 1 state/],
    ['down.py', '["not", "an", "object"]', /not pykv 2 state/],
    ['down.py', '\u0000garbage', /damaged/]
  ])('%s on a damaged state (%j) exits non-zero with the reason on stderr', async (script, content, reason) => {
    const from = await fs.mkdtemp(path.join(root, 'bad-'))
    const to = await fs.mkdtemp(path.join(root, 'to-'))
    await fs.writeFile(path.join(from, 'state.json'), content)
    const r = transform(script, from, to)
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(reason)
    expect(await fs.readdir(to)).toEqual([])
  })

  it('v2\'s past SO lets a v1 peer write to and read a real 2.0.0 server, and its future SO a v2 peer a real 1.0.0 server', async () => {
    type Msg = { method: string, path: string, headers: Record<string, string>, body: Uint8Array }
    type Res = { status: number, headers: Record<string, string>, body: Uint8Array }
    interface SO { serve: (req: Msg, local: (req: Msg) => Promise<Res>) => Promise<Res> }
    const load = async (f: string): Promise<SO> => (await import(pathToFileURL(path.join(PYKV, 'v2', f)).href) as { default: SO }).default
    /** What the daemon does toward its app: the message as an HTTP request to the app's port. */
    const local = (port: number) => async (req: Msg): Promise<Res> => {
      const res = await fetch(`http://127.0.0.1:${port}${req.path}`, { method: req.method, headers: req.headers, body: req.method === 'GET' ? undefined : req.body })
      return { status: res.status, headers: Object.fromEntries(res.headers), body: new Uint8Array(await res.arrayBuffer()) }
    }
    const msg = (method: string, p: string, body = ''): Msg => ({ method, path: p, headers: {}, body: new TextEncoder().encode(body) })
    const text = (r: Res): string => new TextDecoder().decode(r.body)

    const past = await load('past.js')
    const v2 = await startApp('v2', path.join(root, 'so-v2'))
    const put1 = await past.serve(msg('PUT', '/kv/colour', 'amber'), local(v2.port))
    expect([put1.status, text(put1)]).toEqual([200, 'amber'])
    const get1 = await past.serve(msg('GET', '/kv/colour'), local(v2.port))
    expect([get1.status, text(get1)]).toEqual([200, 'amber'])
    expect((await past.serve(msg('GET', '/kv/absent'), local(v2.port))).status).toBe(404)

    const future = await load('future.js')
    const v1 = await startApp('v1', path.join(root, 'so-v1'))
    const put2 = await future.serve(msg('PUT', '/v2/kv/colour', JSON.stringify({ value: 'jade', updated: 5 })), local(v1.port))
    expect(put2.status).toBe(200)
    expect(JSON.parse(text(put2))).toEqual({ value: 'jade', updated: 0 })
    const get2 = await future.serve(msg('GET', '/v2/kv/colour'), local(v1.port))
    expect(JSON.parse(text(get2))).toEqual({ value: 'jade', updated: 0 })
  })
})
