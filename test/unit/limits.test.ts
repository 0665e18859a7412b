/**
 * The bounds docs/SECURITY.md lists, each checked at its edge: one over is refused by
 * name (or, for a cache, the oldest entry goes), the limit itself is still accepted.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { EventLog } from '../../src/daemon/index.js'
import { AppHost, RequestHoldOverflowError } from '../../src/host/index.js'
import { MAX_BEAT_BYTES, MAX_SYNC_RELEASES, MalformedBeatError, NetworkView, SYNC_TRUST_FRAMES, SYNC_TRUST_FRAMES_PER_APP, decodeBeat, encodeBeat, syncAnswer } from '../../src/net/index.js'
import type { StatusBeat } from '../../src/net/index.js'
import {
  CarMalformedError, MAX_CAR_BYTES, MAX_PACKAGE_BLOCKS, MAX_PACKAGE_FILES, ManifestInvalidError, PackageDagError, UnsafePathError,
  listPackageFiles, nameProblem, packDirectory, parseManifest, readCar, readPackageManifest, unpackPackage, walkPackageBlocks, writeCar
} from '../../src/package/index.js'
import { MAX_RELEASES_TOPIC_MESSAGE, readBundle, decodeReleasesTopicMessage } from '../../src/release/index.js'
import { MemoryBlockStore } from '../../src/store/index.js'
import { samplePackage, tempDir, writeTree } from '../helpers.js'

const manifest = { app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 }

describe('limits at their edge', () => {
  it('schedule rules per manifest: 32', () => {
    const rules = (n: number): unknown[] => Array.from({ length: n }, () => ({ rule: 'immediate' }))
    expect(parseManifest({ ...manifest, schedule: rules(32) }).schedule).toHaveLength(32)
    expect(() => parseManifest({ ...manifest, schedule: rules(33) })).toThrow(ManifestInvalidError)
  })

  it('a file or directory name: 255 bytes', () => {
    expect(nameProblem('a'.repeat(255))).toBeUndefined()
    expect(nameProblem('a'.repeat(256))).toMatch(/255/)
    // bytes, not characters
    expect(nameProblem('é'.repeat(128))).toMatch(/255/)
  })

  it('directory depth in a package: 64', async () => {
    const root = await tempDir()
    const deep = (n: number): string => Array.from({ length: n }, (_, i) => `d${i}`).join('/')
    for (const [n, ok] of [[63, true], [65, false]] as const) {
      const dir = path.join(root, `pkg${n}`)
      await writeTree(dir, { 'upgossip.json': JSON.stringify(manifest), 'server.js': '', [`${deep(n)}/f.txt`]: 'x' })
      const store = new MemoryBlockStore()
      const unpack = async (): Promise<unknown> => await unpackPackage((await packDirectory(dir, store)).cid, store, path.join(root, `out${n}`))
      if (ok) await expect(unpack()).resolves.toBeDefined()
      else await expect(unpack()).rejects.toMatchObject({ name: 'UnsafePathError' })
    }
  })

  it('CAR archive read: 1 GiB', async () => {
    expect(MAX_CAR_BYTES).toBe(1024 * 1024 * 1024)
    const store = new MemoryBlockStore()
    const { cid } = await packDirectory(await samplePackage(await tempDir()), store)
    const { cids } = await walkPackageBlocks(cid, store)
    const car = await writeCar([cid], (async function * () { for (const c of cids) yield { cid: c, bytes: await store.get(c) } })())
    // at the edge, with the limit given
    expect((await readCar(car, car.byteLength)).blocks.size).toBe(cids.length)
    await expect(readCar(car, car.byteLength - 1)).rejects.toThrow(CarMalformedError)
    await expect(readCar(car, car.byteLength - 1)).rejects.toThrow(`more than the ${car.byteLength - 1}-byte limit`)
    // the default, at its real size, without allocating a GiB: the length is checked before
    // a byte is read, also by readBundle (verify, inspect, sign, publish, --install)
    const sized = (n: number): Uint8Array => ({ byteLength: n }) as unknown as Uint8Array
    await expect(readCar(sized(MAX_CAR_BYTES + 1))).rejects.toThrow(`more than the ${MAX_CAR_BYTES}-byte limit`)
    await expect(readBundle(sized(MAX_CAR_BYTES + 1))).rejects.toThrow(`more than the ${MAX_CAR_BYTES}-byte limit`)
    // exactly the limit passes the size check (and fails later, these are no CAR bytes)
    await expect(readCar(sized(MAX_CAR_BYTES))).rejects.not.toThrow(/limit/)
  })

  it('blocks in one package: 1,000,000', async () => {
    expect(MAX_PACKAGE_BLOCKS).toBe(1_000_000)
    const store = new MemoryBlockStore()
    const { cid } = await packDirectory(await samplePackage(await tempDir(), '1.0.0', {}, { 'a.txt': 'a', 'b/c.txt': 'c' }), store)
    const { cids } = await walkPackageBlocks(cid, store)
    expect(cids.length).toBeGreaterThan(3)
    expect((await walkPackageBlocks(cid, store, cids.length)).cids).toHaveLength(cids.length)
    await expect(walkPackageBlocks(cid, store, cids.length - 1)).rejects.toThrow(PackageDagError)
    await expect(walkPackageBlocks(cid, store, cids.length - 1)).rejects.toThrow(`more than ${cids.length - 1} blocks`)
  })

  it('entries (files and directories) in one package: 100,000', async () => {
    expect(MAX_PACKAGE_FILES).toBe(100_000)
    const root = await tempDir()
    const store = new MemoryBlockStore()
    // upgossip.json, server.js, lib/, lib/store.js, a.txt, b/, b/c.txt: 7 entries
    const { cid } = await packDirectory(await samplePackage(root, '1.0.0', {}, { 'a.txt': 'a', 'b/c.txt': 'c' }), store)
    expect(await listPackageFiles(cid, store, 7)).toHaveLength(5)
    expect((await readPackageManifest(cid, store, 7)).files).toHaveLength(5)
    expect((await unpackPackage(cid, store, path.join(root, 'at-limit'), 7)).files).toHaveLength(5)
    await expect(listPackageFiles(cid, store, 6)).rejects.toThrow(UnsafePathError)
    await expect(readPackageManifest(cid, store, 6)).rejects.toThrow('more than 6 entries')
    await expect(unpackPackage(cid, store, path.join(root, 'over'), 6)).rejects.toThrow('more than 6 entries')
    // nothing is left behind by the refused unpack
    expect((await fs.readdir(root)).filter(n => n.startsWith('over'))).toEqual([])
  })

  it('a status beat: 16384 bytes, refused past it before it is decoded', () => {
    const base: StatusBeat = { v: 1, seq: 1, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [] }
    // a key this build does not know pads the beat to an exact size (it is dropped once decoded)
    const padded = (size: number): Uint8Array => {
      const overhead = encodeBeat({ ...base, pad: 'x'.repeat(1000) } as unknown as StatusBeat).byteLength - 1000
      const bytes = encodeBeat({ ...base, pad: 'x'.repeat(size - overhead) } as unknown as StatusBeat)
      expect(bytes.byteLength).toBe(size)
      return bytes
    }
    expect(MAX_BEAT_BYTES).toBe(16 * 1024)
    expect(decodeBeat(padded(MAX_BEAT_BYTES))).toEqual(base)
    expect(() => decodeBeat(padded(MAX_BEAT_BYTES + 1))).toThrow(MalformedBeatError)
    expect(() => decodeBeat(padded(MAX_BEAT_BYTES + 1))).toThrow(`status beat of ${MAX_BEAT_BYTES + 1} bytes is over the ${MAX_BEAT_BYTES}-byte limit`)
  })

  it('revocations and rotations in a sync answer: 32 of each per app, 128 in all; releases fill the rest', () => {
    expect([SYNC_TRUST_FRAMES_PER_APP, SYNC_TRUST_FRAMES, MAX_SYNC_RELEASES]).toEqual([32, 128, 256])
    const frames = (app: string, kind: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${app}/${kind}/${i}`)
    const part = (app: string, n: { revocations: number, rotations: number, releases: number }): { revocations: string[], rotations: string[], releases: string[] } =>
      ({ revocations: frames(app, 'revocation', n.revocations), rotations: frames(app, 'rotation', n.rotations), releases: frames(app, 'release', n.releases) })
    // one app, at the per-app edge and one over: the newest 32 of each are kept, in order
    const at = syncAnswer([part('a', { revocations: 32, rotations: 32, releases: 1 })])
    expect(at).toEqual([...frames('a', 'revocation', 32), ...frames('a', 'rotation', 32), 'a/release/0'])
    const over = syncAnswer([part('a', { revocations: 33, rotations: 33, releases: 1 })])
    expect(over).toEqual([...frames('a', 'revocation', 33).slice(1), ...frames('a', 'rotation', 33).slice(1), 'a/release/0'])
    // four apps at 32 + 32 each: 256 trust frames, the newest 128 kept (the last two apps'); releases fill the rest, newest kept
    const apps = ['a', 'b', 'c', 'd']
    const many = syncAnswer(apps.map(app => part(app, { revocations: 32, rotations: 32, releases: 100 })))
    expect(many.filter(f => !f.includes('/release/'))).toEqual([...frames('c', 'revocation', 32), ...frames('c', 'rotation', 32), ...frames('d', 'revocation', 32), ...frames('d', 'rotation', 32)])
    expect(many).toHaveLength(MAX_SYNC_RELEASES)
    expect(many.slice(SYNC_TRUST_FRAMES)).toEqual([...frames('c', 'release', 100).slice(72), ...frames('d', 'release', 100)])
    // the same bounds given small: 2 per app, 3 in all, 4 frames
    const small = syncAnswer(apps.slice(0, 2).map(app => part(app, { revocations: 3, rotations: 0, releases: 3 })), { trustPerApp: 2, trust: 3, frames: 4 })
    expect(small).toEqual(['a/revocation/2', 'b/revocation/1', 'b/revocation/2', 'b/release/2'])
    // trust frames never leave room for less than nothing
    expect(syncAnswer([part('a', { revocations: 2, rotations: 2, releases: 2 })], { trustPerApp: 2, trust: 4, frames: 4 })).toHaveLength(4)
  })

  it('a releases-topic message: refused past its size before it is decoded', () => {
    expect(() => decodeReleasesTopicMessage(new Uint8Array(MAX_RELEASES_TOPIC_MESSAGE + 1))).toThrow(/bytes|limit|large/)
    try {
      decodeReleasesTopicMessage(new Uint8Array(MAX_RELEASES_TOPIC_MESSAGE + 1))
    } catch (err) {
      expect((err as Error).name).not.toBe('Error')
    }
  })

  it('peers in the network view: 4096, the stalest leaves first', () => {
    const view = new NetworkView()
    const beat = (seq: number): StatusBeat => ({ v: 1, seq, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [] })
    for (let i = 0; i < 4097; i++) view.update(`peer-${i}`, beat(1), i)
    expect(view.size).toBe(4096)
    expect(view.get('peer-0')).toBeUndefined()
    expect(view.get('peer-4096')).toBeDefined()
  })

  it('peers in the network view: a full view keeps the peers it is connected to, however stale, and drops the stalest other', () => {
    const connected = new Set(['honest'])
    const view = new NetworkView(4096, () => connected)
    const beat = (seq: number): StatusBeat => ({ v: 1, seq, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [] })
    view.update('honest', beat(1), 0)
    for (let i = 0; i < 4097; i++) view.update(`sybil-${i}`, beat(1), 1 + i)
    expect(view.size).toBe(4096)
    expect(view.get('honest')).toBeDefined()
    expect(view.get('sybil-0')).toBeUndefined()
    expect(view.get('sybil-1')).toBeUndefined()
    expect(view.get('sybil-2')).toBeDefined()
    // once no longer connected it is an entry like any other: the stalest, it goes first
    connected.clear()
    view.update('sybil-4097', beat(1), 5000)
    expect(view.get('honest')).toBeUndefined()
    expect(view.get('sybil-2')).toBeDefined()
  })

  it('the event log: 30 events of one type a minute, the rest counted and summarised; a switch\'s outcome is never folded', async () => {
    const file = path.join(await tempDir(), 'events.jsonl')
    let now = Date.parse('2026-11-27T12:00:00Z')
    const log = new EventLog(file, { clock: { now: () => now }, quiet: true })
    for (let i = 0; i < 40; i++) log.info('flood', `event ${i}`)
    log.info('other', 'another type is not held back')
    // a switch's outcome is never folded: history reads every one
    for (let i = 0; i < 40; i++) log.info('upgrade-committed', `commit ${i}`)
    now += 61_000
    log.info('flood', 'a minute later')
    await log.close()
    const lines = (await fs.readFile(file, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { type: string, message: string })
    expect(lines.filter(l => l.type === 'flood')).toHaveLength(31)
    expect(lines.some(l => l.type === 'other')).toBe(true)
    expect(lines.filter(l => l.type === 'upgrade-committed')).toHaveLength(40)
    expect(lines.at(-1)?.message).toMatch(/^a minute later \(10 similar "flood" events were suppressed/)
  })

  it('requests held during a switch: 1000, and 64 MiB in all', async () => {
    const host = new AppHost({ peerId: 'p', config: null, logFile: path.join(await tempDir(), 'app.log'), onRoute: async () => ({ self: true, version: 1 }), onSend: async () => null, onPeers: async () => [], log: () => {} } as unknown as ConstructorParameters<typeof AppHost>[0])
    host.hold()
    const held = Array.from({ length: 1000 }, async () => await host.request('x', {}, 1, 10).catch((err: Error) => err))
    await expect(host.request('x', {}, 1, 10)).rejects.toThrow(RequestHoldOverflowError)
    host.unhold()
    // nothing runs here: every held request ends with an error, none is lost
    expect((await Promise.all(held)).every(r => r instanceof Error)).toBe(true)
    host.hold()
    await expect(host.request('x', {}, 1, 64 * 1024 * 1024 + 1)).rejects.toThrow(RequestHoldOverflowError)
    host.unhold()
  })
})
