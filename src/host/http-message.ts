/**
 * HTTP messages as process apps exchange them through the shim: a request
 * `{ method, path, headers, body }` and a response `{ status, headers, body }`, header
 * names lower-case, `body` bytes, `path` the origin-form target with its query. The proxy
 * builds them from what an app sends; the daemon of the peer called makes the HTTP request
 * to its app from them. Hop-by-hop and proxy headers never cross.
 */
import type http from 'node:http'
import { Readable } from 'node:stream'
import { joinBytes } from '../bytes.js'
import { UpgossipError } from '../errors.js'

/** An HTTP request between apps. */
export interface HttpRequestMessage {
  method: string
  path: string
  headers: Record<string, string>
  body: Uint8Array
}

/** An HTTP response between apps. */
export interface HttpResponseMessage {
  status: number
  headers: Record<string, string>
  body: Uint8Array
}

/** A message that is not a valid HTTP request or response (from a peer, or an SO). */
export class MalformedHttpMessageError extends UpgossipError {
  static override name = 'MalformedHttpMessageError'
}

/** A body over the limit of what is carried whole. */
export class HttpBodyTooLargeError extends UpgossipError {
  static override name = 'HttpBodyTooLargeError'
}

/** A body this short is read whole before it is passed on: it goes in one write with its head. */
export const SMALL_BODY = 64 * 1024

/** Largest body carried between apps in one message. */
export const MAX_HTTP_BODY = 16 * 1024 * 1024

/** Headers that concern one connection, not the message: never forwarded (RFC 9110 §7.6.1), with the proxy's own. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'host'])

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/

/** Headers as forwarded: lower-case names, joined values, without hop-by-hop headers or those the Connection header names. */
export function forwardedHeaders (raw: http.IncomingHttpHeaders): Record<string, string> {
  const named = new Set(String(raw.connection ?? '').toLowerCase().split(',').map(h => h.trim()).filter(h => h !== ''))
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(raw)) {
    const key = name.toLowerCase()
    if (value == null || HOP_BY_HOP.has(key) || named.has(key)) continue
    out[key] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

function headersOf (value: unknown, where: string): Record<string, string> {
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new MalformedHttpMessageError(`${where}: "headers" is not an object`)
  const out: Record<string, string> = {}
  const entries = Object.entries(value)
  if (entries.length > 256) throw new MalformedHttpMessageError(`${where}: more than 256 headers`)
  for (const [name, v] of entries) {
    const key = name.toLowerCase()
    if (!TOKEN.test(key) || typeof v !== 'string' || v.length > 16384 || /[\r\n\0]/.test(v)) throw new MalformedHttpMessageError(`${where}: header "${key.slice(0, 64)}" is not valid`)
    if (!HOP_BY_HOP.has(key)) out[key] = v
  }
  return out
}

function bodyOf (value: unknown, where: string): Uint8Array {
  if (value == null) return new Uint8Array(0)
  if (typeof value === 'string') return new TextEncoder().encode(value)
  if (!(value instanceof Uint8Array)) throw new MalformedHttpMessageError(`${where}: "body" is not bytes`)
  if (value.byteLength > MAX_HTTP_BODY) throw new HttpBodyTooLargeError(`${where}: the body of ${value.byteLength} bytes is over the ${MAX_HTTP_BODY}-byte limit`)
  return value
}

/**
 * The head of a streamed request (same-version HTTP between peers): the request without
 * its body, and the body's length when the caller gave one (absent: it came chunked).
 */
export type HttpRequestHead = Omit<HttpRequestMessage, 'body'> & { length?: number }
/** The head of a streamed response. */
export type HttpResponseHead = Omit<HttpResponseMessage, 'body'> & { length?: number }

function lengthOf (value: unknown, where: string): number | undefined {
  if (value == null) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new MalformedHttpMessageError(`${where}: "length" is not a byte count`)
  return value
}

/** Check the head of a request (a message's, or a streamed one's). */
export function toHttpRequestHead (value: unknown): HttpRequestHead {
  if (value == null || typeof value !== 'object') throw new MalformedHttpMessageError('an HTTP request message is an object { method, path, headers, body }')
  const m = value as Record<string, unknown>
  const method = m.method ?? 'GET'
  if (typeof method !== 'string' || !TOKEN.test(method)) throw new MalformedHttpMessageError('request: "method" is not an HTTP method')
  if (typeof m.path !== 'string' || !/^\/[\x21-\x7e]{0,8191}$/.test(m.path)) throw new MalformedHttpMessageError('request: "path" must be an origin-form target such as "/kv/a?x=1"')
  const length = lengthOf(m.length, 'request')
  return { method: method.toUpperCase(), path: m.path, headers: headersOf(m.headers ?? {}, 'request'), ...(length == null ? {} : { length }) }
}

/** Check a request message (from a peer, a caller of `upgossip call`, or an SO); a string body is taken as UTF-8. */
export function toHttpRequest (value: unknown): HttpRequestMessage {
  const { method, path, headers } = toHttpRequestHead(value)
  return { method, path, headers, body: bodyOf((value as Record<string, unknown>).body, 'request') }
}

/** Check the head of a response (a message's, or a streamed one's). */
export function toHttpResponseHead (value: unknown): HttpResponseHead {
  if (value == null || typeof value !== 'object') throw new MalformedHttpMessageError('an HTTP response message is an object { status, headers, body }')
  const m = value as Record<string, unknown>
  if (typeof m.status !== 'number' || !Number.isInteger(m.status) || m.status < 100 || m.status > 599) throw new MalformedHttpMessageError('response: "status" is not an HTTP status')
  const length = lengthOf(m.length, 'response')
  return { status: m.status, headers: headersOf(m.headers ?? {}, 'response'), ...(length == null ? {} : { length }) }
}

/** Check a response message (from a peer's app, or an SO). */
export function toHttpResponse (value: unknown): HttpResponseMessage {
  const { status, headers } = toHttpResponseHead(value)
  return { status, headers, body: bodyOf((value as Record<string, unknown>).body, 'response') }
}

/** A response for people (`upgossip call`): the body as text when it is UTF-8, else as base64. */
export function printableResponse (response: HttpResponseMessage): { status: number, headers: Record<string, string>, body?: string, bodyBase64?: string } {
  try {
    return { status: response.status, headers: response.headers, body: new TextDecoder('utf-8', { fatal: true }).decode(response.body) }
  } catch {
    return { status: response.status, headers: response.headers, bodyBase64: Buffer.from(response.body).toString('base64') }
  }
}

/**
 * Read a whole body, at most `limit` bytes; throws {@link HttpBodyTooLargeError}. A
 * readable stream is left open when the limit is passed (a `for await` would destroy it,
 * and with it the client's connection): the caller can still answer 413 and let the rest
 * of the body drain. A Node stream is read by its events, not through an async iterator:
 * per request, on the short bodies of most calls, the iterator cost more than the read.
 */
export async function readBody (stream: AsyncIterable<unknown> & { iterator?: (options: { destroyOnReturn: boolean }) => AsyncIterable<unknown> }, limit = MAX_HTTP_BODY): Promise<Uint8Array> {
  if (stream instanceof Readable) return await readNodeBody(stream, limit)
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of stream) {
    const buf = chunk as Uint8Array
    total += buf.byteLength
    if (total > limit) throw new HttpBodyTooLargeError(`the body is over the ${limit}-byte limit`)
    chunks.push(buf)
  }
  return joinBytes(chunks, total)
}

async function readNodeBody (stream: Readable, limit: number): Promise<Uint8Array> {
  if (stream.readableEnded) return new Uint8Array(0)
  if (stream.destroyed) throw Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
  return await new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = []
    let total = 0
    const done = (): void => {
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onError)
      stream.off('close', onClose)
    }
    const onData = (chunk: Uint8Array): void => {
      total += chunk.byteLength
      if (total > limit) {
        done()
        // left open and paused: the caller answers, and lets the rest drain
        stream.pause()
        reject(new HttpBodyTooLargeError(`the body is over the ${limit}-byte limit`))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => {
      done()
      resolve(joinBytes(chunks, total))
    }
    const onError = (err: Error): void => {
      done()
      reject(err)
    }
    // closed before its end (the connection broke): what a `for await` would throw
    const onClose = (): void => {
      done()
      reject(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))
    }
    stream.on('data', onData)
    stream.on('end', onEnd)
    stream.on('error', onError)
    stream.on('close', onClose)
  })
}
