/**
 * pykv protocol 1 ↔ protocol 2 over HTTP, one message at a time. Shared by past.js and
 * future.js, which translate between the same two versions from opposite sides.
 *
 * A message is what the daemon hands a simulation object for a `wire: "http"` app:
 * a request `{ method, path, headers, body }`, a response `{ status, headers, body }`,
 * header names in lower case, `body` a Uint8Array. The daemon sets Content-Length on what
 * it forwards, so the messages built here carry only the headers that mean something:
 * `content-type`, and `x-replica`, which must cross or a copy would be copied again.
 *
 *   protocol 1: PUT /kv/<key>     body: the value as text  → 200 the value as text
 *               GET /kv/<key>                              → 200 the value as text, 404 when absent
 *   protocol 2: PUT /v2/kv/<key>  {"value", "updated"?}    → 200 {"value", "updated"}
 *               GET /v2/kv/<key>                           → 200 {"value", "updated"}, 404 {"error"}
 */

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })
const text = (body) => decoder.decode(body ?? new Uint8Array())
const json = (value) => encoder.encode(JSON.stringify(value))
const TEXT = { 'content-type': 'text/plain; charset=utf-8' }
const JSON_TYPE = { 'content-type': 'application/json' }

// the key stays percent-encoded as it came: nothing to decode, so nothing to get wrong
const V1_PATH = /^\/kv\/([^?]+)(\?.*)?$/
const V2_PATH = /^\/v2\/kv\/([^?]+)(\?.*)?$/

const replica = (req) => req.headers?.['x-replica'] === '1' ? { 'x-replica': '1' } : {}

/** The key of a request path, or an error naming what was expected (the SO turns it into a 502). */
function keyOf (req, pattern, expected) {
  const key = pattern.exec(req.path ?? '')?.[1]
  if (key == null) throw new Error(`${req.method} ${req.path}: expected ${expected}`)
  if (req.method !== 'GET' && req.method !== 'PUT') throw new Error(`${req.method} ${req.path}: pykv knows GET and PUT`)
  return key
}

/** A protocol 1 request as protocol 2. */
export function toV2Request (req) {
  const key = keyOf(req, V1_PATH, 'PUT or GET /kv/<key>')
  if (req.method === 'GET') return { method: 'GET', path: `/v2/kv/${key}`, headers: replica(req), body: new Uint8Array() }
  // no `updated`: the v2 app stamps the write with its own clock
  return { method: 'PUT', path: `/v2/kv/${key}`, headers: { ...JSON_TYPE, ...replica(req) }, body: json({ value: text(req.body) }) }
}

/** A protocol 2 request as protocol 1 (a write's `updated` is lost: version 1 keeps no times). */
export function toV1Request (req) {
  const key = keyOf(req, V2_PATH, 'PUT or GET /v2/kv/<key>')
  if (req.method === 'GET') return { method: 'GET', path: `/kv/${key}`, headers: replica(req), body: new Uint8Array() }
  const { value } = JSON.parse(text(req.body))
  if (typeof value !== 'string') throw new Error(`PUT ${req.path}: expected {"value": "…"} with a string value`)
  return { method: 'PUT', path: `/kv/${key}`, headers: { ...TEXT, ...replica(req) }, body: encoder.encode(value) }
}

/** The error text of a response body in either version (a daemon's own error may be plain text). */
function errorOf (body) {
  const s = text(body)
  try { return JSON.parse(s).error ?? s } catch { return s }
}

/** A protocol 1 response as protocol 2; `updated` 0: version 1 keeps no times (as up.py writes). */
export function toV2Response (res) {
  if (res.status === 200) return { status: 200, headers: JSON_TYPE, body: json({ value: text(res.body), updated: 0 }) }
  return { status: res.status, headers: JSON_TYPE, body: json({ error: errorOf(res.body) }) }
}

/** A protocol 2 response as protocol 1. */
export function toV1Response (res) {
  if (res.status === 200) {
    const { value } = JSON.parse(text(res.body))
    if (typeof value !== 'string') throw new Error('pykv 2 answered 200 without a string value')
    return { status: 200, headers: TEXT, body: encoder.encode(value) }
  }
  return { status: res.status, headers: TEXT, body: encoder.encode(errorOf(res.body)) }
}
