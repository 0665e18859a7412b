/**
 * Large bodies of an HTTP process app, on real daemons: same-version requests and
 * responses are streamed through the proxy, both daemons and libp2p without a size limit
 * of their own — with Content-Length, or chunked when the sender sent them chunked — and
 * arrive intact; a translated message (through a simulation object) is carried whole, up
 * to 16 MiB, and one over that gets 413 with its reason.
 */
import { createHash } from 'node:crypto'
import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { peerHost } from '../../src/net/index.js'
import { proxyOf, viaProxy } from './support/process-apps.js'
import { TestNet, waitFor } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

/** A Node.js service: `PUT /blob` answers the size and hash of what it read; `GET /blob/<n>` sends n bytes (chunked with `?chunked`). */
const SERVER = `import crypto from 'node:crypto'
import http from 'node:http'
const fill = i => Buffer.alloc(65536, i % 251)
http.createServer(async (req, res) => {
  if (req.url === '/healthz') return res.end('ok')
  if (req.method === 'PUT' && req.url === '/blob') {
    const hash = crypto.createHash('sha256')
    let bytes = 0
    for await (const chunk of req) { hash.update(chunk); bytes += chunk.length }
    const body = JSON.stringify({ bytes, sha256: hash.digest('hex'), length: req.headers['content-length'] ?? null, chunked: req.headers['transfer-encoding'] === 'chunked', version: process.env.UPGOSSIP_APP_VERSION })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    return res.end(body)
  }
  const m = /^\\/blob\\/(\\d+)(\\?chunked)?$/.exec(req.url)
  if (m == null) { res.writeHead(404); return res.end() }
  const n = Number(m[1])
  res.writeHead(200, m[2] == null ? { 'content-length': n } : {})
  for (let at = 0, i = 0; at < n; at += 65536, i++) {
    if (!res.write(fill(i).subarray(0, Math.min(65536, n - at)))) await new Promise(r => res.once('drain', r))
  }
  res.end()
}).listen(Number(process.env.UPGOSSIP_PORT), '127.0.0.1')
`

const PASS_THROUGH = `export default {
  version: 1,
  async serve (req, local) { return await local(req) },
  async call (req, remote) { return await remote(req) }
}
`

function blobApp (version: string, protocol: number, schedule?: unknown[]): Record<string, string> {
  const manifest: Record<string, unknown> = { app: 'kv', version, protocol, run: { command: [process.execPath, 'server.mjs'], wire: 'http' }, health: { http: '/healthz', readyWithin: '15s', stableFor: '500ms' } }
  if (schedule != null) manifest.schedule = schedule
  if (protocol === 1) return { 'upgossip.json': JSON.stringify(manifest), 'server.mjs': SERVER }
  return { 'upgossip.json': JSON.stringify({ ...manifest, upgrades: '^1.0.0', simulation: { past: 'so/past.js' } }), 'server.mjs': SERVER, 'so/past.js': PASS_THROUGH }
}

/** The bytes `GET /blob/<n>` sends, hashed. */
function expectedHash (n: number): string {
  const hash = createHash('sha256')
  for (let at = 0, i = 0; at < n; at += 65536, i++) hash.update(Buffer.alloc(Math.min(65536, n - at), i % 251))
  return hash.digest('hex')
}

/** A request through a daemon's proxy whose body (`bytes` of a pattern) is sent as it is made, chunked unless `length`; the answer's body is hashed as it comes. */
async function stream (proxy: string, method: string, url: string, body: { bytes: number, length: boolean } | undefined): Promise<{ status: number, headers: http.IncomingHttpHeaders, bytes: number, sha256: string, text: string, sentSha256: string }> {
  const p = new URL(proxy)
  const auth = Buffer.from(`${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`).toString('base64')
  const headers: Record<string, string> = { 'proxy-authorization': `Basic ${auth}` }
  if (body?.length === true) headers['content-length'] = String(body.bytes)
  const sent = createHash('sha256')
  return await new Promise((resolve, reject) => {
    let answered = false
    const req = http.request({ host: p.hostname, port: p.port, method, path: url, headers, agent: false }, res => {
      answered = true
      const hash = createHash('sha256')
      let bytes = 0
      const head: Buffer[] = []
      res.on('data', (c: Buffer) => { hash.update(c); bytes += c.length; if (bytes <= 4096) head.push(c) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, sha256: hash.digest('hex'), text: Buffer.concat(head).toString(), sentSha256: sent.digest('hex') }) })
      res.on('error', reject)
    })
    // an answer before the whole body went (413, say) closes the connection: that answer counts
    req.on('error', err => { if (!answered) reject(new Error(`${method} ${url} (${body?.bytes ?? 0} bytes): ${err.message}`)) })
    void (async () => {
      const total = body?.bytes ?? 0
      for (let at = 0, i = 0; at < total; at += 65536, i++) {
        const chunk = Buffer.alloc(Math.min(65536, total - at), (i * 7) % 256)
        sent.update(chunk)
        if (req.destroyed) return
        if (!req.write(chunk)) await new Promise(resolve => { const done = (): void => { req.off('drain', done); req.off('close', done); resolve(undefined) }; req.once('drain', done); req.once('close', done) })
      }
      req.end()
    })()
  })
}

const MiB = 1024 * 1024

describe('large bodies of an HTTP process app', () => {
  it('same-version bodies stream both ways with no limit of their own; a translated one is carried whole up to 16 MiB, 413 past it', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(blobApp('1.0.0', 1))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    const proxy = proxyOf(a)
    const bHost = peerHost(b.peerId)
    await waitFor('b to answer through a\'s proxy', async () => (await viaProxy(proxy, 'GET', `http://${bHost}/healthz`)).status === 200)

    // 40 MiB up with Content-Length: the app gets it with that length, every byte
    const up = await stream(proxy, 'PUT', `http://${bHost}/blob`, { bytes: 40 * MiB, length: true }).catch((err: Error) => { throw new Error(`${err.message}; a: ${a.log.slice(-1500)}; b: ${b.log.slice(-1500)}`) })
    expect(up.status, up.text).toBe(200)
    expect(JSON.parse(up.text)).toEqual({ bytes: 40 * MiB, sha256: up.sentSha256, length: String(40 * MiB), chunked: false, version: '1.0.0' })
    // 20 MiB up chunked: the app gets it chunked too
    const chunked = await stream(proxy, 'PUT', `http://${bHost}/blob`, { bytes: 20 * MiB + 5, length: false })
    expect(JSON.parse(chunked.text)).toEqual({ bytes: 20 * MiB + 5, sha256: chunked.sentSha256, length: null, chunked: true, version: '1.0.0' })
    // 48 MiB down with its Content-Length, 20 MiB down chunked
    const down = await stream(proxy, 'GET', `http://${bHost}/blob/${48 * MiB}`, undefined)
    expect(down).toMatchObject({ status: 200, bytes: 48 * MiB, sha256: expectedHash(48 * MiB) })
    expect(down.headers['content-length']).toBe(String(48 * MiB))
    const downChunked = await stream(proxy, 'GET', `http://${bHost}/blob/${20 * MiB + 3}?chunked`, undefined)
    expect(downChunked).toMatchObject({ status: 200, bytes: 20 * MiB + 3, sha256: expectedHash(20 * MiB + 3) })
    expect(downChunked.headers['transfer-encoding']).toBe('chunked')
    // small requests after the large ones, on the same kept streams
    for (let i = 0; i < 20; i++) expect((await viaProxy(proxy, 'GET', `http://${bHost}/blob/${i}`)).body).toHaveLength(i)
    // they went over the streamed protocol, not as messages
    const metrics = await (await a.api('/metrics')).text()
    const streamedOut = Number(/upgossip_bytes_total\{protocol="\/upgossip\/app-http\/kv\/1",direction="out"\} (\d+)/.exec(metrics)?.[1] ?? 0)
    expect(streamedOut).toBeGreaterThan(60 * MiB)

    // c runs 2.0.0 (protocol 2): a's protocol-1 requests are translated by c's past SO, carried whole
    const v2 = await net.releaseFiles(blobApp('2.0.0', 2, [{ rule: 'approve' }]))
    const c = await net.start('c', ['--install', v2.file, '--bootstrap', a.addr])
    await c.waitVersion('2.0.0')
    const cHost = peerHost(c.peerId)
    await waitFor('c to answer through a\'s proxy', async () => (await viaProxy(proxy, 'GET', `http://${cHost}/healthz`)).status === 200)
    const translated = await stream(proxy, 'PUT', `http://${cHost}/blob`, { bytes: 3 * MiB, length: true })
    expect(translated.status, translated.text).toBe(200)
    expect(JSON.parse(translated.text)).toMatchObject({ bytes: 3 * MiB, sha256: translated.sentSha256, version: '2.0.0' })
    const tooLarge = await stream(proxy, 'PUT', `http://${cHost}/blob`, { bytes: 17 * MiB, length: true })
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.text).toContain('HttpBodyTooLargeError')
    // and the daemons keep going
    expect((await viaProxy(proxy, 'GET', `http://${bHost}/blob/5`)).status).toBe(200)
    expect((await viaProxy(proxy, 'GET', `http://${cHost}/blob/5`)).status).toBe(200)
  })
})
