/**
 * kv 1.0.0, protocol 1: a small replicated key-value store.
 *
 *   { op: 'put', key, value }  → { value }
 *   { op: 'get', key }         → { value }      (null when the key is absent)
 *
 * State: `data.json` in node.stateDir, `{ "<key>": value }`.
 *
 * Replication: a client's put is stored, answered, and then copied in the background to
 * one neighbour — the next peer id after ours in sorted order, wrapping round — as
 * `{ op: 'put', key, value, replica: true }`. A replica is stored but never forwarded,
 * so a copy travels one hop. Reads answer from local state.
 */
import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'

const node = await connect()
const file = path.join(node.stateDir, 'data.json')
// a Map, not a plain object, so a key such as "__proto__" is just a key
const data = new Map(fs.existsSync(file) ? Object.entries(JSON.parse(fs.readFileSync(file, 'utf8'))) : [])

function save () {
  // write a temporary file, flush it to disk, then rename it over the old one: a crash
  // leaves the old state or the new, never half of one
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(data)), { flush: true })
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
function replicate (key, value) {
  const copy = neighbour()
    .then(peer => peer == null ? undefined : node.call(peer, { op: 'put', key, value, replica: true }))
    // a lost copy costs redundancy, not the client's write: log it (to the app log) and go on
    .catch(err => { console.error(`kv: could not replicate ${JSON.stringify(key)}: ${err.message}`) })
    .finally(() => { replicating.delete(copy) })
  replicating.add(copy)
}
node.onShutdown(() => Promise.allSettled(replicating))

node.serve(async (req) => {
  if (typeof req?.key !== 'string') throw new Error('expected { op: "put", key, value } or { op: "get", key } with a string key')
  if (req.op === 'get') return { value: data.get(req.key) ?? null }
  if (req.op === 'put') {
    if (req.value === undefined) throw new Error('put needs a value')
    data.set(req.key, req.value)
    save()
    if (req.replica !== true) replicate(req.key, req.value)
    return { value: req.value }
  }
  throw new Error(`unknown op ${JSON.stringify(req.op)}: kv 1 knows put and get`)
})
await node.ready()
