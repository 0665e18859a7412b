/**
 * The daemon's local proxy for process apps: an HTTP forward proxy on 127.0.0.1 whose
 * credentials are in the URL the app gets (`UPGOSSIP_PROXY`). `http://<peer host>/path`
 * reaches that peer's app through the shim, `http://upgossip/peers` lists the peers; an
 * app reaches nothing else through it. A request without the credentials gets 407.
 *
 * @example
 * ```sh
 * curl -x "$UPGOSSIP_PROXY" http://upgossip/peers
 * curl -x "$UPGOSSIP_PROXY" -X PUT --data v http://k51qzi5uqu5d…/kv/a
 * ```
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { UpgossipError } from '../errors.js'
import type { Route } from '../ipc/index.js'
import { peerFromHost, peerHost } from '../net/index.js'
import { HttpBodyTooLargeError, forwardedHeaders, readBody, toHttpResponse } from './http-message.js'
import type { HttpRequestMessage, HttpResponseMessage } from './http-message.js'

/** The host name that answers about the network itself. */
const SELF_HOST = 'upgossip'

/** A peer as `http://upgossip/peers` lists it. */
export interface ProxyPeer {
  id: string
  app: string | null
  version: string | null
  protocol: number | null
}

/** What the proxy needs. */
export interface AppProxyComponents {
  /** This peer's id. */
  selfId: () => string
  /** The peers in view (this one left out). */
  peers: () => ProxyPeer[]
  /** Where a call to `peer` goes (null: this peer's own app). */
  route: (peer: string | null) => Promise<Route>
  /** Send a request of protocol `version` to `peer`'s app. */
  send: (peer: string, version: number, request: HttpRequestMessage) => Promise<unknown>
  /** A request of this peer's app to itself. */
  deliverSelf: (request: HttpRequestMessage) => Promise<unknown>
  log: (message: string) => void
}

class ProxyError extends UpgossipError {
  constructor (readonly status: number, message: string) {
    super(message)
  }
}

/** Serves the proxy. */
export class AppProxy {
  private readonly c: AppProxyComponents
  private readonly token = randomBytes(18).toString('hex')
  private readonly server: http.Server
  private port = 0

  constructor (components: AppProxyComponents) {
    this.c = components
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        const status = err instanceof ProxyError ? err.status : err instanceof HttpBodyTooLargeError ? 413 : 502
        // one line per refused request (the event log bounds how many a minute)
        this.c.log(`proxy: ${req.method ?? '?'} ${(req.url ?? '').slice(0, 200)}: ${status} ${err.name}: ${err.message}`)
        send(res, status, { 'content-type': 'application/json' }, JSON.stringify({ error: { code: err.name, message: err.message } }) + '\n')
      })
    })
    // a request that does not parse (a malformed request line, say): answered as Node would, and logged
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy()
        return
      }
      const [status, text] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request']
      this.c.log(`proxy: refused a malformed request with ${status} (${err.code ?? err.message})`)
      socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
    })
    // CONNECT (wire "tcp") is not served by this build: a clear refusal, not a hang
    this.server.on('connect', (_req: http.IncomingMessage, socket: Duplex) => {
      socket.end('HTTP/1.1 501 Not Implemented\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nCONNECT (wire "tcp") is not supported by this build of upgossip yet\n')
    })
    this.server.headersTimeout = 10_000
  }

  /** `http://upgossip:TOKEN@127.0.0.1:PORT`: what the app gets as `UPGOSSIP_PROXY`. */
  get url (): string {
    return `http://upgossip:${this.token}@127.0.0.1:${this.port}`
  }

  /** Listen on 127.0.0.1 (an ephemeral port). */
  async start (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    this.port = (this.server.address() as AddressInfo).port
  }

  /** Close every connection and stop listening. */
  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => { resolve() }))
  }

  private authorised (req: http.IncomingMessage): boolean {
    const header = req.headers['proxy-authorization'] ?? ''
    if (!header.startsWith('Basic ')) return false
    const given = Buffer.from(header.slice(6).trim(), 'base64')
    const wanted = Buffer.from(`upgossip:${this.token}`)
    return given.length === wanted.length && timingSafeEqual(given, wanted)
  }

  private async handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.authorised(req)) {
      this.c.log(`proxy: ${req.method ?? '?'} ${(req.url ?? '').slice(0, 200)}: 407 without the credentials of UPGOSSIP_PROXY`)
      send(res, 407, { 'proxy-authenticate': 'Basic realm="upgossip"', 'content-type': 'text/plain' }, 'the proxy wants the credentials of UPGOSSIP_PROXY\n')
      return
    }
    let target: URL
    try {
      target = new URL(req.url ?? '')
    } catch {
      throw new ProxyError(400, 'a proxy request names an absolute URL: http://<peer host>/path')
    }
    if (target.protocol !== 'http:') throw new ProxyError(400, `only http:// URLs go through the proxy, not ${target.protocol}`)
    const host = target.hostname.toLowerCase()
    const path = `${target.pathname}${target.search}`
    if (host === SELF_HOST) {
      if (path !== '/peers') throw new ProxyError(404, `http://${SELF_HOST}/ answers /peers only`)
      const self = this.c.selfId()
      const peers = this.c.peers().map(p => ({ id: p.id, host: peerHost(p.id), app: p.app, version: p.version, protocol: p.protocol }))
      send(res, 200, { 'content-type': 'application/json' }, JSON.stringify({ self, selfHost: peerHost(self), peers }) + '\n')
      return
    }
    const peer = peerFromHost(host)
    if (peer == null) throw new ProxyError(404, `${host} is not a peer host: the proxy reaches peers only (http://${SELF_HOST}/peers lists them)`)
    const message: HttpRequestMessage = { method: req.method ?? 'GET', path, headers: forwardedHeaders(req.headers), body: await readBody(req) }
    const answer: HttpResponseMessage = peer === this.c.selfId()
      ? toHttpResponse(await this.c.deliverSelf(message))
      : await this.toPeer(peer, message)
    send(res, answer.status, answer.headers, answer.body)
  }

  private async toPeer (peer: string, message: HttpRequestMessage): Promise<HttpResponseMessage> {
    const route = await this.c.route(peer)
    if (route.self) return toHttpResponse(await this.c.deliverSelf(message))
    return toHttpResponse(await this.c.send(peer, route.version, message))
  }
}

function send (res: http.ServerResponse, status: number, headers: Record<string, string>, body: string | Uint8Array): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const bytes = typeof body === 'string' ? Buffer.from(body) : body
  res.writeHead(status, { ...headers, 'content-length': String(bytes.byteLength) })
  res.end(bytes)
}
