/**
 * Retention: the policy's decisions (which releases and states a peer keeps), the
 * collection of a real fs block store (kept DAGs survive, the rest goes, a fetch's blocks
 * and blocks a fetch touches during the collection survive), and the retention part with
 * stubbed collaborators on a real data directory.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import type { Clock } from '../../src/clock.js'
import { Retention } from '../../src/daemon/retention.js'
import type { RetentionComponents, RetentionResult } from '../../src/daemon/retention.js'
import { retainedReleases, versionKey } from '../../src/daemon/retention-policy.js'
import type { RetentionInput, RetentionRelease } from '../../src/daemon/retention-policy.js'
import type { ViewEntry } from '../../src/net/index.js'
import { heldPackageBlocks, packDirectory, walkPackageBlocks } from '../../src/package/index.js'
import type { ReleaseEntry, ReleaseState, ReleaseSummary } from '../../src/release/index.js'
import { DataDir, FsBlockStore } from '../../src/store/index.js'
import { samplePackage, tempDir } from '../helpers.js'

const NOW = Date.parse('2026-06-01T00:00:00Z')
const HOUR = 3_600_000
const INIT = { keepReleases: 1, retainWindowMs: 24 * HOUR }

function rel (version: string, state: ReleaseState, extra: Partial<RetentionRelease> = {}): RetentionRelease {
  return { id: `r-${version}`, app: 'kv', version, state, revoked: false, ...extra }
}

function input (releases: RetentionRelease[], current: string, previous?: string, extra: Partial<RetentionInput> = {}): RetentionInput {
  const ref = (v: string | undefined): { id: string, version: string } | undefined => v == null ? undefined : { id: `r-${v}`, version: v }
  return { app: 'kv', current: ref(current), previous: ref(previous), releases, seen: new Map(), fetched: new Map(), now: NOW, switching: [], ...extra }
}

describe('the retention policy', () => {
  const history = ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0'].map(v => rel(v, 'superseded'))

  it('keeps the current, previous, to-come and keepReleases newest superseded releases, and only the states of current and previous', () => {
    const releases = [...history, rel('1.5.0', 'active'), rel('1.6.0', 'fetching'), rel('1.7.0', 'staged'), rel('1.8.0', 'waiting'), rel('0.9.0', 'failed')]
    const plan = retainedReleases(input(releases, '1.5.0', '1.4.0'), INIT)
    expect(Object.fromEntries(plan.packages)).toEqual({ 'r-1.5.0': 'current', 'r-1.4.0': 'previous', 'r-1.6.0': 'to come', 'r-1.7.0': 'to come', 'r-1.8.0': 'to come', 'r-1.3.0': 'recent' })
    expect([...plan.states].sort()).toEqual(['r-1.4.0', 'r-1.5.0'])
    expect(retainedReleases(input(releases, '1.5.0', '1.4.0'), { ...INIT, keepReleases: 3 }).packages.get('r-1.1.0')).toBe('recent')
  })

  it('keeps a revoked release only while this peer runs it', () => {
    const revoked = (r: RetentionRelease): RetentionRelease => ({ ...r, revoked: true })
    const running = retainedReleases(input([rel('1.0.0', 'superseded'), revoked(rel('2.0.0', 'active'))], '2.0.0', '1.0.0'), INIT)
    expect(running.packages.get('r-2.0.0')).toBe('current')
    // rolled back from it: it goes, package and state, even though a peer in view still runs it
    const seen = new Map([[versionKey('kv', '2.0.0'), NOW - HOUR]])
    const after = retainedReleases(input([rel('1.0.0', 'active'), revoked(rel('2.0.0', 'revoked')), revoked(rel('3.0.0', 'staged'))], '1.0.0', undefined, { seen }), INIT)
    expect([...after.packages.keys()]).toEqual(['r-1.0.0'])
    expect([...after.states]).toEqual(['r-1.0.0'])
    // a revoked previous is no way back: neither its package nor its state is kept
    const prev = retainedReleases(input([revoked(rel('1.0.0', 'revoked')), rel('2.0.0', 'active')], '2.0.0', '1.0.0'), INIT)
    expect([...prev.packages.keys()]).toEqual(['r-2.0.0'])
    expect([...prev.states]).toEqual(['r-2.0.0'])
  })

  it('keeps what peers in view ran within the window, and the SO chain between the oldest of them and this peer', () => {
    const releases = [...history, rel('1.5.0', 'superseded'), rel('1.6.0', 'active')]
    const seen = new Map([[versionKey('kv', '1.1.0'), NOW - 2 * HOUR], [versionKey('kv', '1.0.0'), NOW - 25 * HOUR]])
    const plan = retainedReleases(input(releases, '1.6.0', '1.5.0', { seen }), { ...INIT, keepReleases: 0 })
    expect(Object.fromEntries(plan.packages)).toEqual({ 'r-1.6.0': 'current', 'r-1.5.0': 'previous', 'r-1.1.0': 'run in view', 'r-1.2.0': 'so chain', 'r-1.3.0': 'so chain', 'r-1.4.0': 'so chain' })
    // past the window nothing of it is kept
    const later = retainedReleases(input(releases, '1.6.0', '1.5.0', { seen, now: NOW + 23 * HOUR }), { ...INIT, keepReleases: 0 })
    expect([...later.packages.keys()].sort()).toEqual(['r-1.5.0', 'r-1.6.0'])
  })

  it('keeps releases peers in view fetch, and other apps\' versions they run, but nothing refused', () => {
    const releases = [rel('1.0.0', 'superseded'), rel('2.0.0', 'active'), { ...rel('1.0.0', 'superseded'), id: 'store-1', app: 'store' }, { ...rel('2.0.0', 'superseded'), id: 'store-2', app: 'store' }, { ...rel('3.0.0', 'refused'), id: 'store-3', app: 'store' }]
    const seen = new Map([[versionKey('store', '2.0.0'), NOW], [versionKey('store', '3.0.0'), NOW]])
    const fetched = new Map([['r-1.0.0', NOW - HOUR]])
    const plan = retainedReleases(input(releases, '2.0.0', undefined, { seen, fetched }), { ...INIT, keepReleases: 0 })
    expect(Object.fromEntries(plan.packages)).toEqual({ 'r-2.0.0': 'current', 'store-2': 'run in view', 'r-1.0.0': 'fetched in view' })
  })

  it('keeps the state of the release a switch in progress goes to', () => {
    const plan = retainedReleases(input([rel('1.0.0', 'superseded'), rel('2.0.0', 'active'), rel('3.0.0', 'upgrading')], '2.0.0', undefined, { switching: ['r-3.0.0'] }), { ...INIT, keepReleases: 0 })
    expect([...plan.states].sort()).toEqual(['r-2.0.0', 'r-3.0.0'])
    expect(plan.packages.has('r-1.0.0')).toBe(false)
  })
})

async function packed (root: string, store: FsBlockStore, version: string, files: Record<string, string> = {}): Promise<CID> {
  return (await packDirectory(await samplePackage(root, version, {}, files), store)).cid
}

async function held (store: FsBlockStore, cids: CID[]): Promise<boolean[]> {
  return await Promise.all(cids.map(async c => await store.has(c)))
}

describe('collecting a block store', () => {
  it('keeps every block of the kept DAGs, shared ones too, and deletes the rest', async () => {
    const dir = await tempDir()
    const store = new FsBlockStore(path.join(dir, 'blocks'))
    const shared = 'x'.repeat(5000)
    const a = await packed(dir, store, '1.0.0', { 'lib/shared.txt': shared, 'a.txt': 'only in a' })
    const b = await packed(dir, store, '2.0.0', { 'lib/shared.txt': shared, 'b.txt': 'only in b' })
    const aBlocks = (await walkPackageBlocks(a, store)).cids
    const bBlocks = (await walkPackageBlocks(b, store)).cids
    const onlyB = bBlocks.filter(c => !aBlocks.some(x => x.equals(c)))
    expect(onlyB.length).toBeGreaterThan(0)
    const result = await store.collect(async () => await heldPackageBlocks(a, store))
    expect(await held(store, aBlocks)).toEqual(aBlocks.map(() => true))
    expect(await held(store, onlyB)).toEqual(onlyB.map(() => false))
    expect(result.removed).toBe(onlyB.length)
    expect(result.kept).toBe(aBlocks.length)
    expect(result.freedBytes).toBeGreaterThan(0)
    // a fresh store (no presence cache) reads the same from disk, and A still walks whole
    const fresh = new FsBlockStore(path.join(dir, 'blocks'))
    expect(await held(fresh, onlyB)).toEqual(onlyB.map(() => false))
    expect((await walkPackageBlocks(a, fresh)).cids.length).toBe(aBlocks.length)
  })

  it('keeps the blocks of a fetch in progress: what is reachable through the blocks it holds', async () => {
    const dir = await tempDir()
    const source = new FsBlockStore(path.join(dir, 'source'))
    const root = await packed(dir, source, '1.0.0', { 'x/deep.txt': 'deep file', 'y.txt': 'y' })
    const all = (await walkPackageBlocks(root, source)).cids
    // the fetch has the root and its first links so far (a fetch stores a block only after the one linking to it)
    const store = new FsBlockStore(path.join(dir, 'blocks'))
    const part = all.slice(0, 3)
    for (const cid of part) await store.put(cid, await source.get(cid))
    const stray = await packed(dir, store, '9.0.0')
    await store.collect(async () => await heldPackageBlocks(root, store))
    expect(await held(store, part)).toEqual(part.map(() => true))
    expect(await store.has(stray)).toBe(false)
  })

  it('keeps a block a fetch finds held or stores while the collection marks (the write barrier)', async () => {
    const dir = await tempDir()
    const store = new FsBlockStore(path.join(dir, 'blocks'))
    const source = new FsBlockStore(path.join(dir, 'source'))
    const old = await packed(dir, store, '1.0.0')
    const oldBlocks = (await walkPackageBlocks(old, store)).cids
    const arriving = await packed(dir, source, '2.0.0', { 'new.txt': 'arrives during the collection' })
    const result = await store.collect(async () => {
      // a fetch starting now finds the old root held (and skips it) and stores a block of its own
      expect(await store.has(old)).toBe(true)
      await store.put(arriving, await source.get(arriving))
      return []
    })
    expect(await store.has(old)).toBe(true)
    expect(await store.has(arriving)).toBe(true)
    expect(result.removed).toBe(oldBlocks.length - 1)
    // the next collection, with nothing looking, takes them
    await store.collect(async () => [])
    expect(await held(store, [old, arriving])).toEqual([false, false])
    // and a block deleted can be stored again
    await store.put(arriving, await source.get(arriving))
    expect(await store.has(arriving)).toBe(true)
  })
})

interface Part {
  retention: Retention
  dataDir: DataDir
  store: FsBlockStore
  results: RetentionResult[]
  events: string[]
  view: ViewEntry[]
  clock: { now: () => number, at: number }
}

function beat (version: string, peerId = `12D3KooW-${version}`): ViewEntry {
  return { peerId, seen: NOW, beat: { v: 1, seq: 1, app: 'kv', version, state: 'running', labels: {}, addrs: [], heads: {}, held: [], protocol: 1 } }
}

async function part (root: string, store: FsBlockStore, entries: ReleaseEntry[], current: string, previous: string | null): Promise<Part> {
  const dataDir = new DataDir(root)
  const results: RetentionResult[] = []
  const events: string[] = []
  const view: ViewEntry[] = []
  const clock: Clock & { at: number } = { at: NOW, now () { return this.at } }
  const ref = (id: string | null): { id: string, version: string } | null => {
    const e = entries.find(x => x.id === id)
    return e == null ? null : { id: e.id, version: e.signed.record.version }
  }
  const c: RetentionComponents = {
    book: { peek: async id => entries.find(e => e.id === id), summaries: () => entries.map(e => ({ id: e.id, app: e.signed.record.app, version: e.signed.record.version, state: e.state }) as ReleaseSummary), isRevoked: id => entries.find(e => e.id === id)?.state === 'revoked' },
    nodeState: { state: { app: 'kv', current: ref(current), previous: ref(previous), since: NOW } },
    view: () => view,
    blocks: store,
    dataDir,
    events: { info: (type, message) => { events.push(`${type}: ${message}`) }, warn: (type, message) => { events.push(`${type}: ${message}`) } },
    metrics: { retained: r => { results.push(r as RetentionResult) } },
    clock,
    switching: () => [],
    exclusive: async fn => await fn()
  }
  return { retention: new Retention(c, { ...INIT, keepReleases: 0, observeEveryMs: 60_000, collectEveryMs: HOUR, startDelayMs: HOUR }), dataDir, store, results, events, view, clock }
}

describe('the retention part', () => {
  it('removes the packages, states and blocks of releases no longer kept, and remembers the versions peers ran across a restart', async () => {
    const root = await tempDir()
    const dataDir = new DataDir(root)
    const store = new FsBlockStore(dataDir.blocks)
    const entries: ReleaseEntry[] = []
    for (const [i, version] of ['1.0.0', '2.0.0', '3.0.0', '4.0.0'].entries()) {
      const cid = await packed(root, store, version, { 'v.txt': version })
      const state: ReleaseState = i < 3 ? 'superseded' : 'active'
      entries.push({ id: `r-${version}`, state, admitted: new Date(NOW).toISOString(), signed: { record: { app: 'kv', version, previous: null, package: cid, size: 1, manifest: {}, issued: '', expires: '' }, signatures: [] } })
      await fs.mkdir(dataDir.packageDir(`r-${version}`), { recursive: true })
      await fs.mkdir(dataDir.stateDir(`r-${version}`), { recursive: true })
    }
    const blocksOf = async (id: string): Promise<CID[]> => (await walkPackageBlocks((entries.find(e => e.id === id) as ReleaseEntry).signed.record.package, store)).cids
    const v1 = await blocksOf('r-1.0.0')
    const v2 = await blocksOf('r-2.0.0')
    // a peer in view runs 2.0.0
    const first = await part(root, store, entries, 'r-4.0.0', 'r-3.0.0')
    first.view.push(beat('2.0.0'))
    await first.retention.start()
    const result = await first.retention.collect('commit')
    expect((await fs.readdir(dataDir.packages)).sort()).toEqual(['r-2.0.0', 'r-3.0.0', 'r-4.0.0'])
    expect((await fs.readdir(dataDir.states)).sort()).toEqual(['r-3.0.0', 'r-4.0.0'])
    expect(result.kept).toEqual({ current: 1, previous: 1, 'run in view': 1 })
    expect(result.packages.removed).toBe(1)
    expect(result.states.removed).toBe(2)
    expect(result.blocks.removed).toBeGreaterThan(0)
    expect(await store.has(v1[0] as CID)).toBe(false)
    expect(await held(store, v2)).toEqual(v2.map(() => true))
    expect(first.results).toHaveLength(1)
    expect(first.events.at(-1)).toMatch(/^retention: collected \(commit\): removed 1 packages, 2 states and \d+ blocks/)
    await first.retention.stop()

    // restarted with an empty view, within the window: 2.0.0 is still kept; past it, it goes
    const second = await part(root, new FsBlockStore(dataDir.blocks), entries, 'r-4.0.0', 'r-3.0.0')
    await second.retention.start()
    second.clock.at = NOW + 2 * HOUR
    expect((await second.retention.collect('start')).kept['run in view']).toBe(1)
    second.clock.at = NOW + 25 * HOUR
    const late = await second.retention.collect('periodic')
    expect(late.kept['run in view']).toBeUndefined()
    expect((await fs.readdir(dataDir.packages)).sort()).toEqual(['r-3.0.0', 'r-4.0.0'])
    expect(await second.store.has(v2[0] as CID)).toBe(false)
    expect(late.disk.blocks).toBe(late.blocks.keptBytes)
    await second.retention.stop()
  })

  it('forgets the version a peer ran once it moves on, and keeps what it fetches', async () => {
    const root = await tempDir()
    const dataDir = new DataDir(root)
    const store = new FsBlockStore(dataDir.blocks)
    const entries = ['1.0.0', '2.0.0', '3.0.0'].map((version, i) => ({ id: `r-${version}`, state: i < 2 ? 'superseded' : 'active', signed: { record: { app: 'kv', version, package: undefined } } }) as unknown as ReleaseEntry)
    for (const e of entries) await fs.mkdir(dataDir.packageDir(e.id), { recursive: true })
    const p = await part(root, store, entries, 'r-3.0.0', null)
    p.view.push(beat('1.0.0', 'peer-x'))
    await p.retention.start()
    expect(p.retention.plan().packages.get('r-1.0.0')).toBe('run in view')
    // peer-x now runs 3.0.0 and fetches nothing: 1.0.0 and 2.0.0 are no longer needed by it
    p.view[0] = beat('3.0.0', 'peer-x')
    expect([...p.retention.plan().packages.keys()]).toEqual(['r-3.0.0'])
    // another peer fetching 2.0.0 keeps it
    p.view.push({ ...beat('1.0.0', 'peer-y'), beat: { ...beat('1.0.0').beat, app: 'other', held: [{ id: 'r-2.0.0', have: 10, size: 100 }] } })
    expect(p.retention.plan().packages.get('r-2.0.0')).toBe('fetched in view')
    await p.retention.stop()
  })
})
