/**
 * Protocol 2 ↔ protocol 3, shared by so/past.js and so/future.js. `set` and `get` map
 * one to one; `incr` has no protocol 2 form and is emulated with a fetch and a set.
 * The `replica` flag crosses in both directions.
 */

const replica = (req) => req.replica === true ? { replica: true } : {}

/** A protocol 2 request as protocol 3. */
export function toV3 (req) {
  if (req?.action === 'set') return { cmd: ['set', req.k, req.v], ...replica(req) }
  if (req?.action === 'fetch') return { cmd: ['get', req.k] }
  throw new Error(`kv 2 request with unknown action ${JSON.stringify(req?.action)}`)
}

/** A protocol 3 `set` or `get` as protocol 2 (`incr`: see {@link incrOnV2}). */
export function toV2 (req) {
  const [op, k, v] = Array.isArray(req?.cmd) ? req.cmd : []
  if (op === 'set') return { action: 'set', k, v, ...replica(req) }
  if (op === 'get') return { action: 'fetch', k }
  throw new Error(`kv 3 command ${JSON.stringify(op)} has no kv 2 form`)
}

/** A protocol 2 response as protocol 3. */
export const toV3Response = (res) => ({ ok: res?.result ?? null })

/** A protocol 3 response as protocol 2. */
export const toV2Response = (res) => ({ result: res?.ok ?? null })

/**
 * `incr` on a node that speaks protocol 2, through `send` (a local app or a remote peer):
 * fetch the number, set the sum, answer as protocol 3 would. Not atomic: two increments
 * emulated at the same moment may both read the same number and one is lost. That is the
 * price of emulating an operation the old version lacks; it ends when every peer runs 3.
 */
export async function incrOnV2 (req, send) {
  const [, k, by] = req.cmd
  const now = (await send({ action: 'fetch', k })).result ?? 0
  if (typeof by !== 'number' || typeof now !== 'number') throw new Error(`incr needs a number, and ${JSON.stringify(k)} to hold one`)
  return toV3Response(await send({ action: 'set', k, v: now + by, ...replica(req) }))
}

/** True for an `incr` command. */
export const isIncr = (req) => Array.isArray(req?.cmd) && req.cmd[0] === 'incr'
