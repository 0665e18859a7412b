/**
 * The demo app of testnet/apps/kv on the real CLI and real daemons: `upgossip check`
 * runs its transforms and simulation objects step by step; three peers replicate each
 * write to the next peer id and go 1.0.0 → 2.0.0 keeping their state; and 4.0.0's
 * deliberately broken transform fails on a peer that holds a key with "/" (which rolls
 * back and keeps serving) while a peer without one upgrades.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { tempDir, writeTree } from '../helpers.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

const KV = fileURLToPath(new URL('../../testnet/apps/kv/', import.meta.url))

/** The files of one version directory, as a path → content map. */
async function versionFiles (version: string): Promise<Record<string, string>> {
  const dir = path.join(KV, version)
  const files: Record<string, string> = {}
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) files[path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/')] = await fs.readFile(path.join(e.parentPath, e.name), 'utf8')
  }
  return files
}

let root: string
let net: TestNet | undefined
beforeAll(async () => { root = await tempDir('upgossip-demo-e2e-') })
afterAll(async () => { await fs.rm(root, { recursive: true, force: true }) })
afterEach(async () => {
  await net?.close()
  net = undefined
})

async function sample (name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(root, name)
  await writeTree(dir, files)
  return dir
}

const samples = async (name: string, lines: unknown[]): Promise<string> => {
  const file = path.join(root, name)
  await fs.writeFile(file, lines.map(l => JSON.stringify(l)).join('\n') + '\n')
  return file
}

describe('demo app', () => {
  it('passes `upgossip check` from each version to the next, and 4.0.0 fails it on a key with "/"', async () => {
    const check = async (version: string, previous: string, state: string, sampleFile?: string): Promise<Awaited<ReturnType<typeof runCli>>> =>
      await runCli(['check', path.join(KV, version), '--previous', path.join(KV, previous), '--state', state, ...(sampleFile == null ? [] : ['--samples', sampleFile])])
    const [v1v2, v2v3, fine, broken] = await Promise.all([
      check('v2', 'v1', await sample('state-1', { 'data.json': JSON.stringify({ a: 1, 'b c': { nested: [true] } }) }), await samples('samples-1.jsonl', [
        { request: { op: 'put', key: 'a', value: 1.23456 }, response: { value: 1.23456 } },
        { request: { op: 'put', key: 'a', value: 'x', replica: true }, response: { value: 'x' } },
        { request: { op: 'get', key: 'a' }, response: { value: null } }
      ])),
      check('v3', 'v2', await sample('state-2', { 'store.json': JSON.stringify({ entries: [['a', 1], ['n', 41]] }) }), await samples('samples-2.jsonl', [
        { request: { action: 'set', k: 'n', v: 42, replica: true }, response: { result: 42 } },
        { request: { action: 'fetch', k: 'n' }, response: { result: 42 } }
      ])),
      check('v4', 'v3', await sample('state-3', { 'state.json': JSON.stringify({ kv: { a: 1, b: 'two' } }) })),
      check('v4', 'v3', await sample('state-3-slash', { 'state.json': JSON.stringify({ kv: { a: 1, 'users/42': 'x' } }) }))
    ])
    expect(v1v2.code, v1v2.stdout + v1v2.stderr).toBe(0)
    expect(v1v2.stdout).toContain('down(up(state)) == state: ok')
    expect(v1v2.stdout).toContain('past SO: 3 samples, 0 did not survive the round trip')
    expect(v1v2.stdout).toContain('future SO: 3 samples, 0 did not survive the round trip')

    expect(v2v3.code, v2v3.stdout + v2v3.stderr).toBe(0)
    expect(v2v3.stdout).toContain('down(up(state)) == state: ok')
    expect(v2v3.stdout).toContain('past SO: 2 samples, 0 did not survive the round trip')
    expect(v2v3.stdout).toContain('future SO: 2 samples, 0 did not survive the round trip')

    expect(fine.code, fine.stdout + fine.stderr).toBe(0)
    expect(fine.stdout).toContain('transform up: ok (2 files)')
    expect(fine.stdout).toContain('down(up(state)) == state: ok')
    expect(broken.code).toBe(1)
    expect(broken.stdout).toMatch(/transform up: FAILED: .*ENOENT/)
  })

  it('replicates each write to the next peer id only, and keeps its state from 1.0.0 to 2.0.0', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(await versionFiles('v1'))
    const v2 = await net.releaseFiles(await versionFiles('v2'))
    const a = await net.start('a', ['--install', v1.file])
    const peers = [a, ...await Promise.all(['b', 'c'].map(async name => await (net as TestNet).start(name, ['--install', v1.file, '--bootstrap', a.addr])))]
    await waitFor('every peer to know the other two', async () => {
      for (const p of peers) if ((await p.status()).network.length < 2) return false
      return true
    })
    await Promise.all(peers.map(async p => { await p.waitVersion('1.0.0') }))
    // the ring the app computes: sorted peer ids, each copies to the next
    const ring = [...peers].sort((x, y) => x.peerId < y.peerId ? -1 : 1)
    const next = (p: Peer): Peer => ring[(ring.indexOf(p) + 1) % ring.length] as Peer
    const third = (p: Peer): Peer => next(next(p))

    for (const p of peers) expect(await p.call({ op: 'put', key: `from-${p.name}`, value: p.name })).toEqual({ value: p.name })
    for (const p of peers) {
      await waitFor(`${next(p).name} to hold the copy of ${p.name}'s write`, async () => (await next(p).call({ op: 'get', key: `from-${p.name}` })).value === p.name, 60_000)
        .catch(async (err: Error) => {
          // the copy is the app's own call: its log says why it did not arrive
          const log = await fs.readFile(path.join(p.dataDir, 'app.log'), 'utf8').catch(() => '(no app log)')
          throw new Error(`${err.message}; ${p.name}'s app log:\n${log.slice(-2000)}`)
        })
    }
    // a replica is never copied on: the third peer has not got it
    for (const p of peers) expect(await third(p).call({ op: 'get', key: `from-${p.name}` })).toEqual({ value: null })

    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    // rolling, one at a time: the first peer on 2.0.0 copies a write to a neighbour that
    // is most likely still on 1.0.0, through the simulation objects
    const first = await waitFor('a first peer on 2.0.0', async () => {
      for (const p of peers) if ((await p.status()).version === '2.0.0') return p
      return undefined
    })
    expect(await first.call({ action: 'set', k: 'mixed', v: 'across versions' })).toEqual({ result: 'across versions' })
    await waitFor(`${next(first).name} to hold the copy of a 2.0.0 write`, async () => {
      const r = await next(first).call((await next(first).status()).version === '1.0.0' ? { op: 'get', key: 'mixed' } : { action: 'fetch', k: 'mixed' })
      return (r.value ?? r.result) === 'across versions'
    })
    await Promise.all(peers.map(async p => { await p.waitVersion('2.0.0', 60_000) }))
    // every key survived up(), read in the new wire format
    for (const p of peers) {
      expect(await p.call({ action: 'fetch', k: `from-${p.name}` })).toEqual({ result: p.name })
      expect(await next(p).call({ action: 'fetch', k: `from-${p.name}` })).toEqual({ result: p.name })
    }
    // and 2.0.0 replicates the same way
    expect(await a.call({ action: 'set', k: 'after', v: [1, 2] })).toEqual({ result: [1, 2] })
    await waitFor(`${next(a).name} to hold the copy`, async () => (await next(a).call({ action: 'fetch', k: 'after' })).result?.length === 2)
  })

  it('4.0.0 fails and rolls back on a peer holding a key with "/", and upgrades a peer without one', async () => {
    net = await TestNet.create()
    const v3 = await net.releaseFiles(await versionFiles('v3'))
    const v4 = await net.releaseFiles(await versionFiles('v4'))
    // two separate one-peer networks, so each is its own canary
    const [slash, plain] = await Promise.all(['slash', 'plain'].map(async name => await (net as TestNet).start(name, ['--install', v3.file]))) as [Peer, Peer]
    await Promise.all([slash, plain].map(async p => { await p.waitVersion('3.0.0') }))
    expect(await slash.call({ cmd: ['set', 'users/42', 'ada'] })).toEqual({ ok: 'ada' })
    for (const p of [slash, plain]) {
      expect(await p.call({ cmd: ['incr', 'n', 2] })).toEqual({ ok: 2 })
      expect((await runCli(['publish', v4.file, '--data', p.dataDir])).code).toBe(0)
    }
    await plain.waitVersion('4.0.0')
    expect(await plain.call({ cmd: ['incr', 'n', 3] })).toEqual({ ok: 5 })
    await waitFor('the upgrade of slash to fail', async () => (await slash.status()).releases.find(r => r.id === v4.id)?.state === 'failed')
    const s = await slash.status()
    expect([s.version, s.state]).toEqual(['3.0.0', 'running'])
    expect(await slash.call({ cmd: ['get', 'users/42'] })).toEqual({ ok: 'ada' })
    expect(await slash.call({ cmd: ['incr', 'n', 1] })).toEqual({ ok: 3 })
    const history = JSON.parse((await runCli(['history', '--data', slash.dataDir, '--json'])).stdout) as Array<{ type: string, message: string }>
    expect(history.find(e => e.type === 'upgrade-failed')?.message).toMatch(/failed at transform: .*ENOENT/)
  })
})
