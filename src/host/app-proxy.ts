/**
 * The daemon's local proxy for process apps: an HTTP forward proxy on 127.0.0.1 whose
 * credentials are in the URL the app gets (`UPGOSSIP_PROXY`). `http://<peer host>/path`
 * reaches that peer's app through the shim, `http://upgossip/peers` lists the peers, and
 * `CONNECT <peer host>:1` opens a byte stream to that peer's app (wire "tcp"); an app
 * reaches nothing else through it. A request without the credentials gets 407.
 *
 * @example
 * ```sh
 * curl -x "$UPGOSSIP_PROXY" http://upgossip/peers
 * curl -x "$UPGOSSIP_PROXY" -X PUT --data v http://k51qzi5uqu5d…/kv/a
 * # wire "tcp": CONNECT k51qzi5uqu5d…:1 HTTP/1.1 (with Proxy-Authorization), then the app's bytes
 * ```
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { UpgossipError } from '../errors.js'
import type { Route } from '../ipc/index.js'
import { peerFromHost, peerHost } from '../net/index.js'
import { HttpBodyTooLargeError, SMALL_BODY, forwardedHeaders, readBody, toHttpResponse, toHttpResponseHead } from './http-message.js'
import type { HttpRequestHead, HttpRequestMessage, HttpResponseMessage } from './http-message.js'
import { socketByteStream } from './socket-stream.js'
import type { Pipe } from './tcp-app.js'

/** The host name that answers about the network itself. */
const SELF_HOST = 'upgossip'
/** Peer hosts remembered at most (peers in view are far fewer). */
const MAX_HOSTS = 4096
const NO_BODY = new Uint8Array(0)

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
  /** Send a request of protocol `version` to `peer`'s app (of `app`, another class, when the route named one). */
  send: (peer: string, version: number, request: HttpRequestMessage, app?: string) => Promise<unknown>
  /** A request of this peer's app to itself, its body streamed in, the answer's streamed out (held across a switch like a peer's). */
  exchangeSelf: (head: HttpRequestHead, body: Uint8Array | AsyncIterable<Uint8Array>) => Promise<{ head: unknown, body: Uint8Array | AsyncIterable<Uint8Array> }>
  /** True when a request to `peer` in `version` can go as a streamed exchange (both apps speak it natively). */
  streams: (peer: string, version: number) => Promise<boolean>
  /** A streamed exchange with `peer`'s app in `version`: the answer's head once it came, its body as it comes. */
  exchange: (peer: string, version: number, head: HttpRequestHead, body: Uint8Array | AsyncIterable<Uint8Array>) => Promise<{ head: unknown, body: AsyncIterable<Uint8Array> }>
  /** A connection of this peer's app (wire "tcp") to `peer`, this peer included: resolves, once the other side accepted it, with what carries its bytes. */
  connect: (peer: string) => Promise<Pipe>
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
  /** Sockets handed over by CONNECT: the HTTP server no longer tracks them. */
  private readonly tunnels = new Set<Socket>()
  private port = 0
  /** Peer hosts already decoded (see {@link peerOf}). */
  private readonly hosts = new Map<string, string>()

  constructor (components: AppProxyComponents) {
    this.c = components
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        const status = err instanceof ProxyError ? err.status : err instanceof HttpBodyTooLargeError ? 413 : 502
        // one line per refused request (the event log bounds how many a minute)
        this.c.log(`proxy: ${req.method ?? '?'} ${(req.url ?? '').slice(0, 200)}: ${status} ${err.name}: ${err.message}`)
        // the rest of a body not read is let through first (for a while): answered while the app
        // still sends, the answer may reach it as a broken pipe instead
        void drained(req, 5000).then(() => {
          send(res, status, { 'content-type': 'application/json' }, JSON.stringify({ error: { code: err.name, message: err.message } }) + '\n')
        })
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
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.tunnel(req, socket as Socket, head)
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
    for (const socket of this.tunnels) socket.destroy()
    await new Promise<void>(resolve => this.server.close(() => { resolve() }))
  }

  /** The peer id of a peer host, remembered: decoding the CID took a tenth of the proxy's time per request. */
  private peerOf (host: string): string | undefined {
    let peer = this.hosts.get(host)
    if (peer == null) {
      peer = peerFromHost(host)
      if (peer == null) return undefined
      if (this.hosts.size >= MAX_HOSTS) this.hosts.clear()
      this.hosts.set(host, peer)
    }
    return peer
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
    const peer = this.peerOf(host)
    if (peer == null) throw new ProxyError(404, `${host} is not a peer host: the proxy reaches peers only (http://${SELF_HOST}/peers lists them)`)
    const head: HttpRequestHead = { method: req.method ?? 'GET', path, headers: forwardedHeaders(req.headers) }
    const length = bodyLength(req)
    if (length != null) head.length = length
    // a short body is read at once: it goes out in one write with its head (none: nothing to read)
    const body: Uint8Array | undefined = length === 0 ? NO_BODY : length != null && length <= SMALL_BODY ? await readBody(req, SMALL_BODY) : undefined
    const route = peer === this.c.selfId() ? { self: true as const } : await this.c.route(peer)
    // this peer's own app: its version, streamed (the host holds it across a switch)
    if (route.self) {
      await pipeResponse(res, await this.c.exchangeSelf(head, body ?? req))
      return
    }
    if (route.app == null && await this.c.streams(peer, route.version)) {
      try {
        await pipeResponse(res, await this.c.exchange(peer, route.version, head, body ?? req))
        return
      } catch (err) {
        // the peer stopped speaking that version natively before anything was sent: carried whole instead
        if ((err as Error).name !== 'UnsupportedProtocolError') throw err
        this.c.log(`proxy: ${peer} no longer takes streamed requests in protocol ${route.version}; this one is carried whole`)
      }
    }
    const message: HttpRequestMessage = { method: head.method, path, headers: head.headers, body: body ?? await readBody(req) }
    const answer: HttpResponseMessage = toHttpResponse(await this.c.send(peer, route.version, message, route.app))
    send(res, answer.status, answer.headers, answer.body)
  }

  /** `CONNECT <peer host>:1`: the credentials, the host, then the peer's app; its bytes flow once the answer is 200. */
  private async tunnel (req: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => {})
    this.tunnels.add(socket)
    socket.once('close', () => { this.tunnels.delete(socket) })
    let pipe: Pipe
    try {
      if (!this.authorised(req)) {
        refuse(socket, 407, 'the proxy wants the credentials of UPGOSSIP_PROXY', { 'proxy-authenticate': 'Basic realm="upgossip"' })
        return
      }
      const target = /^([^\s:/@]{1,253}):([0-9]{1,5})$/.exec(req.url ?? '')
      if (target == null) throw new ProxyError(400, `CONNECT names <peer host>:1, not "${(req.url ?? '').slice(0, 100)}"`)
      const host = (target[1] as string).toLowerCase()
      if (host === SELF_HOST) throw new ProxyError(404, `${SELF_HOST} answers http://${SELF_HOST}/peers only; CONNECT <peer host>:1 reaches a peer's app`)
      const peer = this.peerOf(host)
      if (peer == null) throw new ProxyError(404, `${host} is not a peer host: the proxy reaches peers only (http://${SELF_HOST}/peers lists them)`)
      if (target[2] !== '1') throw new ProxyError(400, `CONNECT ${host}:${target[2] ?? ''}: a peer's app is port 1 (CONNECT ${host}:1)`)
      pipe = await this.c.connect(peer)
    } catch (err) {
      const status = err instanceof ProxyError ? err.status : connectStatus((err as Error).name)
      if (status >= 500) this.c.log(`proxy: CONNECT ${(req.url ?? '').slice(0, 200)}: ${(err as Error).name}: ${(err as Error).message}`)
      refuse(socket, status, err instanceof ProxyError ? err.message : `${(err as Error).name}: ${(err as Error).message}`)
      return
    }
    if (!socket.destroyed) socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    // called even if the app went away meanwhile: the peer's side is then reset
    await pipe(socketByteStream(socket, head))
  }
}

/** The request body's length: its Content-Length, none when it comes chunked, 0 when it has neither. */
function bodyLength (req: http.IncomingMessage): number | undefined {
  if (req.headers['transfer-encoding'] != null) return undefined
  const length = Number(req.headers['content-length'] ?? 0)
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined
}

/** Discard what is left of a request's body; resolves once it ended, or after `ms` (the connection is then closed `ms` later). */
async function drained (req: http.IncomingMessage, ms: number): Promise<void> {
  if (req.complete || req.destroyed) return
  await new Promise<void>(resolve => {
    const timer = setTimeout(() => {
      // answered now; the rest still coming is cut off a little later
      setTimeout(() => { req.socket.destroy() }, ms).unref()
      resolve()
    }, ms)
    const done = (): void => { clearTimeout(timer); resolve() }
    req.once('end', done)
    req.once('close', done)
    req.resume()
  })
}

/** A streamed answer to the app: its status and headers, then its body as it comes (the app's pace holds it back). */
async function pipeResponse (res: http.ServerResponse, answer: { head: unknown, body: Uint8Array | AsyncIterable<Uint8Array> }): Promise<void> {
  const head = toHttpResponseHead(answer.head)
  if (answer.body instanceof Uint8Array) {
    send(res, head.status, head.headers, answer.body)
    return
  }
  // a short body is read whole first: the app gets head and body in one write, and no loop of awaits per chunk
  // (its length as the head says: a response to HEAD says the length of a body it has not)
  if (head.length != null && head.length <= SMALL_BODY) {
    const bytes = await readBody(answer.body, SMALL_BODY)
    res.writeHead(head.status, { ...head.headers, 'content-length': String(head.length) })
    res.end(bytes)
    return
  }
  res.writeHead(head.status, head.length == null ? head.headers : { ...head.headers, 'content-length': String(head.length) })
  try {
    for await (const chunk of answer.body) {
      if (!res.write(chunk)) await once(res, 'drain')
    }
  } catch (err) {
    // the status went out already: the app sees the response cut short, not a made-up one
    res.destroy(err as Error)
    throw err
  }
  res.end()
}

/** The status of a CONNECT that could not be made, by the error's name. */
function connectStatus (name: string): number {
  if (name === 'WrongWireError') return 400
  if (name === 'AppNotRunningError' || name === 'NoAppRunningError' || name === 'RequestHoldOverflowError' || name === 'SimulationBusyError') return 503
  if (name.endsWith('TimeoutError')) return 504
  return 502
}

/** Answer a CONNECT with an error status and close. */
function refuse (socket: Socket, status: number, message: string, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return
  const body = Buffer.from(`${message}\n`)
  const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}`, 'content-type: text/plain; charset=utf-8', `content-length: ${body.byteLength}`, 'connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  // closed both ways once written: a client that keeps its side open must not keep the socket
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), body]), () => { socket.destroy() })
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
