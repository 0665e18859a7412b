/**
 * Two classes of node for e2e tests: a `store` app (1.0.0 speaks protocol 1, 2.0.0 protocol
 * 2 with past and future SOs and a copying transform) and a `client` app that relays
 * requests to a store in the protocol its manifest's `calls` names.
 */
import fs from 'node:fs/promises'
import type { Peer, TestNet } from './testnet.js'
import { runCli } from './testnet.js'

/** store 1.0.0 (protocol 1): { op: 'put' | 'get', key, value } → { value }. */
export const STORE_1 = `import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'
const node = await connect()
const file = path.join(node.stateDir, 'data.json')
const data = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {}
node.serve(async req => {
  if (req.op === 'put') { data[req.key] = req.value; fs.writeFileSync(file, JSON.stringify(data)); return { value: req.value } }
  return { value: data[req.key] ?? null }
})
await node.ready()
`

/** store 2.0.0 (protocol 2): { cmd: 'set' | 'get', k, v } → { ok, v }; the same state file. */
export const STORE_2 = STORE_1
  .replace("if (req.op === 'put') { data[req.key] = req.value; fs.writeFileSync(file, JSON.stringify(data)); return { value: req.value } }", "if (req.cmd === 'set') { data[req.k] = req.v; fs.writeFileSync(file, JSON.stringify(data)); return { ok: true, v: req.v } }")
  .replace('return { value: data[req.key] ?? null }', 'return { ok: true, v: data[req.k] ?? null }')

/** 2.0.0's past SO: protocol-1 requests (from clients that still call store in 1) served by 2.0.0. */
export const STORE_PAST = `export default {
  version: 1,
  async serve (req, local) {
    const res = await local(req.op === 'put' ? { cmd: 'set', k: req.key, v: req.value } : { cmd: 'get', k: req.key })
    return { value: res.v }
  },
  async call (req, remote) {
    const res = await remote(req.cmd === 'set' ? { op: 'put', key: req.k, value: req.v } : { op: 'get', key: req.k })
    return { ok: true, v: res.value }
  }
}
`

/** 2.0.0's future SO: protocol-2 requests (from clients already on 2.0.0) served by a store on 1.0.0. */
export const STORE_FUTURE = `export default {
  version: 2,
  async serve (req, local) {
    const res = await local(req.cmd === 'set' ? { op: 'put', key: req.k, value: req.v } : { op: 'get', key: req.k })
    return { ok: true, v: res.value }
  },
  async call (req, remote) {
    const res = await remote(req.op === 'put' ? { cmd: 'set', k: req.key, v: req.value } : { cmd: 'get', k: req.key })
    return { value: res.v }
  }
}
`

/** Both ways between 1.0.0 and 2.0.0: the state file is the same. */
export const COPY = `import fs from 'node:fs/promises'
import path from 'node:path'
export default async function ({ from, to }) {
  try { await fs.copyFile(path.join(from, 'data.json'), path.join(to, 'data.json')) } catch {}
}
`

/** The client: `{ put: [k, v] }` or `{ get: k }` relayed to the first store in view; `{ raw: { peer, app, request } }` as it is. */
export function client (protocol: 1 | 2): string {
  const put = protocol === 1 ? "{ op: 'put', key: req.put[0], value: req.put[1] }" : "{ cmd: 'set', k: req.put[0], v: req.put[1] }"
  const get = protocol === 1 ? "{ op: 'get', key: req.get }" : "{ cmd: 'get', k: req.get }"
  return `import { connect } from 'upgossip/app'
const node = await connect()
node.serve(async req => {
  if (req.raw != null) {
    try { return { ok: await node.call(req.raw.peer, req.raw.request, { app: req.raw.app }) } } catch (err) { return { error: err.name, message: err.message } }
  }
  const [store] = await node.peers({ app: 'store' })
  if (store == null) return { error: 'no store' }
  const res = await node.call(store, req.put != null ? ${put} : ${get}, { app: 'store' })
  return { store, answer: res, client: node.version }
})
await node.ready()
`
}

export const manifest = (m: Record<string, unknown>): string => JSON.stringify({ main: 'server.js', health: { readyWithin: '15s', stableFor: '500ms' }, ...m })

/** Ask b's client app (as `upgossip call` does) to relay `request`. */
export async function relay (b: Peer, request: unknown): Promise<any> {
  const called = await runCli(['call', '--data', b.dataDir, '--peer', b.peerId, JSON.stringify(request)])
  if (called.code !== 0) throw new Error(`upgossip call: ${called.stderr}`)
  return JSON.parse(called.stdout)
}

/** A trust file for both classes, one publisher. */
export async function trustBoth (n: TestNet): Promise<void> {
  await fs.writeFile(n.trustFile, JSON.stringify({ apps: { store: { publishers: [n.key.id], threshold: 1 }, client: { publishers: [n.key.id], threshold: 1 } } }))
}

/** On `n` (trusting both classes from here on): store `a` on 1.0.0, and client `b` on 1.0.0 calling store in protocol 1, joined through `a`. */
export async function startStoreAndClient (n: TestNet): Promise<{ a: Peer, b: Peer }> {
  await trustBoth(n)
  const s1 = await n.releaseFiles({ 'upgossip.json': manifest({ app: 'store', version: '1.0.0', protocol: 1 }), 'server.js': STORE_1 })
  const c1 = await n.releaseFiles({ 'upgossip.json': manifest({ app: 'client', version: '1.0.0', protocol: 1, calls: { store: 1 } }), 'server.js': client(1) })
  const a = await n.start('a', ['--install', s1.file])
  const b = await n.start('b', ['--install', c1.file, '--bootstrap', a.addr])
  return { a, b }
}
