/**
 * kv 3.0.0, protocol 3. A new wire, a new state file, and one new operation, `incr`,
 * which 2.0.0 does not have: peers still on 2.0.0 emulate it (so/future.js).
 *
 *   { cmd: ['set', k, v] }      → { ok: v }
 *   { cmd: ['get', k] }         → { ok }        (null when the key is absent)
 *   { cmd: ['incr', k, by] }    → { ok: n }     (n = the new number; a missing key counts as 0)
 *
 * State: `state.json`, `{ "kv": { "<key>": value } }`.
 *
 * Replication: a client's set, and the result of an incr, are copied to the next peer id
 * as `{ cmd: ['set', k, v], replica: true }`: copying the new value rather than the
 * increment means a copy applied twice does no harm.
 */
import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'

const node = await connect()
const file = path.join(node.stateDir, 'state.json')
const kv = new Map(fs.existsSync(file) ? Object.entries(JSON.parse(fs.readFileSync(file, 'utf8')).kv) : [])

function save () {
  // temp file, flushed, renamed over the old one: a crash leaves the old state or the new
  fs.writeFileSync(`${file}.tmp`, JSON.stringify({ kv: Object.fromEntries(kv) }), { flush: true })
  fs.renameSync(`${file}.tmp`, file)
}

/** The peer after this one in sorted id order, wrapping round; null when we are alone. */
async function neighbour () {
  const ids = [...new Set([...await node.peers(), node.peerId])].sort()
  const next = ids[(ids.indexOf(node.peerId) + 1) % ids.length]
  return next === node.peerId ? null : next
}

// copies in flight, so that a shutdown (an upgrade) waits for them
const replicating = new Set()
function replicate (k, v) {
  const copy = neighbour()
    .then(peer => peer == null ? undefined : node.call(peer, { cmd: ['set', k, v], replica: true }))
    .catch(err => { console.error(`kv: could not replicate ${JSON.stringify(k)}: ${err.message}`) })
    .finally(() => { replicating.delete(copy) })
  replicating.add(copy)
}
node.onShutdown(() => Promise.allSettled(replicating))

/** Store a value; a client's write (not a replica) is copied on. */
function write (k, v, replica) {
  kv.set(k, v)
  save()
  if (replica !== true) replicate(k, v)
  return { ok: v }
}

node.serve(async (req) => {
  const [op, k, arg] = Array.isArray(req?.cmd) ? req.cmd : []
  if (typeof k !== 'string') throw new Error('expected { cmd: ["set", k, v] | ["get", k] | ["incr", k, by] } with a string k')
  if (op === 'get') return { ok: kv.get(k) ?? null }
  if (op === 'set') {
    if (arg === undefined) throw new Error('set needs a value')
    return write(k, arg, req.replica)
  }
  if (op === 'incr') {
    const now = kv.get(k) ?? 0
    if (typeof arg !== 'number' || typeof now !== 'number') throw new Error(`incr needs a number, and ${JSON.stringify(k)} to hold one`)
    return write(k, now + arg, req.replica)
  }
  throw new Error(`unknown command ${JSON.stringify(op)}: kv 3 knows set, get and incr`)
})
await node.ready()
