/**
 * store 1.0.0, protocol 1: the server class of the two-class demo. Each store keeps its
 * own keys; the clients decide which store holds a key.
 *
 *   { op: 'put', key, value }  → { value }
 *   { op: 'get', key }         → { value }      (null when the key is absent)
 *
 * State: `data.json` in node.stateDir, `{ "<key>": value }`.
 */
import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'

const node = await connect()
const file = path.join(node.stateDir, 'data.json')
// a Map, not a plain object, so a key such as "__proto__" is just a key
const data = new Map(fs.existsSync(file) ? Object.entries(JSON.parse(fs.readFileSync(file, 'utf8'))) : [])

function save () {
  // temp file, flushed, renamed over the old one: a crash leaves the old state or the new
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(data)), { flush: true })
  fs.renameSync(`${file}.tmp`, file)
}

node.serve(async (req) => {
  if (typeof req?.key !== 'string') throw new Error('expected { op: "put", key, value } or { op: "get", key } with a string key')
  if (req.op === 'get') return { value: data.get(req.key) ?? null }
  if (req.op === 'put') {
    if (req.value === undefined) throw new Error('put needs a value')
    data.set(req.key, req.value)
    save()
    return { value: req.value }
  }
  throw new Error(`unknown op ${JSON.stringify(req.op)}: store 1 knows put and get`)
})
await node.ready()
