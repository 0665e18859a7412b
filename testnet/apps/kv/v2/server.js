/**
 * kv 2.0.0, protocol 2. Same store as 1.0.0; the wire and the state file change.
 *
 *   { action: 'set', k, v }  → { result: v }
 *   { action: 'fetch', k }   → { result }       (null when the key is absent)
 *
 * State: `store.json`, `{ "entries": [[k, v], …] }` (migrate/up.js builds it from 1.0.0's
 * data.json, migrate/down.js goes back). Peers still on 1.0.0 are reached through
 * so/past.js (here) and so/future.js (loaded by them): this file only speaks version 2.
 *
 * Replication as in 1.0.0: a client's set is copied to the next peer id as
 * `{ action: 'set', k, v, replica: true }`.
 */
import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'

const node = await connect()
const file = path.join(node.stateDir, 'store.json')
const store = new Map(fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).entries : [])

function save () {
  // temp file, flushed, renamed over the old one: a crash leaves the old state or the new
  fs.writeFileSync(`${file}.tmp`, JSON.stringify({ entries: [...store] }), { flush: true })
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
  // the neighbour may still run 1.0.0: node.call reaches it through the simulation objects
  const copy = neighbour()
    .then(peer => peer == null ? undefined : node.call(peer, { action: 'set', k, v, replica: true }))
    .catch(err => { console.error(`kv: could not replicate ${JSON.stringify(k)}: ${err.message}`) })
    .finally(() => { replicating.delete(copy) })
  replicating.add(copy)
}
node.onShutdown(() => Promise.allSettled(replicating))

node.serve(async (req) => {
  if (typeof req?.k !== 'string') throw new Error('expected { action: "set", k, v } or { action: "fetch", k } with a string k')
  if (req.action === 'fetch') return { result: store.get(req.k) ?? null }
  if (req.action === 'set') {
    if (req.v === undefined) throw new Error('set needs a value v')
    store.set(req.k, req.v)
    save()
    if (req.replica !== true) replicate(req.k, req.v)
    return { result: req.v }
  }
  throw new Error(`unknown action ${JSON.stringify(req.action)}: kv 2 knows set and fetch`)
})
await node.ready()
