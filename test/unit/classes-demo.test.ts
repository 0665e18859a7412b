/**
 * The two-class demo in testnet/apps/classes, module by module: the manifests (valid, the
 * `calls` and the `after` rule the guide describes), store 2.0.0's transforms on sample
 * state, its past and future simulation objects against stub apps and peers, and the
 * client's store wire in each version.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertManifestFilesPresent, packDirectory, parseManifest } from '../../src/package/index.js'
import { MemoryBlockStore } from '../../src/store/index.js'
import { tempDir, writeTree } from '../helpers.js'

const CLASSES = fileURLToPath(new URL('../../testnet/apps/classes/', import.meta.url))

type Json = any
type Send = (request: Json) => Promise<Json>
interface SO { version: number, serve: (request: Json, local: Send) => Promise<Json>, call: (request: Json, remote: Send) => Promise<Json> }
type Transform = (arg: { from: string, to: string, fromVersion: string, toVersion: string, log: (...args: unknown[]) => void }) => Promise<void>

async function load<T = Json> (dir: string, file: string, name = 'default'): Promise<T> {
  return (await import(pathToFileURL(path.join(CLASSES, dir, file)).href) as Record<string, T>)[name] as T
}

function stub (answer: (request: Json) => Json): Send & { seen: Json[] } {
  const seen: Json[] = []
  const send = async (request: Json): Promise<Json> => { seen.push(request); return answer(request) }
  return Object.assign(send, { seen })
}

let root: string
beforeAll(async () => { root = await tempDir('upgossip-classes-demo-') })
afterAll(async () => { await fs.rm(root, { recursive: true, force: true }) })

describe('two-class demo: manifests', () => {
  it.each(['store/v1', 'store/v2', 'client/v1', 'client/v2'])('%s has a valid manifest whose files are all there, and packs', async (dir) => {
    const m = parseManifest(JSON.parse(await fs.readFile(path.join(CLASSES, dir, 'upgossip.json'), 'utf8')))
    expect(m.app).toBe(dir.split('/')[0])
    const present = new Set((await fs.readdir(path.join(CLASSES, dir), { recursive: true })).map(f => f.split(path.sep).join('/')))
    assertManifestFilesPresent(m, present)
    expect((await packDirectory(path.join(CLASSES, dir), new MemoryBlockStore())).manifest.version).toBe(m.version)
  })

  it('the clients call store 1, then store 2 after every store runs >=2.0.0; the client server is the same file in both', async () => {
    const m = async (dir: string): Promise<Json> => parseManifest(JSON.parse(await fs.readFile(path.join(CLASSES, dir, 'upgossip.json'), 'utf8')))
    expect([(await m('client/v1')).calls, (await m('client/v2')).calls]).toEqual([{ store: 1 }, { store: 2 }])
    expect((await m('client/v2')).schedule).toEqual([{ rule: 'after', app: 'store', version: '>=2.0.0', fraction: 1 }, { rule: 'rolling', max: 1 }])
    expect([(await m('store/v1')).protocol, (await m('store/v2')).protocol]).toEqual([1, 2])
    expect((await m('store/v2')).simulation).toEqual({ past: 'so/past.js', future: 'so/future.js' })
    expect(await fs.readFile(path.join(CLASSES, 'client/v2/server.js'), 'utf8')).toBe(await fs.readFile(path.join(CLASSES, 'client/v1/server.js'), 'utf8'))
  })
})

describe('two-class demo: store 2.0.0 transforms', () => {
  async function run (file: string, files: Record<string, string>): Promise<Json> {
    const from = await fs.mkdtemp(path.join(root, 'from-'))
    const to = await fs.mkdtemp(path.join(root, 'to-'))
    await writeTree(from, files)
    await (await load<Transform>('store/v2', file))({ from, to, fromVersion: 'a', toVersion: 'b', log: () => {} })
    return Object.fromEntries(await Promise.all((await fs.readdir(to)).map(async f => [f, JSON.parse(await fs.readFile(path.join(to, f), 'utf8'))])))
  }

  it('up gives every key rev 0, down drops the revisions; down(up(state)) is the state', async () => {
    const v1 = { a: 1, 'seed-peer-1': 'seed' }
    const up = await run('migrate/up.js', { 'data.json': JSON.stringify(v1) })
    expect(up).toEqual({ 'entries.json': { a: { value: 1, rev: 0 }, 'seed-peer-1': { value: 'seed', rev: 0 } } })
    const down = await run('migrate/down.js', { 'entries.json': JSON.stringify(up['entries.json']) })
    expect(down).toEqual({ 'data.json': v1 })
  })

  it('a store that never took a write transforms to empty state', async () => {
    expect(await run('migrate/up.js', {})).toEqual({ 'entries.json': {} })
    expect(await run('migrate/down.js', {})).toEqual({ 'data.json': {} })
  })
})

describe('two-class demo: store 2.0.0 simulation objects', () => {
  it('past: a protocol 1 put and get served by the 2.0.0 store', async () => {
    const past = await load<SO>('store/v2', 'so/past.js')
    expect(past.version).toBe(1)
    const local = stub(req => ({ entry: req.cmd === 'set' ? { value: req.value, rev: 1 } : null }))
    expect(await past.serve({ op: 'put', key: 'k', value: 'v' }, local)).toEqual({ value: 'v' })
    expect(await past.serve({ op: 'get', key: 'absent' }, local)).toEqual({ value: null })
    expect(local.seen).toEqual([{ cmd: 'set', key: 'k', value: 'v' }, { cmd: 'get', key: 'absent' }])
    await expect(past.serve({ op: 'drop', key: 'k' }, local)).rejects.toThrow(/unknown op "drop"/)
  })

  it('future: a protocol 2 request served by a 1.0.0 store (no revisions there: rev null)', async () => {
    const future = await load<SO>('store/v2', 'so/future.js')
    expect(future.version).toBe(2)
    const local = stub(req => ({ value: req.op === 'put' ? req.value : null }))
    expect(await future.serve({ cmd: 'set', key: 'k', value: 3 }, local)).toEqual({ entry: { value: 3, rev: null } })
    expect(await future.serve({ cmd: 'get', key: 'k' }, local)).toEqual({ entry: null })
    expect(local.seen).toEqual([{ op: 'put', key: 'k', value: 3 }, { op: 'get', key: 'k' }])
  })
})

describe('two-class demo: the client speaks store protocol 1, then 2', () => {
  it.each([
    ['client/v1', 1, { op: 'put', key: 'k', value: 'v' }, { value: 'v' }],
    ['client/v2', 2, { cmd: 'set', key: 'k', value: 'v' }, { entry: { value: 'v', rev: 1 } }]
  ])('%s: calls { app: "store" } in protocol %i', async (dir, protocol, request, answer) => {
    expect(await load(dir, 'store-wire.js', 'STORE_PROTOCOL')).toBe(protocol)
    const calls: Json[] = []
    const node = { call: async (peer: string, req: Json, opts: Json) => { calls.push([peer, req, opts]); return answer } }
    const storePut = await load<(node: Json, store: string, key: string, value: Json) => Promise<Json>>(dir, 'store-wire.js', 'storePut')
    expect(await storePut(node, 'P', 'k', 'v')).toBe('v')
    expect(calls).toEqual([['P', request, { app: 'store' }]])
  })
})
