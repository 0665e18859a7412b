/**
 * The daemon's HTTP requests to its process app's port, on connections kept open between
 * requests (a new connection per request cost the app as much as the request itself): a
 * message carried whole, or a streamed one whose body goes in and comes out as it flows.
 *
 * @example
 * ```ts
 * const client = new AppHttpClient('kv@2.0.0')
 * const response = await client.forward(port, { method: 'GET', path: '/kv/a', headers: {}, body: new Uint8Array() }, 30_000)
 * client.close()
 * ```
 */
import { once } from 'node:events'
import http from 'node:http'
import { UpgossipError } from '../errors.js'
import { SMALL_BODY, readBody, toHttpResponseHead } from './http-message.js'
import type { HttpRequestHead, HttpRequestMessage, HttpResponseHead, HttpResponseMessage } from './http-message.js'

/** The app could not be reached, or did not answer in time. */
export class ProcessAppError extends UpgossipError {
  static override name = 'ProcessAppError'
}

/** A streamed response: its head, and its body whole (when short) or as it comes. */
export interface StreamedHttpResponse {
  head: HttpResponseHead
  body: Uint8Array | AsyncIterable<Uint8Array>
}

/** HTTP requests to one app's port. */
export class AppHttpClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 16 })
  constructor (private readonly label: string) {}

  /** A request message, answered by a response message (the body read whole). */
  async forward (port: number, message: HttpRequestMessage, timeoutMs: number): Promise<HttpResponseMessage> {
    const { res } = await this.send(port, { ...message, length: message.body.byteLength }, message.body, timeoutMs)
    const head = responseHead(res)
    return { status: head.status, headers: head.headers, body: await readBody(res) }
  }

  /** A streamed request: its body goes to the app as it comes; the response's body comes back the same way (whole when short). */
  async forwardStreamed (port: number, head: HttpRequestHead, body: Uint8Array | AsyncIterable<Uint8Array>, timeoutMs: number): Promise<StreamedHttpResponse> {
    const { res } = await this.send(port, head, body, timeoutMs)
    const answer = responseHead(res)
    if (answer.length != null && answer.length <= SMALL_BODY) return { head: answer, body: await readBody(res, SMALL_BODY) }
    return { head: answer, body: res }
  }

  private async send (port: number, head: HttpRequestHead, body: Uint8Array | AsyncIterable<Uint8Array>, timeoutMs: number): Promise<{ res: http.IncomingMessage }> {
    return await new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        method: head.method,
        path: head.path,
        // no length: the caller sent it chunked, and so does this request
        headers: head.length == null ? head.headers : { ...head.headers, 'content-length': String(head.length) },
        timeout: timeoutMs,
        agent: this.agent
      }, res => { resolve({ res }) })
      req.once('timeout', () => { req.destroy(new ProcessAppError(`${this.label} did not answer within ${timeoutMs} ms`)) })
      req.once('error', err => { reject(err instanceof ProcessAppError ? err : new ProcessAppError(`${this.label} could not be reached on port ${port}: ${err.message}`)) })
      if (body instanceof Uint8Array) {
        req.end(body)
        return
      }
      writeAll(req, body).catch((err: Error) => { req.destroy(new ProcessAppError(`the request's body broke off: ${err.message}`)) })
    })
  }

  /** Close the kept connections. */
  close (): void {
    this.agent.destroy()
  }
}

/** Write every chunk, waiting for the socket to drain when it asks to. */
async function writeAll (req: http.ClientRequest, body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const chunk of body) {
    if (!req.write(chunk)) await once(req, 'drain')
  }
  req.end()
}

function responseHead (res: http.IncomingMessage): HttpResponseHead {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(res.headers)) if (value != null) headers[name] = Array.isArray(value) ? value.join(', ') : value
  const length = res.headers['content-length'] == null ? undefined : Number(res.headers['content-length'])
  return toHttpResponseHead({ status: res.statusCode ?? 502, headers, ...(length == null || !Number.isSafeInteger(length) ? {} : { length }) })
}
