/**
 * `upgossip check --classes`: the releases of a store class and a client class — real
 * packages, some as signed bundles — checked for the calls between them during their
 * rollouts. A client 2.0.0 that calls store in protocol 2 with no `after` rule meets store
 * 1.0.0, which speaks 1 only: exit 1, the combination named with its fixes. Waiting for
 * every store on 2.0.0 passes. Bad input is refused by name; --classes with the
 * single-version options is a usage error.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir, writeTree } from '../helpers.js'
import { runCli } from './support/testnet.js'

let root: string
let key: string
beforeAll(async () => {
  root = await tempDir('upgossip-check-classes-')
  key = path.join(root, 'publisher.key')
  const made = await runCli(['keygen', '--out', key])
  expect(made.code, made.stderr).toBe(0)
})
afterAll(async () => { await fs.rm(root, { recursive: true, force: true }) })

/** store 1.0.0 (protocol 1): { op: 'put' | 'get', key, value } → { value }. */
const STORE_1 = `import { connect } from 'upgossip/app'
const node = await connect()
const data = {}
node.serve(async req => {
  if (req.op === 'put') { data[req.key] = req.value; return { value: req.value } }
  return { value: data[req.key] ?? null }
})
await node.ready()
`
/** store 2.0.0 (protocol 2): { cmd: 'set' | 'get', k, v } → { ok, v }. */
const STORE_2 = `import { connect } from 'upgossip/app'
const node = await connect()
const data = {}
node.serve(async req => {
  if (req.cmd === 'set') { data[req.k] = req.v; return { ok: true, v: req.v } }
  return { ok: true, v: data[req.k] ?? null }
})
await node.ready()
`
/** 2.0.0's past SO: serves store protocol 1 (clients 1.0.0) with 2.0.0's app. */
const STORE_PAST = `export default {
  version: 1,
  async serve (req, local) { const res = await local(req.op === 'put' ? { cmd: 'set', k: req.key, v: req.value } : { cmd: 'get', k: req.key }); return { value: res.v } },
  async call (req, remote) { const res = await remote(req.cmd === 'set' ? { op: 'put', key: req.k, value: req.v } : { op: 'get', key: req.k }); return { ok: true, v: res.value } }
}
`
const CLIENT = `import { connect } from 'upgossip/app'
const node = await connect()
node.serve(async req => {
  const [store] = await node.peers({ app: 'store' })
  return await node.call(store, req, { app: 'store' })
})
await node.ready()
`

/** A package directory `name` with this manifest and the server (and SOs) it names. */
async function pkg (name: string, manifest: Record<string, unknown>, files: Record<string, string>): Promise<string> {
  const dir = path.join(root, name)
  await writeTree(dir, { 'upgossip.json': JSON.stringify({ main: 'server.js', ...manifest }), ...files })
  return dir
}

/** A signed bundle of the package `dir`. */
async function bundle (dir: string): Promise<string> {
  const out = `${dir}.car`
  const made = await runCli(['release', dir, '--key', key, '--out', out])
  expect(made.code, made.stderr).toBe(0)
  return out
}

describe('upgossip check --classes', () => {
  let store1: string
  let store2: string
  let client1: string
  beforeAll(async () => {
    store1 = await bundle(await pkg('store-1.0.0', { app: 'store', version: '1.0.0', protocol: 1 }, { 'server.js': STORE_1 }))
    store2 = await pkg('store-2.0.0', { app: 'store', version: '2.0.0', protocol: 2, simulation: { past: 'so/past.js' } }, { 'server.js': STORE_2, 'so/past.js': STORE_PAST })
    client1 = await bundle(await pkg('client-1.0.0', { app: 'client', version: '1.0.0', protocol: 1, calls: { store: 1 } }, { 'server.js': CLIENT }))
  })

  it('names the client 2.0.0 that may meet store 1.0.0 and cannot call it, with the rule that fixes it; exit 1', async () => {
    const client2 = await pkg('client-2.0.0-eager', { app: 'client', version: '2.0.0', protocol: 2, calls: { store: 2 } }, { 'server.js': CLIENT })
    const r = await runCli(['check', '--classes', store1, store2, client1, client2])
    expect(r.code, r.stderr).toBe(1)
    expect(r.stdout.split('\n')).toEqual([
      'checking calls between classes: store 1.0.0, 2.0.0; client 1.0.0, 2.0.0',
      'store 1.0.0 serves 1 (native)',
      'store 2.0.0 serves 1 (the past SO of store 2.0.0), 2 (native)',
      'client 1.0.0 → store, protocol 1:',
      '  store 1.0.0: ok (native)',
      '  store 2.0.0: ok (the past SO of store 2.0.0)',
      'client 2.0.0 → store, protocol 2:',
      '  store 1.0.0: CANNOT: client 2.0.0 calls store in protocol 2; store 1.0.0 speaks 1, and store 2.0.0 (protocol 2) has no future SO',
      '    fix: client 2.0.0 waits on {"rule": "after", "app": "store", "version": ">=2.0.0", "fraction": 1}',
      '    or:  store 2.0.0 ships a future SO (then store 1.0.0 serves protocol 2 once it has staged it)',
      '  store 2.0.0: ok (native)',
      '3 combination(s) can talk, 1 cannot, 0 never meet',
      ''
    ])
    expect(r.stderr).toContain('upgossip: 1 combination(s) of versions cannot talk [CheckFailedError]')

    const json = await runCli(['check', '--classes', store1, store2, client1, client2, '--json'])
    expect(json.code).toBe(1)
    const report = JSON.parse(json.stdout)
    expect(report.problems).toBe(1)
    expect(report.combinations.map((c: any) => `${c.caller.version}→${c.callee.version}:${c.result as string}`)).toEqual(['1.0.0→1.0.0:ok', '1.0.0→2.0.0:ok', '2.0.0→1.0.0:fails', '2.0.0→2.0.0:ok'])
    expect(report.combinations[2]).toMatchObject({ caller: { app: 'client', version: '2.0.0' }, callee: { app: 'store', version: '1.0.0' }, protocol: 2 })
  })

  it('passes when client 2.0.0 waits for every store on 2.0.0: the two never meet; exit 0', async () => {
    const client2 = await pkg('client-2.0.0', { app: 'client', version: '2.0.0', protocol: 2, calls: { store: 2 }, schedule: [{ rule: 'after', app: 'store', version: '>=2.0.0', fraction: 1 }] }, { 'server.js': CLIENT })
    const r = await runCli(['check', '--classes', store1, store2, client1, client2])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('  store 1.0.0: never meet (client 2.0.0 waits on after store >=2.0.0 fraction 1)')
    expect(r.stdout).toContain('3 combination(s) can talk, 0 cannot, 1 never meet')
    expect(r.stderr).toContain('no problems found')
    // a fraction below 1 lets it start while store 1.0.0 still runs
    const half = await pkg('client-2.0.0-half', { app: 'client', version: '2.0.0', protocol: 2, calls: { store: 2 }, schedule: [{ rule: 'after', app: 'store', version: '>=2.0.0', fraction: 0.5 }] }, { 'server.js': CLIENT })
    const loose = await runCli(['check', '--classes', store1, store2, client1, half])
    expect(loose.code).toBe(1)
    expect(loose.stdout).toContain('(its after rule on store has fraction 0.5, which lets it start while some store peers still run 1.0.0)')
  })

  it('refuses calls to an app not given, a protocol no release speaks, an after rule with a bad range, and mixed options', async () => {
    const unknown = await runCli(['check', '--classes', client1])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('client 1.0.0 calls store (protocol 1), and no store release is given: give the releases of every app called [CallsUnknownAppError]')

    const client3 = await pkg('client-3.0.0', { app: 'client', version: '3.0.0', protocol: 3, calls: { store: 3 } }, { 'server.js': CLIENT })
    const range = await runCli(['check', '--classes', store1, store2, client3])
    expect(range.code).toBe(1)
    expect(range.stderr).toContain('client 3.0.0 calls store in protocol 3, and the store releases given speak 1–2 natively: no SO can translate a protocol no release speaks [CallsProtocolOutOfRangeError]')

    const bad = await pkg('client-2.0.0-bad', { app: 'client', version: '2.0.0', protocol: 2, calls: { store: 2 }, schedule: [{ rule: 'after', app: 'store', version: 'two or more', fraction: 1 }] }, { 'server.js': CLIENT })
    const invalid = await runCli(['check', '--classes', store1, store2, client1, bad])
    expect(invalid.code).toBe(1)
    expect(invalid.stderr).toMatch(/client-2\.0\.0-bad\/upgossip\.json: "schedule\[0\]\.version": expected a semver range .*\[ManifestInvalidError\]/)

    const mixed = await runCli(['check', '--classes', store1, '--previous', store1])
    expect(mixed.code).toBe(2)
    expect(mixed.stderr).toContain('--classes checks the releases it names alone; drop --previous')
    const neither = await runCli(['check', path.join(root, 'store-2.0.0')])
    expect(neither.code).toBe(2)
    expect(neither.stderr).toContain("required option '--previous <bundle|dir>' not specified")

    const help = await runCli(['check', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--classes <release...>')
  })
})
