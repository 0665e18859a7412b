/**
 * A small key-value app in several versions, for upgrade tests: v1 keeps `data.json`
 * ({ key: value }); v2 keeps `store.json` ({ entries: [[key, value]] }) and ships `up`
 * and `down` transforms between the two; "bad" versions fail in chosen ways.
 */

const V1 = `
import { connect } from 'upgossip/app'
import fs from 'node:fs'
import path from 'node:path'
const node = await connect()
const file = path.join(node.stateDir, 'data.json')
const data = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {}
const save = () => { fs.writeFileSync(file + '.tmp', JSON.stringify(data)); fs.renameSync(file + '.tmp', file) }
node.serve(async (req) => {
  if (req.op === 'put') { data[req.key] = req.value; save(); return { ok: true, version: node.version } }
  if (req.op === 'get') return { value: data[req.key] ?? null, version: node.version }
  return { version: node.version }
})
await node.ready()
`

const V2 = `
import { connect } from 'upgossip/app'
import fs from 'node:fs'
import path from 'node:path'
const node = await connect()
const file = path.join(node.stateDir, 'store.json')
const store = new Map(fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).entries : [])
const save = () => { fs.writeFileSync(file + '.tmp', JSON.stringify({ entries: [...store] })); fs.renameSync(file + '.tmp', file) }
node.serve(async (req) => {
  if (req.op === 'put') { store.set(req.key, req.value); save(); return { ok: true, version: node.version } }
  if (req.op === 'get') return { value: store.get(req.key) ?? null, version: node.version }
  return { version: node.version }
})
await node.ready()
`

const UP = `
import fs from 'node:fs/promises'
import path from 'node:path'
export default async function up ({ from, to, log }) {
  let data = {}
  try { data = JSON.parse(await fs.readFile(path.join(from, 'data.json'), 'utf8')) } catch {}
  await fs.writeFile(path.join(to, 'store.json'), JSON.stringify({ entries: Object.entries(data) }))
  log('moved', Object.keys(data).length, 'keys')
}
`

const DOWN = `
import fs from 'node:fs/promises'
import path from 'node:path'
export default async function down ({ from, to }) {
  const { entries } = JSON.parse(await fs.readFile(path.join(from, 'store.json'), 'utf8'))
  await fs.writeFile(path.join(to, 'data.json'), JSON.stringify(Object.fromEntries(entries)))
}
`

/** The files of one kv version. */
export function kvVersion (version: string, kind: 'v1' | 'v2' | 'crash-at-start' | 'never-ready' | 'unhealthy' | 'dies-while-verified' | 'transform-throws' | 'transform-exits' | 'transform-hangs' | 'transform-writes-nothing', manifest: Record<string, unknown> = {}): Record<string, string> {
  const base = { app: 'kv', version, main: 'server.js', protocol: kind === 'v1' ? 1 : 2, ...manifest }
  switch (kind) {
    case 'v1':
      return { 'server.js': V1, 'upgossip.json': JSON.stringify(base) }
    case 'v2':
      return { 'server.js': V2, 'migrate/up.js': UP, 'migrate/down.js': DOWN, 'upgossip.json': JSON.stringify({ transform: { up: 'migrate/up.js', down: 'migrate/down.js' }, health: { readyWithin: '10s', stableFor: '1s' }, ...base }) }
    case 'crash-at-start':
      return { 'server.js': 'process.exit(9)\n', 'upgossip.json': JSON.stringify({ health: { readyWithin: '5s', stableFor: '1s' }, ...base }) }
    case 'never-ready':
      return { 'server.js': "import { connect } from 'upgossip/app'\nconst node = await connect()\nnode.serve(() => ({}))\n", 'upgossip.json': JSON.stringify({ health: { readyWithin: '2s', stableFor: '1s' }, ...base }) }
    case 'unhealthy':
      return { 'server.js': "import { connect } from 'upgossip/app'\nconst node = await connect()\nnode.serve(() => ({}))\nawait node.ready()\nsetTimeout(() => node.unhealthy('self-test failed'), 300)\n", 'upgossip.json': JSON.stringify({ health: { readyWithin: '5s', stableFor: '3s' }, ...base }) }
    case 'dies-while-verified':
      return { 'server.js': "import { connect } from 'upgossip/app'\nconst node = await connect()\nnode.serve(() => ({}))\nawait node.ready()\nsetTimeout(() => process.exit(4), 300)\n", 'upgossip.json': JSON.stringify({ health: { readyWithin: '5s', stableFor: '3s' }, ...base }) }
    case 'transform-throws':
      return { 'server.js': V2, 'migrate/up.js': 'export default async () => { throw new Error("cannot migrate") }\n', 'upgossip.json': JSON.stringify({ transform: { up: 'migrate/up.js' }, ...base }) }
    case 'transform-exits':
      return { 'server.js': V2, 'migrate/up.js': 'export default async () => { process.exit(3) }\n', 'upgossip.json': JSON.stringify({ transform: { up: 'migrate/up.js' }, ...base }) }
    case 'transform-hangs':
      return { 'server.js': V2, 'migrate/up.js': 'export default () => new Promise(() => { setInterval(() => {}, 1000) })\n', 'upgossip.json': JSON.stringify({ transform: { up: 'migrate/up.js' }, ...base }) }
    case 'transform-writes-nothing':
      return { 'server.js': V2, 'migrate/up.js': 'export default async () => {}\n', 'upgossip.json': JSON.stringify({ transform: { up: 'migrate/up.js' }, ...base }) }
  }
}
