/**
 * The control API: HTTP on 127.0.0.1 only, a bearer token on every call (or the cookie
 * the dashboard sets once from `?token=`), Host and Origin checked against DNS
 * rebinding. A malformed request gets a 4xx with a JSON error, never a 5xx or a crash.
 */
import { timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { z } from 'zod'
import { UpgossipError } from '../errors.js'
import { describeSchemaIssues, safeParse } from '../schema.js'
import { UnencodableValueError } from '../shim/index.js'
import { isDiskFull } from '../store/index.js'
import type { DaemonApi, DaemonStatus } from './api.js'
import { dashboardHtml } from './dashboard.js'
import { rolloutView } from './rollout-view.js'

/** Largest body `POST /call` accepts. */
export const MAX_CALL_BYTES = 1024 * 1024

const CallBodySchema = z.strictObject({ peer: z.string().max(128).nullable().optional(), request: z.unknown(), protocol: z.number().int().positive().max(1_000_000).optional() })
  .refine(b => b.request !== undefined, { message: 'a "request" is needed' })

const LeaseBodySchema = z.strictObject({ lease: z.string().max(64) })

function parseJson (bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    throw new HttpError(400, 'BadRequest', 'the body is not valid JSON')
  }
}

/** Largest body `POST /rotate` accepts: a signed rotation's limit. */
export const MAX_ROTATE_BYTES = 64 * 1024

/** Largest body `POST /publish` accepts (256 MiB). */
export const MAX_PUBLISH_BYTES = 256 * 1024 * 1024
const COOKIE = 'upgossip_token'

/** What the control API needs. */
export interface ControlApiInit {
  /** The daemon it serves. */
  api: DaemonApi
  /** 0 picks a free port. */
  port: number
  token: string
}

class HttpError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

// Node 22 has JSON.rawJSON; the ES2023 lib does not declare it
const rawJson = (JSON as unknown as { rawJSON: (text: string) => unknown }).rawJSON

function sendJson (res: http.ServerResponse, status: number, value: unknown): void {
  let body: string
  try {
    // a remote app's answer to POST /call may hold integers past 2^53 (dag-cbor), written
    // here as exact JSON numbers, or a cycle (from the app's process), which JSON cannot hold
    body = JSON.stringify(value, (_, v: unknown) => typeof v === 'bigint' ? rawJson(v.toString()) : v, 2) + '\n'
  } catch (err) {
    throw new UnencodableValueError(`the answer cannot be sent as JSON: ${(err as Error).message}`)
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function sendError (res: http.ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  sendJson(res, status, { error: { code, message } })
}

async function readBody (req: http.IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? '0')
  if (declared > limit) throw new HttpError(413, 'BodyTooLarge', `body of ${declared} bytes is over the ${limit}-byte limit`)
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req) {
    total += (chunk as Buffer).byteLength
    if (total > limit) throw new HttpError(413, 'BodyTooLarge', `body is over the ${limit}-byte limit`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** The server-sent events of a status change: the status, and the rollout view the dashboard's peer table shows. */
function statusEvents (status: DaemonStatus): string {
  return `event: status\ndata: ${JSON.stringify(status)}\n\nevent: rollout\ndata: ${JSON.stringify(rolloutView(status))}\n\n`
}

/** Serves the control API and the dashboard. */
export class ControlApi {
  private readonly init: ControlApiInit
  private readonly server: http.Server
  private readonly sse = new Set<http.ServerResponse>()
  private port = 0
  private heartbeat: NodeJS.Timeout | undefined

  constructor (init: ControlApiInit) {
    this.init = init
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch(err => {
        if (err instanceof HttpError) {
          sendError(res, err.status, err.code, err.message)
        } else if (isDiskFull(err)) {
          // this peer's trouble, not the caller's: named, and not logged as a failure of the API
          sendError(res, 507, 'DiskFullError', (err as Error).message)
        } else if (err instanceof UpgossipError) {
          init.api.refused(err.name)
          sendError(res, 422, err.name, err.message)
        } else {
          init.api.failed(`control API failed: ${(err as Error).message}`)
          sendError(res, 500, 'InternalError', (err as Error).message)
        }
      })
    })
    this.server.headersTimeout = 10_000
    this.server.requestTimeout = 120_000
  }

  /** The token every call must carry. */
  get token (): string {
    return this.init.token
  }

  /** `http://127.0.0.1:PORT`. */
  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Listen on 127.0.0.1. */
  async start (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.init.port, '127.0.0.1', () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    this.port = (this.server.address() as AddressInfo).port
    const push = (): void => {
      // a status is a few milliseconds of work at every beat heard: only for listeners
      if (this.sse.size === 0) return
      const data = statusEvents(this.init.api.status())
      for (const res of this.sse) res.write(data)
    }
    this.init.api.on('status', push)
    this.init.api.on('timeline', sample => {
      const data = `event: timeline\ndata: ${JSON.stringify(sample)}\n\n`
      for (const res of this.sse) res.write(data)
    })
    this.heartbeat = setInterval(() => { for (const res of this.sse) res.write(': keep-alive\n\n') }, 15_000)
    this.heartbeat.unref()
  }

  /** Close every connection and stop listening. */
  async stop (): Promise<void> {
    clearInterval(this.heartbeat)
    for (const res of this.sse) res.end()
    this.sse.clear()
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  private tokenMatches (candidate: string | undefined): boolean {
    if (candidate == null) return false
    const a = Buffer.from(candidate)
    const b = Buffer.from(this.init.token)
    return a.length === b.length && timingSafeEqual(a, b)
  }

  private checkOrigin (req: http.IncomingMessage): void {
    const allowed = [`127.0.0.1:${this.port}`, `localhost:${this.port}`]
    if (!allowed.includes(req.headers.host ?? '')) throw new HttpError(403, 'BadHost', 'the Host header must name this control API (127.0.0.1 or localhost with its port)')
    const origin = req.headers.origin
    if (origin != null && !allowed.map(h => `http://${h}`).includes(origin)) throw new HttpError(403, 'BadOrigin', 'requests from other origins are refused')
  }

  private authorised (req: http.IncomingMessage): boolean {
    const header = req.headers.authorization
    if (header?.startsWith('Bearer ') === true && this.tokenMatches(header.slice(7))) return true
    const cookie = (req.headers.cookie ?? '').split(';').map(c => c.trim()).find(c => c.startsWith(`${COOKIE}=`))
    return this.tokenMatches(cookie?.slice(COOKIE.length + 1))
  }

  private async handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.checkOrigin(req)
    let url: URL
    try {
      url = new URL(req.url ?? '/', this.url)
    } catch {
      throw new HttpError(400, 'BadRequest', 'the request target is not a valid path')
    }
    const route = `${req.method ?? 'GET'} ${url.pathname}`
    if (route === 'GET /' && url.searchParams.has('token')) {
      if (!this.tokenMatches(url.searchParams.get('token') ?? undefined)) throw new HttpError(401, 'Unauthorized', 'wrong token')
      res.writeHead(303, { location: '/', 'set-cookie': `${COOKIE}=${this.init.token}; HttpOnly; SameSite=Strict; Path=/` })
      res.end()
      return
    }
    if (!this.authorised(req)) throw new HttpError(401, 'Unauthorized', 'missing or wrong token: send "Authorization: Bearer <token>" (the token is in control.json)')
    const daemon = this.init.api
    switch (route) {
      case 'GET /':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'" })
        res.end(dashboardHtml())
        return
      case 'GET /status':
        sendJson(res, 200, daemon.status())
        return
      case 'GET /rollout': {
        // ?app=NAME shows only that app's peers; ?version= sets the target
        const app = url.searchParams.get('app') ?? undefined
        sendJson(res, 200, rolloutView(daemon.status(), { app, version: url.searchParams.get('version') ?? undefined, only: app != null }))
        return
      }
      case 'GET /timeline':
        sendJson(res, 200, daemon.timeline())
        return
      case 'GET /metrics':
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
        res.end(await daemon.metricsText())
        return
      case 'GET /events':
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
        res.write(statusEvents(daemon.status()))
        this.sse.add(res)
        req.on('close', () => this.sse.delete(res))
        return
      case 'POST /revoke': {
        const body = await readBody(req, 64 * 1024)
        if (body.byteLength === 0) throw new HttpError(400, 'EmptyBody', 'POST /revoke wants a signed revocation (dag-cbor) as its body')
        sendJson(res, 200, await daemon.revoke(body))
        return
      }
      case 'POST /pause': {
        const body = await readBody(req, 64 * 1024)
        if (body.byteLength === 0) throw new HttpError(400, 'EmptyBody', 'POST /pause wants a signed rollout pause or resume record (dag-cbor) as its body')
        sendJson(res, 200, await daemon.pause(body))
        return
      }
      case 'POST /rotate': {
        const body = await readBody(req, MAX_ROTATE_BYTES)
        if (body.byteLength === 0) throw new HttpError(400, 'EmptyBody', 'POST /rotate wants a signed trust rotation (dag-cbor) as its body')
        sendJson(res, 200, await daemon.rotate(body))
        return
      }
      case 'POST /rollback':
        sendJson(res, 200, await daemon.rollback())
        return
      case 'POST /backup/begin':
        sendJson(res, 200, await daemon.backupBegin())
        return
      case 'POST /backup/renew':
      case 'POST /backup/end': {
        const body = safeParse(LeaseBodySchema, parseJson(await readBody(req, 1024)))
        if (!body.success) throw new HttpError(400, 'BadRequest', describeSchemaIssues(`${route.slice(5)} body`, body.error))
        sendJson(res, 200, route === 'POST /backup/end' ? daemon.backupEnd(body.data.lease) : daemon.backupRenew(body.data.lease))
        return
      }
      case 'GET /history':
        sendJson(res, 200, await daemon.history())
        return
      case 'POST /call': {
        const body = safeParse(CallBodySchema, parseJson(await readBody(req, MAX_CALL_BYTES)))
        if (!body.success) throw new HttpError(400, 'BadRequest', describeSchemaIssues('POST /call body', body.error))
        sendJson(res, 200, { response: await daemon.call(body.data.peer ?? null, body.data.request, body.data.protocol) })
        return
      }
      case 'POST /publish': {
        const body = await readBody(req, MAX_PUBLISH_BYTES)
        if (body.byteLength === 0) throw new HttpError(400, 'EmptyBody', 'POST /publish wants a release bundle (a CAR file) as its body')
        sendJson(res, 200, await daemon.publish(body))
        return
      }
      default: {
        const control = /^POST \/(approve|hold|resume)\/([^/]{1,200})$/.exec(route)
        if (control != null) {
          let ref: string
          try {
            ref = decodeURIComponent(control[2] as string)
          } catch {
            throw new HttpError(400, 'BadRequest', 'the release in the path is not valid percent-encoding')
          }
          const entry = control[1] === 'approve' ? await daemon.approve(ref) : control[1] === 'hold' ? await daemon.hold(ref) : await daemon.resume(ref)
          sendJson(res, 200, { id: entry.id, app: entry.signed.record.app, version: entry.signed.record.version, done: control[1] })
          return
        }
        throw new HttpError(404, 'NotFound', `no such endpoint: ${route}`)
      }
    }
  }
}
