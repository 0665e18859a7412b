/**
 * store protocol 1 ↔ protocol 2, one request at a time. Shared by so/past.js and
 * so/future.js, which translate between the same two versions from opposite sides.
 */

/** A protocol 1 request as protocol 2. */
export function toV2 (req) {
  if (req?.op === 'put') return { cmd: 'set', key: req.key, value: req.value }
  if (req?.op === 'get') return { cmd: 'get', key: req.key }
  throw new Error(`store 1 request with unknown op ${JSON.stringify(req?.op)}`)
}

/** A protocol 2 request as protocol 1. */
export function toV1 (req) {
  if (req?.cmd === 'set') return { op: 'put', key: req.key, value: req.value }
  if (req?.cmd === 'get') return { op: 'get', key: req.key }
  throw new Error(`store 2 request with unknown cmd ${JSON.stringify(req?.cmd)}`)
}

/** A protocol 2 response as protocol 1: `{ entry: { value, rev } }` → `{ value }`. */
export const toV1Response = (res) => ({ value: res?.entry?.value ?? null })

/**
 * A protocol 1 response as protocol 2. A 1.0.0 store keeps no revisions: `rev` is null,
 * and an absent key (null) is no entry.
 */
export const toV2Response = (res) => res?.value == null ? { entry: null } : { entry: { value: res.value, rev: null } }
