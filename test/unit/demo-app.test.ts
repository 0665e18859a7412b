/**
 * The demo app in testnet/apps/kv, module by module: every transform up and down on
 * sample state (v4's deliberate bug included), every simulation object's serve and call
 * against stub apps and peers (translations, incr emulation, the replica flag), and every
 * manifest against the project's schema.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertManifestFilesPresent, packDirectory, parseManifest } from '../../src/package/index.js'
import { MemoryBlockStore } from '../../src/store/index.js'
import { tempDir, writeTree } from '../helpers.js'

const KV = fileURLToPath(new URL('../../testnet/apps/kv/', import.meta.url))

type Json = any
type Send = (request: Json) => Promise<Json>
interface SO { version: number, serve: (request: Json, local: Send) => Promise<Json>, call: (request: Json, remote: Send) => Promise<Json> }
type Transform = (arg: { from: string, to: string, fromVersion: string, toVersion: string, log: (...args: unknown[]) => void }) => Promise<void>

async function load<T> (version: string, file: string): Promise<T> {
  return (await import(pathToFileURL(path.join(KV, version, file)).href) as { default: T }).default
}

let root: string
beforeAll(async () => { root = await tempDir('upgossip-demo-app-') })
afterAll(async () => { await fs.rm(root, { recursive: true, force: true }) })

let runs = 0
/** Run a transform module on a state directory made of `files`; returns the new state's files. */
async function transform (version: string, file: string, files: Record<string, string>): Promise<Record<string, string>> {
  const from = path.join(root, `from-${++runs}`)
  const to = path.join(root, `to-${runs}`)
  await fs.mkdir(from)
  await writeTree(from, files)
  await fs.mkdir(to)
  const fn = await load<Transform>(version, file)
  await fn({ from, to, fromVersion: 'a', toVersion: 'b', log: () => {} })
  const out: Record<string, string> = {}
  for (const e of await fs.readdir(to, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out[path.relative(to, path.join(e.parentPath, e.name)).split(path.sep).join('/')] = await fs.readFile(path.join(e.parentPath, e.name), 'utf8')
  }
  return out
}

/** A stub app or peer that records every request and answers from `answer`. */
function stub (answer: (request: Json) => Json): Send & { seen: Json[] } {
  const seen: Json[] = []
  const send = async (request: Json): Promise<Json> => { seen.push(request); return answer(request) }
  return Object.assign(send, { seen })
}

describe('demo app: manifests', () => {
  it.each(['v1', 'v2', 'v3', 'v4'])('%s has a valid manifest whose files are all there, and packs', async (v) => {
    const json = JSON.parse(await fs.readFile(path.join(KV, v, 'upgossip.json'), 'utf8'))
    const m = parseManifest(json)
    expect(m.app).toBe('kv')
    expect(m.version).toBe(`${v.slice(1)}.0.0`)
    const present = new Set((await fs.readdir(path.join(KV, v), { recursive: true })).map(f => f.split(path.sep).join('/')))
    assertManifestFilesPresent(m, present)
    expect(m.health).toEqual({ readyWithin: '10s', stableFor: '1s' })
    const packed = await packDirectory(path.join(KV, v), new MemoryBlockStore())
    expect(packed.manifest.version).toBe(m.version)
  })

  it('changes protocol, upgrade range and schedule as the README says', async () => {
    const m = async (v: string): Promise<Json> => parseManifest(JSON.parse(await fs.readFile(path.join(KV, v, 'upgossip.json'), 'utf8')))
    expect((await Promise.all(['v1', 'v2', 'v3', 'v4'].map(m))).map(x => [x.protocol, x.upgrades ?? null, x.schedule, x.simulation ?? null])).toEqual([
      [1, null, [{ rule: 'immediate' }], null],
      [2, '^1.0.0', [{ rule: 'rolling', max: 1 }], { past: 'so/past.js', future: 'so/future.js' }],
      [3, '^2.0.0', [{ rule: 'canary', fraction: 0.25, soak: '5s' }], { past: 'so/past.js', future: 'so/future.js' }],
      [3, '^3.0.0', [{ rule: 'canary', fraction: 0.25, soak: '5s' }], null]
    ])
  })
})

describe('demo app: transforms', () => {
  // written out by hand: in an object literal, __proto__ would not be a key
  const v1State = { 'data.json': '{"a":1,"b c":"two","obj":{"x":[1,2]},"__proto__":"still a key"}' }

  it('v2 up turns data.json into store.json entries, and down gives back the same bytes', async () => {
    const up = await transform('v2', 'migrate/up.js', v1State)
    expect(Object.keys(up)).toEqual(['store.json'])
    expect(JSON.parse(up['store.json'] as string)).toEqual({ entries: [['a', 1], ['b c', 'two'], ['obj', { x: [1, 2] }], ['__proto__', 'still a key']] })
    expect(await transform('v2', 'migrate/down.js', up)).toEqual(v1State)
  })

  it('v3 up turns store.json into state.json { kv }, and down gives back the same bytes', async () => {
    const v2State = await transform('v2', 'migrate/up.js', v1State)
    const up = await transform('v3', 'migrate/up.js', v2State)
    expect(Object.keys(up)).toEqual(['state.json'])
    const { kv } = JSON.parse(up['state.json'] as string)
    expect(Object.entries(kv)).toEqual([['a', 1], ['b c', 'two'], ['obj', { x: [1, 2] }], ['__proto__', 'still a key']])
    expect(await transform('v3', 'migrate/down.js', up)).toEqual(v2State)
  })

  it('v4 up writes one file per key, and down puts them back into state.json', async () => {
    const v3State = { 'state.json': JSON.stringify({ kv: { a: 1, 'b c': 'two', n: 7 } }) }
    const up = await transform('v4', 'migrate/up.js', v3State)
    expect(up).toEqual({
      'keys/a.json': JSON.stringify({ key: 'a', value: 1 }),
      'keys/b c.json': JSON.stringify({ key: 'b c', value: 'two' }),
      'keys/n.json': JSON.stringify({ key: 'n', value: 7 })
    })
    const down = await transform('v4', 'migrate/down.js', up)
    expect(JSON.parse(down['state.json'] as string)).toEqual({ kv: { a: 1, 'b c': 'two', n: 7 } })
  })

  it('v4 up throws on a key with "/" (the deliberate bug), so the upgrade fails on that peer only', async () => {
    await expect(transform('v4', 'migrate/up.js', { 'state.json': JSON.stringify({ kv: { a: 1, 'users/42': 'x' } }) })).rejects.toThrow(/ENOENT/)
  })

  it('every up works on a peer that never stored anything', async () => {
    expect(await transform('v2', 'migrate/up.js', {})).toEqual({ 'store.json': JSON.stringify({ entries: [] }) })
    expect(await transform('v3', 'migrate/up.js', {})).toEqual({ 'state.json': JSON.stringify({ kv: {} }) })
    expect(await transform('v4', 'migrate/up.js', {})).toEqual({})
    expect(await transform('v4', 'migrate/down.js', {})).toEqual({ 'state.json': JSON.stringify({ kv: {} }) })
  })
})

describe('demo app: simulation objects between 1 and 2', () => {
  it('declare the versions they speak', async () => {
    expect((await load<SO>('v2', 'so/past.js')).version).toBe(1)
    expect((await load<SO>('v2', 'so/future.js')).version).toBe(2)
  })

  it('v2 past SO: serves v1 requests on the v2 app, and calls v1 peers, replica flag included', async () => {
    const so = await load<SO>('v2', 'so/past.js')
    const app = stub(r => ({ result: r.action === 'set' ? r.v : 'held' }))
    expect(await so.serve({ op: 'put', key: 'a', value: 1 }, app)).toEqual({ value: 1 })
    expect(await so.serve({ op: 'put', key: 'a', value: 2, replica: true }, app)).toEqual({ value: 2 })
    expect(await so.serve({ op: 'get', key: 'a' }, app)).toEqual({ value: 'held' })
    expect(app.seen).toEqual([{ action: 'set', k: 'a', v: 1 }, { action: 'set', k: 'a', v: 2, replica: true }, { action: 'fetch', k: 'a' }])

    const peer = stub(r => ({ value: r.op === 'put' ? r.value : null }))
    expect(await so.call({ action: 'set', k: 'b', v: 'x', replica: true }, peer)).toEqual({ result: 'x' })
    expect(await so.call({ action: 'fetch', k: 'b' }, peer)).toEqual({ result: null })
    expect(peer.seen).toEqual([{ op: 'put', key: 'b', value: 'x', replica: true }, { op: 'get', key: 'b' }])
  })

  it('v2 future SO: serves v2 requests on a v1 app, and calls v2 peers', async () => {
    const so = await load<SO>('v2', 'so/future.js')
    const app = stub(r => ({ value: r.op === 'put' ? r.value : 5 }))
    expect(await so.serve({ action: 'set', k: 'a', v: 1, replica: true }, app)).toEqual({ result: 1 })
    expect(await so.serve({ action: 'fetch', k: 'a' }, app)).toEqual({ result: 5 })
    expect(app.seen).toEqual([{ op: 'put', key: 'a', value: 1, replica: true }, { op: 'get', key: 'a' }])

    const peer = stub(r => ({ result: r.action === 'set' ? r.v : null }))
    expect(await so.call({ op: 'put', key: 'b', value: [1], replica: true }, peer)).toEqual({ value: [1] })
    expect(await so.call({ op: 'get', key: 'b' }, peer)).toEqual({ value: null })
    expect(peer.seen).toEqual([{ action: 'set', k: 'b', v: [1], replica: true }, { action: 'fetch', k: 'b' }])
  })

  it('refuse a request they cannot translate (the caller gets an error, nothing is sent)', async () => {
    const so = await load<SO>('v2', 'so/past.js')
    const app = stub(() => ({ result: null }))
    await expect(so.serve({ op: 'delete', key: 'a' }, app)).rejects.toThrow(/unknown op/)
    expect(app.seen).toEqual([])
  })
})

describe('demo app: simulation objects between 2 and 3', () => {
  /** A v2 app holding `store`, answering set and fetch. */
  function v2App (store: Map<string, Json>): ReturnType<typeof stub> {
    return stub(r => {
      if (r.action === 'set') { store.set(r.k, r.v); return { result: r.v } }
      return { result: store.get(r.k) ?? null }
    })
  }

  it('declare the versions they speak', async () => {
    expect((await load<SO>('v3', 'so/past.js')).version).toBe(2)
    expect((await load<SO>('v3', 'so/future.js')).version).toBe(3)
  })

  it('v3 future SO: serves set and get on a v2 app, and emulates incr with fetch + set', async () => {
    const so = await load<SO>('v3', 'so/future.js')
    const store = new Map<string, Json>([['n', 5]])
    const app = v2App(store)
    expect(await so.serve({ cmd: ['set', 'a', 'x'], replica: true }, app)).toEqual({ ok: 'x' })
    expect(await so.serve({ cmd: ['get', 'a'] }, app)).toEqual({ ok: 'x' })
    expect(await so.serve({ cmd: ['incr', 'n', 2] }, app)).toEqual({ ok: 7 })
    expect(await so.serve({ cmd: ['incr', 'missing', 3] }, app)).toEqual({ ok: 3 })
    expect(app.seen).toEqual([
      { action: 'set', k: 'a', v: 'x', replica: true },
      { action: 'fetch', k: 'a' },
      { action: 'fetch', k: 'n' }, { action: 'set', k: 'n', v: 7 },
      { action: 'fetch', k: 'missing' }, { action: 'set', k: 'missing', v: 3 }
    ])
    expect(Object.fromEntries(store)).toEqual({ n: 7, a: 'x', missing: 3 })
    await expect(so.serve({ cmd: ['incr', 'a', 1] }, app)).rejects.toThrow(/incr needs a number/)
    expect(store.get('a')).toBe('x')
  })

  it('v3 future SO: calls v3 peers from a v2 app, replica flag included', async () => {
    const so = await load<SO>('v3', 'so/future.js')
    const peer = stub(r => ({ ok: r.cmd[0] === 'set' ? r.cmd[2] : 'held' }))
    expect(await so.call({ action: 'set', k: 'a', v: 1, replica: true }, peer)).toEqual({ result: 1 })
    expect(await so.call({ action: 'fetch', k: 'a' }, peer)).toEqual({ result: 'held' })
    expect(peer.seen).toEqual([{ cmd: ['set', 'a', 1], replica: true }, { cmd: ['get', 'a'] }])
  })

  it('v3 past SO: serves v2 requests on the v3 app', async () => {
    const so = await load<SO>('v3', 'so/past.js')
    const app = stub(r => ({ ok: r.cmd[0] === 'set' ? r.cmd[2] : null }))
    expect(await so.serve({ action: 'set', k: 'a', v: 1, replica: true }, app)).toEqual({ result: 1 })
    expect(await so.serve({ action: 'fetch', k: 'b' }, app)).toEqual({ result: null })
    expect(app.seen).toEqual([{ cmd: ['set', 'a', 1], replica: true }, { cmd: ['get', 'b'] }])
  })

  it('v3 past SO: calls v2 peers, emulating incr there with fetch + set', async () => {
    const so = await load<SO>('v3', 'so/past.js')
    const store = new Map<string, Json>([['n', 1]])
    const peer = v2App(store)
    expect(await so.call({ cmd: ['incr', 'n', 10] }, peer)).toEqual({ ok: 11 })
    expect(await so.call({ cmd: ['set', 'a', true], replica: true }, peer)).toEqual({ ok: true })
    expect(await so.call({ cmd: ['get', 'a'] }, peer)).toEqual({ ok: true })
    expect(peer.seen).toEqual([
      { action: 'fetch', k: 'n' }, { action: 'set', k: 'n', v: 11 },
      { action: 'set', k: 'a', v: true, replica: true },
      { action: 'fetch', k: 'a' }
    ])
  })
})
