/**
 * client, the caller class of the two-class demo: a front end that keeps each key on one
 * store and keeps load on every store. The same file in 1.0.0 and 2.0.0; only
 * store-wire.js (the store protocol it speaks) and the manifest's `calls` differ.
 *
 * Its own protocol (1, in both versions):
 *   { op: 'put', key, value }  → { value, store }   written on the store that holds key
 *   { op: 'get', key }         → { value, store }   (value null when the key is absent)
 *   { stats: true }            → { version, calls, ok, failed, byStore, errors }
 *
 * The store that holds a key: the sorted ids of `node.peers({ app: 'store' })`, indexed
 * by a hash of the key. Every call to a store goes out with `{ app: 'store' }`, in the
 * protocol this version's manifest names in `calls`; the store's simulation objects
 * translate it when the store runs another version.
 *
 * Besides, a background loop writes and reads back a key on each store in turn (one round
 * every 200 ms, at most MAX_ROUNDS per start), and every call to a store, the loop's and
 * the relayed ones, is counted in `stats.json` in node.stateDir (ok and failed, in all and
 * per store; the last errors), which 2.0.0 carries on: the state directory has no
 * transform.
 */
import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'
import { STORE_PROTOCOL, storeGet, storePut } from './store-wire.js'

const MAX_ROUNDS = 100_000
const ROUND_PAUSE_MS = 200

const node = await connect()
const statsFile = path.join(node.stateDir, 'stats.json')
const stats = { ok: 0, failed: 0, byStore: {}, errors: [], ...(fs.existsSync(statsFile) ? JSON.parse(fs.readFileSync(statsFile, 'utf8')) : {}) }

function saveStats () {
  fs.writeFileSync(`${statsFile}.tmp`, JSON.stringify(stats), { flush: true })
  fs.renameSync(`${statsFile}.tmp`, statsFile)
}

/** One call to `store`, counted; throws what the call threw. */
async function toStore (store, call) {
  const counts = stats.byStore[store] ??= { ok: 0, failed: 0 }
  try {
    const value = await call()
    stats.ok++
    counts.ok++
    return value
  } catch (err) {
    failed(store, err)
    throw err
  }
}

/** Count a failed call to `store` (or an answer that was wrong), keeping the last five errors. */
function failed (store, err) {
  stats.failed++
  stats.byStore[store].failed++
  stats.errors = [...stats.errors, `${new Date().toISOString()} ${store}: ${err.name}: ${err.message}`].slice(-5)
}

/** FNV-1a: the same key picks the same store on every client and every version. */
function hash (text) {
  let h = 0x811c9dc5
  for (const c of Buffer.from(text)) h = Math.imul(h ^ c, 0x01000193) >>> 0
  return h
}

async function storeFor (key) {
  const stores = (await node.peers({ app: 'store' })).sort()
  if (stores.length === 0) throw new Error('no store in view')
  return stores[hash(key) % stores.length]
}

const put = (store, key, value) => toStore(store, () => storePut(node, store, key, value))
const get = (store, key) => toStore(store, () => storeGet(node, store, key))

node.serve(async (req) => {
  if (req?.stats === true) return { version: node.version, calls: STORE_PROTOCOL, ...stats }
  if (typeof req?.key !== 'string') throw new Error('expected { op: "put", key, value }, { op: "get", key } with a string key, or { stats: true }')
  const store = await storeFor(req.key)
  if (req.op === 'get') return { value: await get(store, req.key), store }
  if (req.op === 'put') {
    if (req.value === undefined) throw new Error('put needs a value')
    return { value: await put(store, req.key, req.value), store }
  }
  throw new Error(`unknown op ${JSON.stringify(req.op)}: client 1 knows put, get and stats`)
})

// the background load: each store in turn, a write and a read of what was written
let stopping = false
const loop = (async () => {
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    if (stopping) break
    const stores = (await node.peers({ app: 'store' })).sort()
    const store = stores[round % stores.length]
    if (store != null) {
      const key = `bg/${node.peerId.slice(-8)}/${round % 20}`
      const value = `${node.version}:${round}`
      try {
        await put(store, key, value)
        const got = await get(store, key)
        if (got !== value) failed(store, new Error(`read ${key} back as ${JSON.stringify(got)}, wrote ${JSON.stringify(value)}`))
      } catch {} // counted by toStore
    }
    if (round % 25 === 0) saveStats()
    await new Promise(resolve => setTimeout(resolve, ROUND_PAUSE_MS))
  }
})()
node.onShutdown(async () => {
  stopping = true
  await loop
  saveStats()
})
await node.ready()
