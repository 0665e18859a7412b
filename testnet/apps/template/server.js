/**
 * {{app}} 1.0.0, protocol 1: a minimal key-value server on the upgossip SDK.
 *
 *   { op: 'put', key, value }  → { value }
 *   { op: 'get', key }         → { value }      (null when the key is absent)
 *
 * The daemon starts this file, hands it a state directory, and sends it requests from
 * other peers and from `upgossip call`. Keep everything that must survive an upgrade in
 * node.stateDir: the next version's `up` transform turns it into the next format.
 */
import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'

const node = await connect()
const file = path.join(node.stateDir, 'data.json')
// a Map, not a plain object, so a key such as "__proto__" is just a key
const data = new Map(fs.existsSync(file) ? Object.entries(JSON.parse(fs.readFileSync(file, 'utf8'))) : [])

function save () {
  // write a temporary file, flush it, rename it over the old one: a crash (or a switch to
  // the next version) finds the old state or the new one, never half of one
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(data)), { flush: true })
  fs.renameSync(`${file}.tmp`, file)
}

// requests come in this version's own format only: requests from peers on other
// versions are translated by simulation objects (see next/so/) before they get here
node.serve(async (req) => {
  if (typeof req?.key !== 'string') throw new Error('expected { op: "put", key, value } or { op: "get", key } with a string key')
  if (req.op === 'get') return { value: data.get(req.key) ?? null }
  if (req.op === 'put') {
    if (req.value === undefined) throw new Error('put needs a value')
    data.set(req.key, req.value)
    save()
    return { value: req.value }
  }
  throw new Error(`unknown op ${JSON.stringify(req.op)}: expected put or get`)
})

// to reach the app on another peer, whatever version it runs:
//   const answer = await node.call(peerId, { op: 'get', key: 'hello' })
// and `await node.peers()` lists the peers that run this app.

// health: the daemon waits for this after every start; an upgrade that never gets here
// is rolled back
await node.ready()
