/**
 * kv 4.0.0, still protocol 3: the same requests and answers as 3.0.0, so 3.0.0 and
 * 4.0.0 peers talk without translation and this release ships no simulation objects.
 * Only the state changes: one file per key, so a write no longer rewrites every key.
 *
 *   { cmd: ['set', k, v] }      → { ok: v }
 *   { cmd: ['get', k] }         → { ok }        (null when the key is absent)
 *   { cmd: ['incr', k, by] }    → { ok: n }
 *
 * State: `keys/<file>.json`, each `{ "key": k, "value": v }`. The key is kept inside the
 * file, so a file's name is only where the key lives and is never parsed back.
 *
 * THIS RELEASE IS BROKEN ON PURPOSE: its `up` transform fails on peers that hold a key
 * with a "/" (see migrate/up.js). The testnet's `broken` scenario shows a canary failing,
 * rolling back, and the rollout halting.
 */
import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'

const node = await connect()
const dir = path.join(node.stateDir, 'keys')
fs.mkdirSync(dir, { recursive: true })
const kv = new Map()
const fileOf = new Map() // key → the file it lives in
for (const name of fs.readdirSync(dir).filter(n => n.endsWith('.json'))) {
  const { key, value } = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'))
  kv.set(key, value)
  fileOf.set(key, name)
}

function save (k) {
  // a new key gets a name that is safe whatever the key holds ("/", "..", …)
  const name = fileOf.get(k) ?? `${encodeURIComponent(k)}.json`
  const file = path.join(dir, name)
  // temp file, flushed, renamed over the old one: a crash leaves the old value or the new
  fs.writeFileSync(`${file}.tmp`, JSON.stringify({ key: k, value: kv.get(k) }), { flush: true })
  fs.renameSync(`${file}.tmp`, file)
  fileOf.set(k, name)
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
  save(k)
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
  throw new Error(`unknown command ${JSON.stringify(op)}: kv 4 knows set, get and incr`)
})
await node.ready()
