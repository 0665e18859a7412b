/**
 * The `churn` app: one small SDK app written out again for every release, each a new
 * protocol version with a state transform (up and down) and past and future simulation
 * objects, so every switch of the churn runs the whole machinery a real upgrade does.
 *
 * Release `i` (0 is the version the network starts on) is version `1.i.0`, protocol
 * `i + 1`. The wire format does not change (`{ op: 'put', key, value }` → `{ value }`,
 * `{ op: 'get', key }` → `{ value }`), so the simulation objects pass messages through;
 * the transform carries `data.json` over and counts the generations it went through.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { KvClientCodec } from '#src/testnet/load.js'
import type { TestnetApp } from '#src/testnet/index.js'

/** The version of release `i`. */
export function churnVersion (i: number): string {
  return `1.${i}.0`
}

const server = (i: number): string => `// churn release ${i}, protocol ${i + 1}
import fs from 'node:fs'
import path from 'node:path'
import { connect } from 'upgossip/app'

const node = await connect()
const file = path.join(node.stateDir, 'data.json')
const state = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : { generation: ${i}, kv: {} }
const kv = new Map(Object.entries(state.kv))

node.serve(async (req) => {
  if (typeof req?.key !== 'string') {
    if (req?.op === 'generation') return { value: state.generation }
    throw new Error('expected { op: "put" | "get", key }')
  }
  if (req.op === 'get') return { value: kv.get(req.key) ?? null }
  if (req.op === 'put') {
    kv.set(req.key, req.value)
    fs.writeFileSync(file + '.tmp', JSON.stringify({ generation: state.generation, kv: Object.fromEntries(kv) }), { flush: true })
    fs.renameSync(file + '.tmp', file)
    return { value: req.value }
  }
  throw new Error('unknown op ' + JSON.stringify(req.op))
})
await node.ready()
`

const transform = (i: number, step: 1 | -1): string => `// churn release ${i}: state ${step === 1 ? 'up from' : 'down to'} release ${i - 1}
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function ${step === 1 ? 'up' : 'down'} ({ from, to, log }) {
  let state = { generation: ${i - 1}, kv: {} }
  try {
    state = JSON.parse(await fs.readFile(path.join(from, 'data.json'), 'utf8'))
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
  }
  state.generation += ${step}
  await fs.writeFile(path.join(to, 'data.json'), JSON.stringify(state))
  log('generation ' + state.generation + ', ' + Object.keys(state.kv).length + ' keys')
}
`

const simulation = (i: number, version: number, kind: 'past' | 'future'): string => `// churn release ${i}: ${kind} simulation object, protocol ${version}; the wire format is the same
export default {
  version: ${version},
  async serve (req, local) { return await local(req) },
  async call (req, remote) { return await remote(req) }
}
`

/** Write release `i`'s package directory as `DIR/v<i>/` (what {@link Workspace.release} copies). */
export async function writeChurnVersion (dir: string, i: number): Promise<void> {
  const root = path.join(dir, `v${i}`)
  await fs.rm(root, { recursive: true, force: true })
  await fs.mkdir(path.join(root, 'migrate'), { recursive: true })
  await fs.mkdir(path.join(root, 'so'), { recursive: true })
  const protocol = i + 1
  const manifest: Record<string, unknown> = {
    app: 'churn',
    version: churnVersion(i),
    main: 'server.js',
    protocol,
    schedule: [{ rule: 'immediate' }],
    health: { readyWithin: '20s', stableFor: '500ms' }
  }
  if (i > 0) {
    manifest.transform = { up: 'migrate/up.js', down: 'migrate/down.js' }
    manifest.simulation = { past: 'so/past.js', future: 'so/future.js' }
    await fs.writeFile(path.join(root, 'migrate', 'up.js'), transform(i, 1))
    await fs.writeFile(path.join(root, 'migrate', 'down.js'), transform(i, -1))
    await fs.writeFile(path.join(root, 'so', 'past.js'), simulation(i, protocol - 1, 'past'))
    await fs.writeFile(path.join(root, 'so', 'future.js'), simulation(i, protocol, 'future'))
  }
  await fs.writeFile(path.join(root, 'server.js'), server(i))
  await fs.writeFile(path.join(root, 'upgossip.json'), JSON.stringify(manifest, null, 2) + '\n')
}

/** Every protocol of the churn app speaks the same messages. */
function churnCodec (protocol: number): KvClientCodec {
  const value = (response: unknown): unknown => {
    if (response == null || typeof response !== 'object' || !('value' in response)) throw new Error(`answer ${JSON.stringify(response)?.slice(0, 120)} has no "value"`)
    return response.value
  }
  return { protocol, put: (key, v) => ({ op: 'put', key, value: v }), get: key => ({ op: 'get', key }), value }
}

/** The churn app as the testnet runs it, its versions written under `dir`. */
export function churnApp (dir: string): TestnetApp {
  return { name: 'churn', dir, codec: churnCodec, native: version => Number(version.split('.')[1]) + 1 }
}
