/**
 * A kv app in three protocol versions whose wire format changes at every step, with
 * past and future simulation objects between them, and transforms for the state:
 *
 * - protocol 1: `{ op: 'put'|'get', key, value }` → `{ value }`; state `data.json` `{ k: v }`
 * - protocol 2: `{ action: 'set'|'fetch', k, v }` → `{ result }`; state `store.json` `{ entries }`
 * - protocol 3: `{ cmd: ['set', k, v] | ['get', k] | ['incr', k, by] }` → `{ ok }`; state `state.json` `{ kv }`
 *
 * Translations round numbers to 2 decimals, so an untranslated exchange is provable:
 * 1.23456 comes back exact only when no SO touched it.
 */

const round = 'const r2 = x => typeof x === "number" ? Math.round(x * 100) / 100 : x'

const SERVER1 = `
import { connect } from 'upgossip/app'
import fs from 'node:fs'
import path from 'node:path'
const node = await connect()
const file = path.join(node.stateDir, 'data.json')
const data = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {}
const save = () => { fs.writeFileSync(file + '.tmp', JSON.stringify(data)); fs.renameSync(file + '.tmp', file) }
node.serve(async (req) => {
  if (req?.op === 'put') { data[req.key] = req.value; save(); return { value: req.value } }
  if (req?.op === 'get') return { value: data[req.key] ?? null }
  if (req?.op === 'forward') return await node.call(req.peer, req.request)
  throw new Error('unknown v1 request')
})
await node.ready()
`

const SERVER2 = `
import { connect } from 'upgossip/app'
import fs from 'node:fs'
import path from 'node:path'
const node = await connect()
const file = path.join(node.stateDir, 'store.json')
const store = new Map(fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).entries : [])
const save = () => { fs.writeFileSync(file + '.tmp', JSON.stringify({ entries: [...store] })); fs.renameSync(file + '.tmp', file) }
node.serve(async (req) => {
  if (req?.action === 'set') { store.set(req.k, req.v); save(); return { result: req.v } }
  if (req?.action === 'fetch') return { result: store.get(req.k) ?? null }
  throw new Error('unknown v2 request')
})
await node.ready()
`

const SERVER3 = `
import { connect } from 'upgossip/app'
import fs from 'node:fs'
import path from 'node:path'
const node = await connect()
const file = path.join(node.stateDir, 'state.json')
const kv = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).kv : {}
const save = () => { fs.writeFileSync(file + '.tmp', JSON.stringify({ kv })); fs.renameSync(file + '.tmp', file) }
node.serve(async (req) => {
  const [op, k, v] = req?.cmd ?? []
  if (op === 'set') { kv[k] = v; save(); return { ok: v } }
  if (op === 'get') return { ok: kv[k] ?? null }
  if (op === 'incr') { kv[k] = (kv[k] ?? 0) + v; save(); return { ok: kv[k] } }
  throw new Error('unknown v3 request')
})
await node.ready()
`

// between 1 and 2
const to2 = 'const to2 = r => r.op === "put" ? { action: "set", k: r.key, v: r2(r.value) } : { action: "fetch", k: r.key }'
const to1 = 'const to1 = r => r.action === "set" ? { op: "put", key: r.k, value: r2(r.v) } : { op: "get", key: r.k }'
// v2's past SO: a v2 node speaking v1
const PAST2 = `${round}\n${to2}\n${to1}
export default {
  version: 1,
  async serve (req1, local) { const res = await local(to2(req1)); return { value: r2(res.result) } },
  async call (req2, remote) { const res = await remote(to1(req2)); return { result: r2(res.value) } }
}
`
// v2's future SO: a v1 node speaking v2
const FUTURE2 = `${round}\n${to2}\n${to1}
export default {
  version: 2,
  async serve (req2, local) { const res = await local(to1(req2)); return { result: r2(res.value) } },
  async call (req1, remote) { const res = await remote(to2(req1)); return { value: r2(res.result) } }
}
`
// between 2 and 3
const to3 = 'const to3 = r => r.action === "set" ? { cmd: ["set", r.k, r2(r.v)] } : { cmd: ["get", r.k] }'
// v3's past SO: a v3 node speaking v2 (calls from v3 to v2 peers emulate incr with fetch + set)
const PAST3 = `${round}\n${to3}
export default {
  version: 2,
  async serve (req2, local) { const res = await local(to3(req2)); return { result: r2(res.ok) } },
  async call (req3, remote) {
    const [op, k, v] = req3.cmd
    if (op === 'incr') {
      const now = (await remote({ action: 'fetch', k })).result ?? 0
      return { ok: (await remote({ action: 'set', k, v: now + v })).result }
    }
    const res = await remote(op === 'set' ? { action: 'set', k, v: r2(v) } : { action: 'fetch', k })
    return { ok: r2(res.result) }
  }
}
`
// v3's future SO, loaded by v2 nodes: serves v3 requests, emulating incr on the v2 app
const FUTURE3 = `${round}\n${to3}
export default {
  version: 3,
  async serve (req3, local) {
    const [op, k, v] = req3.cmd
    if (op === 'incr') {
      const now = (await local({ action: 'fetch', k })).result ?? 0
      return { ok: (await local({ action: 'set', k, v: now + v })).result }
    }
    const res = await local(op === 'set' ? { action: 'set', k, v: r2(v) } : { action: 'fetch', k })
    return { ok: r2(res.result) }
  },
  async call (req2, remote) { const res = await remote(to3(req2)); return { result: r2(res.ok) } }
}
`

const UP2 = `
import fs from 'node:fs/promises'
import path from 'node:path'
export default async function up ({ from, to }) {
  let data = {}
  try { data = JSON.parse(await fs.readFile(path.join(from, 'data.json'), 'utf8')) } catch {}
  await fs.writeFile(path.join(to, 'store.json'), JSON.stringify({ entries: Object.entries(data) }))
}
`
const UP3 = `
import fs from 'node:fs/promises'
import path from 'node:path'
export default async function up ({ from, to }) {
  let entries = []
  try { entries = JSON.parse(await fs.readFile(path.join(from, 'store.json'), 'utf8')).entries } catch {}
  await fs.writeFile(path.join(to, 'state.json'), JSON.stringify({ kv: Object.fromEntries(entries) }))
}
`

/** The files of one version (1, 2 or 3) of the three-protocol kv app. */
export function kv3Version (protocol: 1 | 2 | 3, manifest: Record<string, unknown> = {}): Record<string, string> {
  const base = { app: 'kv', version: `${protocol}.0.0`, main: 'server.js', protocol, health: { readyWithin: '10s', stableFor: '500ms' }, ...manifest }
  if (protocol === 1) return { 'server.js': SERVER1, 'upgossip.json': JSON.stringify(base) }
  if (protocol === 2) {
    return {
      'server.js': SERVER2,
      'so/past.js': PAST2,
      'so/future.js': FUTURE2,
      'migrate/up.js': UP2,
      'upgossip.json': JSON.stringify({ upgrades: '^1.0.0', transform: { up: 'migrate/up.js' }, simulation: { past: 'so/past.js', future: 'so/future.js' }, ...base })
    }
  }
  return {
    'server.js': SERVER3,
    'so/past.js': PAST3,
    'so/future.js': FUTURE3,
    'migrate/up.js': UP3,
    'upgossip.json': JSON.stringify({ upgrades: '^2.0.0', transform: { up: 'migrate/up.js' }, simulation: { past: 'so/past.js', future: 'so/future.js' }, ...base })
  }
}
