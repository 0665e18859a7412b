/**
 * The parts of process apps that need no daemon: the manifest's `run`, peer ids as host
 * names, HTTP messages, and the proxy in front of the shim (with the shim stubbed).
 */
import http from 'node:http'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { AppProxy, HttpBodyTooLargeError, MalformedHttpMessageError, forwardedHeaders, toHttpRequest, toHttpResponse } from '../../src/host/index.js'
import type { HttpRequestMessage } from '../../src/host/index.js'
import { peerFromHost, peerHost } from '../../src/net/index.js'
import { ManifestFileMissingError, ManifestInvalidError, assertManifestFilesPresent, parseManifest } from '../../src/package/index.js'

const base = { app: 'tally', version: '1.0.0', protocol: 1 }

describe('the manifest of a process app', () => {
  it('takes exactly one of main and run, a wire, and health.http only with run', () => {
    expect(parseManifest({ ...base, run: { command: ['python3', 'server.py'], wire: 'http' }, health: { http: '/healthz' } }).run).toEqual({ command: ['python3', 'server.py'], wire: 'http' })
    expect(() => parseManifest({ ...base })).toThrow(/exactly one of "main".*or "run"/)
    expect(() => parseManifest({ ...base, main: 'server.js', run: { command: ['x'], wire: 'http' } })).toThrow(ManifestInvalidError)
    expect(() => parseManifest({ ...base, run: { command: [], wire: 'http' } })).toThrow(/expected a command/)
    expect(() => parseManifest({ ...base, run: { command: ['x'], wire: 'udp' } })).toThrow(/run\.wire/)
    expect(() => parseManifest({ ...base, main: 'server.js', health: { http: '/healthz' } })).toThrow(/"health.http" is for process apps/)
    expect(() => parseManifest({ ...base, run: { command: ['x'], wire: 'http' }, health: { http: 'healthz' } })).toThrow(/a path such as/)
  })

  it('a program named ./name must be in the package; another name is looked up on PATH', () => {
    const own = parseManifest({ ...base, run: { command: ['./bin/server', '--port-env'], wire: 'tcp' } })
    expect(() => { assertManifestFilesPresent(own, new Set(['upgossip.json'])) }).toThrow(ManifestFileMissingError)
    assertManifestFilesPresent(own, new Set(['bin/server']))
    assertManifestFilesPresent(parseManifest({ ...base, run: { command: ['python3', 'server.py'], wire: 'http' } }), new Set())
  })
})

describe('peer hosts', () => {
  it('a peer id is one lower-case DNS label, k51…, and back, whatever the case of the host', async () => {
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const host = peerHost(id)
    expect(host).toMatch(/^k51[0-9a-z]{59}$/)
    expect(peerFromHost(host)).toBe(id)
    expect(peerFromHost(host.toUpperCase())).toBe(id)
    for (const bad of ['upgossip', 'example.com', 'k51', id, `${host}x`]) expect(peerFromHost(bad)).toBeUndefined()
  })
})

describe('HTTP messages', () => {
  it('checks requests and responses, takes a string body as UTF-8, and never carries hop-by-hop headers', () => {
    expect(toHttpRequest({ method: 'put', path: '/kv/a?x=1', headers: { 'Content-Type': 'text/plain', Connection: 'close', 'Proxy-Authorization': 'x' }, body: 'v' }))
      .toEqual({ method: 'PUT', path: '/kv/a?x=1', headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode('v') })
    for (const bad of [null, { path: 'kv' }, { path: '/a b' }, { path: '/', method: 'G T' }, { path: '/', headers: { 'a\nb': 'x' } }, { path: '/', body: 5 }]) {
      expect(() => toHttpRequest(bad)).toThrow(MalformedHttpMessageError)
    }
    expect(() => toHttpRequest({ path: '/', body: new Uint8Array(16 * 1024 * 1024 + 1) })).toThrow(HttpBodyTooLargeError)
    expect(() => toHttpResponse({ status: 99 })).toThrow(MalformedHttpMessageError)
    expect(forwardedHeaders({ 'x-a': ['1', '2'], connection: 'x-drop, keep-alive', 'x-drop': 'gone', 'transfer-encoding': 'chunked' })).toEqual({ 'x-a': '1, 2' })
  })
})

describe('the proxy', () => {
  let proxy: AppProxy | undefined
  afterEach(async () => { await proxy?.stop() })

  async function ask (url: string, options: { method?: string, body?: string, auth?: string | null } = {}): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
    const p = new URL(proxy?.url ?? '')
    const auth = options.auth === undefined ? `Basic ${Buffer.from(`${p.username}:${p.password}`).toString('base64')}` : options.auth
    return await new Promise((resolve, reject) => {
      const req = http.request({ host: p.hostname, port: p.port, method: options.method ?? 'GET', path: url, headers: auth == null ? {} : { 'proxy-authorization': auth }, agent: false }, res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }) })
      })
      req.on('error', reject)
      req.end(options.body)
    })
  }

  it('wants its credentials, lists peers, forwards to a peer by its host, and reaches nothing else', async () => {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const sent: Array<{ peer: string, version: number, request: HttpRequestMessage }> = []
    proxy = new AppProxy({
      selfId: () => self,
      peers: () => [{ id: other, app: 'tally', version: '2.0.0', protocol: 2 }],
      route: async peer => peer === self ? { self: true } : { self: false, version: 2 },
      send: async (peer, version, request) => {
        sent.push({ peer, version, request })
        return { status: 201, headers: { 'x-from': 'peer', connection: 'close' }, body: new TextEncoder().encode('made') }
      },
      streams: async () => false,
      exchange: async () => { throw new Error('no streamed exchanges here') },
      exchangeSelf: async () => ({ head: { status: 200, headers: {} }, body: new TextEncoder().encode('me') }),
      connect: async () => { throw new Error('no connections in this test') },
      log: () => {}
    })
    await proxy.start()
    expect(proxy.url).toMatch(/^http:\/\/upgossip:[0-9a-f]{36}@127\.0\.0\.1:\d+$/)

    const anonymous = await ask('http://upgossip/peers', { auth: null })
    expect(anonymous.status).toBe(407)
    expect(anonymous.headers['proxy-authenticate']).toContain('Basic')
    expect((await ask('http://upgossip/peers', { auth: 'Basic d3Jvbmc6d3Jvbmc=' })).status).toBe(407)

    const listed = JSON.parse((await ask('http://upgossip/peers')).body) as { self: string, selfHost: string, peers: Array<{ id: string, host: string }> }
    expect(listed.self).toBe(self)
    expect(listed.peers).toEqual([{ id: other, host: peerHost(other), app: 'tally', version: '2.0.0', protocol: 2 }])

    const made = await ask(`http://${peerHost(other)}/tally?name=ann`, { method: 'POST', body: 'one' })
    expect(made).toMatchObject({ status: 201, body: 'made' })
    expect(made.headers['x-from']).toBe('peer')
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ peer: other, version: 2, request: { method: 'POST', path: '/tally?name=ann' } })
    expect(new TextDecoder().decode(sent[0]?.request.body)).toBe('one')
    expect(sent[0]?.request.headers['proxy-authorization']).toBeUndefined()

    expect((await ask(`http://${listed.selfHost}/x`)).body).toBe('me')
    for (const url of ['http://example.com/', 'http://upgossip/other', '/origin-form']) expect([400, 404]).toContain((await ask(url)).status)
    expect(sent).toHaveLength(1)
  })
})
