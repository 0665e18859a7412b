/**
 * tcpchat protocol 1 ↔ protocol 2, line by line. Shared by past.js and future.js, which
 * translate between the same two versions from opposite sides.
 *
 * A connection of a `wire: "tcp"` app is bytes, and a simulation object for it is a pair
 * of transforms over chunks of those bytes (docs/shim.md, "Stream simulation objects").
 * Chunks are cut anywhere — in the middle of a line, of a UTF-8 character — so `lines`
 * gathers whole lines first (at most MAX_LINE bytes each: a longer one fails the
 * connection rather than fill the memory), translates each JSON line, and passes any other
 * line on as it is (the app answers it with its own error).
 *
 *   protocol 1: {"op": "post", "from", "text"}   {"op": "list"}  {"op": "echo", "text"}   {"op": "ask", "host", "request"}
 *               replies {"ok", "id"?, "messages"?: [{"id", "from", "text"}], "text"?, "reply"?, "error"?}
 *   protocol 2: {"cmd": "post", "author", "body"} {"cmd": "list"} {"cmd": "echo", "body"} {"cmd": "ask", "host", "request"}
 *               replies {"ok", "id"?, "messages"?: [{"id", "author", "body"}], "body"?, "reply"?, "error"?}
 */

const MAX_LINE = 16 * 1024 * 1024
const NEWLINE = 0x0a
const END = Uint8Array.of(NEWLINE)
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** `value` with its keys renamed by `names` (old → new), the others kept, in their order. */
function renamed (value, names) {
  if (value == null || typeof value !== 'object' || Array.isArray(value)) return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [names[k] ?? k, v]))
}

const V1_TO_V2 = { op: 'cmd', from: 'author', text: 'body' }
const V2_TO_V1 = { cmd: 'op', author: 'from', body: 'text' }

/** A protocol 1 request as protocol 2 (the request an `ask` carries too: it goes on to another peer). */
export function requestToV2 (req) {
  const out = renamed(req, V1_TO_V2)
  if (out?.request != null) out.request = requestToV2(out.request)
  return out
}

/** A protocol 2 request as protocol 1. */
export function requestToV1 (req) {
  const out = renamed(req, V2_TO_V1)
  if (out?.request != null) out.request = requestToV1(out.request)
  return out
}

/** A protocol 1 reply as protocol 2. */
export function replyToV2 (reply) {
  const out = renamed(reply, { from: 'author', text: 'body' })
  if (Array.isArray(out?.messages)) out.messages = out.messages.map(m => renamed(m, { from: 'author', text: 'body' }))
  if (out?.reply != null) out.reply = replyToV2(out.reply)
  return out
}

/** A protocol 2 reply as protocol 1. */
export function replyToV1 (reply) {
  const out = renamed(reply, { author: 'from', body: 'text' })
  if (Array.isArray(out?.messages)) out.messages = out.messages.map(m => renamed(m, { author: 'from', body: 'text' }))
  if (out?.reply != null) out.reply = replyToV1(out.reply)
  return out
}

/** One line (without its newline) translated; a line that is not JSON passes as it is. */
function translateLine (bytes, translate) {
  let value
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    return bytes
  }
  return encoder.encode(JSON.stringify(translate(value)))
}

function concat (parts, length) {
  if (parts.length === 1) return parts[0]
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}

/** A stream transform that translates each NDJSON line with `translate`: one chunk out per chunk in that ends a line. */
export function lines (translate) {
  return async function * (source) {
    // the line begun and not yet ended: pieces of earlier chunks
    let parts = []
    let length = 0
    for await (const chunk of source) {
      const out = []
      let outLength = 0
      let start = 0
      let newline
      while ((newline = chunk.indexOf(NEWLINE, start)) !== -1) {
        parts.push(chunk.subarray(start, newline))
        const line = translateLine(concat(parts, length + newline - start), translate)
        parts = []
        length = 0
        out.push(line, END)
        outLength += line.byteLength + 1
        start = newline + 1
      }
      if (start < chunk.byteLength) {
        // a copy: whoever sent the chunk may reuse it
        parts.push(chunk.slice(start))
        length += chunk.byteLength - start
        if (length > MAX_LINE) throw new Error(`a line longer than ${MAX_LINE} bytes`)
      }
      if (out.length > 0) yield concat(out, outLength)
    }
    // the last line, if the connection ended without a newline
    if (length > 0) yield translateLine(concat(parts, length), translate)
  }
}
