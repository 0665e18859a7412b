/**
 * store 2.0.0, protocol 2. Same store as 1.0.0; the wire and the state file change, and
 * every entry gains a revision: how many times it was written since it came to 2.0.0.
 *
 *   { cmd: 'set', key, value }  → { entry: { value, rev } }
 *   { cmd: 'get', key }         → { entry: { value, rev } }   (entry null when the key is absent)
 *
 * State: `entries.json`, `{ "<key>": { "value": …, "rev": n } }`. migrate/up.js builds it
 * from 1.0.0's data.json with rev 0 (so rev 0 marks a value that came through the
 * transform), migrate/down.js goes back. Clients still calling in protocol 1 are served
 * through so/past.js; this file only speaks protocol 2.
 */
import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'

const node = await connect()
const file = path.join(node.stateDir, 'entries.json')
const entries = new Map(fs.existsSync(file) ? Object.entries(JSON.parse(fs.readFileSync(file, 'utf8'))) : [])

function save () {
  // temp file, flushed, renamed over the old one: a crash leaves the old state or the new
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(entries)), { flush: true })
  fs.renameSync(`${file}.tmp`, file)
}

node.serve(async (req) => {
  if (typeof req?.key !== 'string') throw new Error('expected { cmd: "set", key, value } or { cmd: "get", key } with a string key')
  if (req.cmd === 'get') return { entry: entries.get(req.key) ?? null }
  if (req.cmd === 'set') {
    if (req.value === undefined) throw new Error('set needs a value')
    const entry = { value: req.value, rev: (entries.get(req.key)?.rev ?? 0) + 1 }
    entries.set(req.key, entry)
    save()
    return { entry }
  }
  throw new Error(`unknown cmd ${JSON.stringify(req.cmd)}: store 2 knows set and get`)
})
await node.ready()
