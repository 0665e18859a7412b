/**
 * Protocol 1 ↔ protocol 2, one request at a time. Shared by so/past.js and
 * so/future.js, which translate between the same two versions from opposite sides.
 * The `replica` flag must cross too: without it a copy would be copied again.
 */

const replica = (req) => req.replica === true ? { replica: true } : {}

/** A protocol 1 request as protocol 2. */
export function toV2 (req) {
  if (req?.op === 'put') return { action: 'set', k: req.key, v: req.value, ...replica(req) }
  if (req?.op === 'get') return { action: 'fetch', k: req.key }
  throw new Error(`kv 1 request with unknown op ${JSON.stringify(req?.op)}`)
}

/** A protocol 2 request as protocol 1. */
export function toV1 (req) {
  if (req?.action === 'set') return { op: 'put', key: req.k, value: req.v, ...replica(req) }
  if (req?.action === 'fetch') return { op: 'get', key: req.k }
  throw new Error(`kv 2 request with unknown action ${JSON.stringify(req?.action)}`)
}

// responses: `{ value }` in 1, `{ result }` in 2 (`?? null`: undefined cannot go on the wire)

/** A protocol 1 response as protocol 2. */
export const toV2Response = (res) => ({ result: res?.value ?? null })

/** A protocol 2 response as protocol 1. */
export const toV1Response = (res) => ({ value: res?.result ?? null })
