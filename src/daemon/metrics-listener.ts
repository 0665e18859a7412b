/**
 * The `--metrics HOST:PORT` listener: a second HTTP server, apart from the control API,
 * that serves only `GET /metrics` (the same Prometheus text as the control API's) and
 * `GET /healthz` (200 or 503 with a JSON reason), without the token, so that Prometheus
 * and health probes on other hosts can reach them. Read-only: any other method is 405 and
 * any other path 404; the dashboard and every control endpoint keep the token.
 *
 * @example
 * ```ts
 * const listener = new MetricsListener({ metricsText: async () => await metrics.text(), health: () => report }, { host: '0.0.0.0', port: 9464 })
 * await listener.start() // MetricsListenFailedError when the port is taken
 * console.log(listener.address, listener.url) // 0.0.0.0:9464 http://127.0.0.1:9464
 * ```
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { MetricsListenFailedError } from './errors.js'
import type { HealthReport } from './health.js'
import type { HostPort } from './options.js'

/** What the listener serves. */
export interface MetricsListenerComponents {
  /** The Prometheus text exposition. */
  metricsText: () => Promise<string>
  /** The daemon's health now. */
  health: () => HealthReport
  /** Report a failure of the listener itself (logged; the answer is a 500). */
  failed?: (message: string) => void
}

const ROUTES = new Set(['/metrics', '/healthz'])

function send (res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...headers })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

function sendJson (res: http.ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value) + '\n', headers)
}

/** An IPv6 address in brackets, as in a URL; anything else as it is. */
function bracketed (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** Why a listen failed, in words. */
function listenProblem (err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE': return 'the port is in use; choose another (port 0 picks a free one)'
    case 'EADDRNOTAVAIL': return 'not an address of this host'
    case 'EACCES': return 'not allowed (ports below 1024 need privileges)'
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'the host name does not resolve'
    default: return err.message
  }
}

/** Serves `/metrics` and `/healthz` without the token. */
export class MetricsListener {
  private readonly c: MetricsListenerComponents
  private readonly init: HostPort
  private readonly server: http.Server
  private port = 0

  constructor (components: MetricsListenerComponents, init: HostPort) {
    this.c = components
    this.init = init
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        components.failed?.(`--metrics listener failed: ${err.message}`)
        if (res.headersSent) res.destroy()
        else sendJson(res, 500, { error: { code: 'InternalError', message: err.message } })
      })
    })
    // scrapes and probes are small and quick: nothing is kept open for long
    this.server.headersTimeout = 10_000
    this.server.requestTimeout = 30_000
    this.server.keepAliveTimeout = 5_000
  }

  /** `HOST:PORT` as bound (brackets around an IPv6 address; the port chosen when 0 was asked for). */
  get address (): string {
    return `${bracketed(this.init.host)}:${this.port}`
  }

  /** A URL that reaches the listener from this host: a wildcard address (`0.0.0.0`, `::`) becomes loopback. */
  get url (): string {
    const host = this.init.host === '0.0.0.0' ? '127.0.0.1' : this.init.host === '::' ? '::1' : this.init.host
    return `http://${bracketed(host)}:${this.port}`
  }

  /** Listen; throws {@link MetricsListenFailedError} if the address cannot be bound. */
  async start (): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject)
        this.server.listen(this.init.port, this.init.host, () => {
          this.server.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      throw new MetricsListenFailedError(`--metrics ${bracketed(this.init.host)}:${this.init.port}: cannot listen: ${listenProblem(err as NodeJS.ErrnoException)}`)
    }
    this.port = (this.server.address() as AddressInfo).port
  }

  /** Close every connection and stop listening. */
  async stop (): Promise<void> {
    if (!this.server.listening) return
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => { resolve() }))
  }

  private async handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // a body is never read: drop it rather than keep it buffered
    req.resume()
    let path: string
    try {
      path = new URL(req.url ?? '/', 'http://metrics').pathname
    } catch {
      sendJson(res, 400, { error: { code: 'BadRequest', message: 'the request target is not a valid path' } })
      return
    }
    if (!ROUTES.has(path)) {
      sendJson(res, 404, { error: { code: 'NotFound', message: `${path}: this listener serves only GET /metrics and GET /healthz (the control API has the rest, with its token)` } })
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: { code: 'MethodNotAllowed', message: `${req.method ?? '?'} ${path}: read-only, only GET and HEAD` } }, { allow: 'GET, HEAD' })
      return
    }
    if (path === '/metrics') {
      send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', await this.c.metricsText())
      return
    }
    const report = this.c.health()
    sendJson(res, report.status === 'ok' ? 200 : 503, report)
  }
}
