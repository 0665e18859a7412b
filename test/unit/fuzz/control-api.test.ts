/**
 * Fuzz properties of the control API: a real ControlApi on 127.0.0.1, in this process,
 * in front of a stand-in daemon whose methods run the real decoders (bundles, revocations,
 * release references) and answer calls with whatever a remote app could send back.
 * Random methods, paths, headers and bodies get a success or a 4xx with a JSON error —
 * never a 5xx, never a crash — and the server keeps answering.
 */
import http from 'node:http'
import net from 'node:net'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../../src/clock.js'
import { ControlApi, DaemonMetrics } from '../../../src/daemon/index.js'
import { findRelease } from '../../../src/daemon/operator.js'
import { stubDaemonApi } from '../daemon-api-stub.js'
import {
  ReleaseBook, TrustPolicy, createRelease, decodeRevocation, encodeRevocation, encodeSignedRelease, generatePublisherKey, releaseId, signReleaseId, signRevocation, verifyBundle, verifyRevocation, writeBundle
} from '../../../src/release/index.js'
import type { PublisherKey } from '../../../src/release/index.js'
import { walkPackageBlocks, writeCar } from '../../../src/package/index.js'
import { MemoryBlockStore } from '../../../src/store/index.js'
import { samplePackage, tempDir } from '../../helpers.js'
import { materialise, packageArb } from './package-dags.js'
import { FEW_RUNS, RUNS, SLOW_RUNS } from './runs.js'
import { cborValueArb, fieldArb, jsonText, nastyStringArb, rarely, withoutUndefined } from './support.js'

const TOKEN = 'fuzz-token-0123456789'
const NOW = Date.parse('2026-06-01T00:00:00Z')

let api: ControlApi
let port: number
let bundle: Uint8Array
let revocation: Uint8Array
let knownId: string
let key: PublisherKey
let internalErrors: string[]
/** What the stand-in daemon answers the next POST /call with (what a remote app could send back). */
let nextCallResponse: unknown = null

beforeAll(async () => {
  key = await generatePublisherKey()
  const trust = TrustPolicy.parse({ apps: { kv: { publishers: [key.id], threshold: 1 } } })
  const store = new MemoryBlockStore()
  const made = await createRelease({ dir: await samplePackage(await tempDir(), '1.0.0'), store, keys: [key], clock: fixedClock(NOW - 1000) })
  bundle = await writeBundle(made.signed, store, made.blocks)
  knownId = made.id.toString()
  revocation = encodeRevocation(await signRevocation({ app: 'kv', release: made.id, issued: new Date(NOW).toISOString(), reason: 'fuzz' }, [key]))
  const book = new ReleaseBook({ dir: await tempDir(), trust: () => trust, floor: () => undefined, clock: fixedClock(NOW) })
  await book.load()
  await book.consider(made.signed)
  internalErrors = []
  const metrics = new DaemonMetrics()
  const stand = stubDaemonApi({
    metricsText: async () => await metrics.text(),
    refused: name => { metrics.refused(name) },
    failed: message => { internalErrors.push(message) },
    status: () => ({ peerId: '12D3KooWfuzz', app: 'kv', version: '1.0.0', state: 'running', labels: {}, networkName: 'default', multiaddrs: [], connections: 0, freshness: { lastStatus: null, lastRelease: null, frozen: false, freezeAfterMs: 0 }, trust: {}, releases: [], network: [] }),
    history: async () => [],
    rollback: async () => ({ from: '1.0.0', to: '0.9.0' }),
    call: async () => nextCallResponse,
    publish: async (bytes: Uint8Array) => {
      const verified = await verifyBundle(bytes, { trust, clock: fixedClock(NOW) })
      return { status: 'published' as const, id: verified.id.toString(), app: verified.record.app, version: verified.record.version }
    },
    revoke: async (bytes: Uint8Array) => {
      const decoded = decodeRevocation(bytes)
      await verifyRevocation(decoded, trust)
      return { status: 'revoked' as const, release: decoded.record.release.toString() }
    },
    // the daemon's own lookup of `RELEASE` (an id or APP@VERSION)
    approve: async (ref: string) => await findRelease(book, ref),
    hold: async (ref: string) => await findRelease(book, ref),
    resume: async (ref: string) => await findRelease(book, ref)
  })
  api = new ControlApi({ api: stand, port: 0, token: TOKEN })
  await api.start()
  port = Number(new URL(api.url).port)
})

afterAll(async () => { await api?.stop() })

interface Answer { status: number, type: string, body: string }

/** One request as a client shapes it; undefined when the client itself refuses to send it (a path or header it cannot write). */
async function send (method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<Answer | undefined> {
  let req: http.ClientRequest
  try {
    // a body goes with its length: a request that is not valid HTTP gets Node's own bare 400 (see the raw-socket property)
    const framed = body == null ? headers : { ...headers, 'content-length': String(body.byteLength) }
    req = http.request({ host: '127.0.0.1', port, method, path, headers: framed, agent: false })
  } catch {
    return undefined
  }
  return await new Promise((resolve, reject) => {
    req.on('response', res => {
      const type = String(res.headers['content-type'] ?? '')
      if (type.startsWith('text/event-stream')) {
        res.destroy()
        resolve({ status: res.statusCode ?? 0, type, body: '' })
        return
      }
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    // the server may answer (413, 401) before reading the body and close: that is an answer, not a failure
    req.on('error', err => { if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'EPIPE') resolve(undefined); else reject(err) })
    req.end(body)
  })
}

/** The property of every answer: a success, or a 4xx whose body is `{ error: { code, message } }`. */
function expectAnswer (answer: Answer | undefined): void {
  if (answer == null) return
  expect(answer.status).toBeLessThan(500)
  if (answer.status >= 400) {
    expect(answer.type).toMatch(/^application\/json/)
    const json = JSON.parse(answer.body) as { error?: { code?: unknown, message?: unknown } }
    expect(typeof json.error?.code).toBe('string')
    expect(typeof json.error?.message).toBe('string')
  } else if (answer.type.startsWith('application/json')) {
    JSON.parse(answer.body)
  }
}

const goodHeaders = (): Record<string, string> => ({ host: `127.0.0.1:${port}`, authorization: `Bearer ${TOKEN}` })

const headersArb = fc.record({
  host: fieldArb(fc.oneof(fc.constant('ok'), fc.constantFrom('localhost:1', 'evil.example', '127.0.0.1'), nastyStringArb), 8),
  authorization: fieldArb(fc.oneof(fc.constant('ok'), fc.constantFrom('Bearer ', `Bearer ${TOKEN}x`, `bearer ${TOKEN}`, 'Basic x'), nastyStringArb), 8),
  cookie: optionalCookie(),
  origin: fieldArb(fc.oneof(fc.constant('ok'), fc.constantFrom('http://evil.example', 'null', `http://127.0.0.1:${1}`), nastyStringArb), 1),
  'content-type': fieldArb(fc.constantFrom('application/json', 'application/vnd.ipld.car', 'text/plain'), 2)
}).map(h => withoutUndefined(Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v === 'ok' ? (k === 'host' ? `127.0.0.1:${port}` : k === 'origin' ? `http://127.0.0.1:${port}` : `Bearer ${TOKEN}`) : v]))) as Record<string, string>)

function optionalCookie (): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(`upgossip_token=${TOKEN}`, 'upgossip_token=', `a=b; upgossip_token=${TOKEN}x`) })
}

const pathArb = fc.oneof(
  fc.constantFrom('/', '/status', '/timeline', '/metrics', '/history', '/events', '/rollback', '/call', '/publish', '/revoke', `/?token=${TOKEN}`, '/?token=x', '/approve/', '/approve/kv@1.0.0', '/hold/kv@9.9.9', '/resume/%E0%A4%A', '/approve/%25', '//status', '/status?x=1#y', '/approve/' + 'a'.repeat(250)),
  fc.tuple(fc.constantFrom('approve', 'hold', 'resume'), nastyStringArb).map(([verb, ref]) => `/${verb}/${encodeURIComponent(ref.replace(/[\ud800-\udfff]/g, ''))}`),
  nastyStringArb.map(p => `/${p}`)
)

const callBodyArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ peer: fieldArb(fc.oneof(fc.constant(null), fc.constant('12D3KooWpeer'), nastyStringArb, fc.constant({ length: { valueOf: 0, toString: 0 } })), 2), request: fieldArb(cborValueArb, 8), protocol: fieldArb(fc.integer({ min: -1, max: 2_000_000 }), 1), extra: rarely(fc.tuple(nastyStringArb, cborValueArb)) }).map(({ extra, ...b }) => withoutUndefined(extra == null ? b : { ...b, [extra[0]]: extra[1] })).map(jsonText) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '[]', '{"request":1}', '\ufeff{"request":1}') }
).map(text => new TextEncoder().encode(text))

describe('the control API', () => {
  it('any method, path and headers: a success or a 4xx JSON error, never a 5xx', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'), pathArb, headersArb, fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }), async (method, path, headers, body) => {
      const answer = await send(method, path, headers, body)
      // HEAD answers carry the headers of the GET, without its body
      if (method === 'HEAD' && answer != null) expect(answer.status).toBeLessThan(500)
      else expectAnswer(answer)
    }), { numRuns: RUNS })
    expect(internalErrors).toEqual([])
  })

  it('POST /call with any body, and any response a remote app could send back: a success or a 4xx JSON error', async () => {
    const responseArb = fc.oneof(
      { weight: 6, arbitrary: cborValueArb },
      { weight: 1, arbitrary: fc.constantFrom(new Map([[1, 2]]), new Set([1]), new Date(0), undefined, Number.NaN, (() => { const o: Record<string, unknown> = {}; o.self = o; return o })()) }
    )
    await fc.assert(fc.asyncProperty(callBodyArb, responseArb, async (body, response) => {
      nextCallResponse = response
      expectAnswer(await send('POST', '/call', { ...goodHeaders(), 'content-type': 'application/json' }, body))
    }), { numRuns: RUNS })
    expect(internalErrors).toEqual([])
  })

  it('POST /publish and /revoke with any body (whole, cut, one byte changed, foreign): a success or a 4xx JSON error', async () => {
    const bodyArb = (good: Uint8Array): fc.Arbitrary<Uint8Array> => fc.oneof(
      fc.constant(good),
      fc.nat(good.byteLength).map(n => good.subarray(0, n)),
      fc.tuple(fc.nat(good.byteLength - 1), fc.integer({ min: 1, max: 255 })).map(([at, mask]) => { const b = Uint8Array.from(good); b[at] = (b[at] as number) ^ mask; return b }),
      fc.uint8Array({ maxLength: 128 }),
      cborValueArb.map(v => { try { return Uint8Array.from(Buffer.from(jsonText(v))) } catch { return new Uint8Array() } })
    )
    // a trusted publisher's bundle around a hostile package: the signature holds, the package is anything
    const signedHostile = packageArb.map(spec => async (): Promise<Uint8Array> => {
      const store = new MemoryBlockStore()
      const root = await materialise(spec, store)
      const walked = await walkPackageBlocks(root, store).catch(() => ({ cids: [], size: 0 }))
      const record = { app: 'kv', version: '1.0.0', previous: null, package: root, size: walked.size, manifest: { app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 }, issued: new Date(NOW - 1000).toISOString(), expires: new Date(NOW + 86_400_000).toISOString() }
      const rootBytes = encodeSignedRelease({ record, signatures: [await signReleaseId(await releaseId(record), key)] })
      const rootCid = CID.createV1(0x71, await sha256.digest(rootBytes))
      const blocks: Array<{ cid: CID, bytes: Uint8Array }> = [{ cid: rootCid, bytes: rootBytes }]
      for (const cid of walked.cids) blocks.push({ cid, bytes: await store.get(cid) })
      return await writeCar([rootCid], blocks)
    })
    const requestArb = fc.oneof(
      bodyArb(bundle).map(b => ['/publish', async () => b] as const),
      signedHostile.map(make => ['/publish', make] as const),
      bodyArb(revocation).map(b => ['/revoke', async () => b] as const)
    )
    await fc.assert(fc.asyncProperty(requestArb, async ([path, body]) => {
      expectAnswer(await send('POST', path, { ...goodHeaders(), 'content-type': 'application/vnd.ipld.car' }, await body()))
    }), { numRuns: SLOW_RUNS })
    expect(internalErrors).toEqual([])
  })

  it('a body declared over the limit is refused with 413 before it is read', async () => {
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/call', headers: { ...goodHeaders(), 'content-length': String(64 * 1024 * 1024) }, agent: false })
      req.on('response', res => { const chunks: Buffer[] = []; res.on('data', (c: Buffer) => chunks.push(c)); res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString() })) })
      req.on('error', reject)
      // send nothing more: the answer must come from the declared length alone
      req.flushHeaders()
    })
    expect(answer.status).toBe(413)
    expectAnswer(answer)
  })

  it('raw bytes on the socket: the server answers below 500 or closes, and keeps serving', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.tuple(fc.constantFrom('GET', 'POST', 'G\u0000T'), nastyStringArb, fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/9.9', ''), fc.array(nastyStringArb, { maxLength: 3 })).map(([m, p, v, h]) => new TextEncoder().encode(`${m} /${p} ${v}\r\nHost: 127.0.0.1:${port}\r\n${h.join('\r\n')}\r\n\r\n`))), async bytes => {
      const reply = await new Promise<string>(resolve => {
        const socket = net.connect(port, '127.0.0.1')
        const chunks: Buffer[] = []
        socket.on('data', c => chunks.push(c))
        socket.on('error', () => resolve(Buffer.concat(chunks).toString('latin1')))
        socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
        socket.setTimeout(500, () => socket.destroy())
        socket.end(bytes)
      })
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(reply)?.[1]
      if (status != null) expect(Number(status)).toBeLessThan(500)
      expectAnswer(await send('GET', '/status', goodHeaders()))
    }), { numRuns: FEW_RUNS })
  })

  it('release references in approve, hold and resume: the release, or 4xx UnknownReleaseError', async () => {
    const id = knownId
    await fc.assert(fc.asyncProperty(fc.constantFrom('approve', 'hold', 'resume'), fc.oneof(fc.constantFrom(id, 'kv@1.0.0', '@', 'kv@', '@1.0.0', id.toUpperCase(), CID.parse(id).toV1().toString()), nastyStringArb), async (verb, ref) => {
      const answer = await send('POST', `/${verb}/${encodeURIComponent(ref.replace(/[\ud800-\udfff]/g, ''))}`, goodHeaders())
      expectAnswer(answer)
      if (answer != null && (ref === id || ref === 'kv@1.0.0')) expect(answer.status).toBe(200)
    }), { numRuns: RUNS })
  })
})
