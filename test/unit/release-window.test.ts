/**
 * The release book holds a bounded window of signed releases in memory, whatever the
 * number it knows: the others are read from disk on demand, a restart reads only the
 * window, and settled records past the bound leave the disk (their revocations stay).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { CID } from 'multiformats/cid'
import { beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.js'
import { ReleaseBook, TrustPolicy, generatePublisherKey, releaseId, signReleaseId, signRevocation } from '../../src/release/index.js'
import type { PublisherKey, ReleaseRecord, SignedRelease } from '../../src/release/index.js'
import { tempDir } from '../helpers.js'

const NOW = Date.parse('2026-11-27T10:00:00Z')
const clock = fixedClock(NOW)
const PKG = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
const COUNT = 1000
const WINDOW = { newestPerApp: 8, recent: 16 }
/** The most a window can hold here: the newest, the recent, and the running release (pinned). */
const MOST = WINDOW.newestPerApp + WINDOW.recent + 1

let alice: PublisherKey
let releases: Array<{ id: string, signed: SignedRelease }>

async function signed (version: string): Promise<{ id: string, signed: SignedRelease }> {
  const record: ReleaseRecord = {
    app: 'kv',
    version,
    previous: null,
    package: PKG,
    size: 1000,
    manifest: { app: 'kv', version, main: 'server.js', protocol: 1, simulation: { past: 'so/past.js' } },
    issued: new Date(NOW).toISOString(),
    expires: new Date(NOW + 86_400_000).toISOString()
  }
  const id = await releaseId(record)
  return { id: id.toString(), signed: { record, signatures: [await signReleaseId(id, alice)] } }
}

function bookAt (dir: string, running: { floor?: string, pinned?: string[] }, recordsPerApp = 10_000): ReleaseBook {
  const trust = TrustPolicy.parse({ apps: { kv: { publishers: [alice.id], threshold: 1 } } })
  return new ReleaseBook({ dir, trust: () => trust, floor: () => running.floor, pinned: () => running.pinned ?? [], clock, window: { ...WINDOW, recordsPerApp } })
}

/**
 * A book that admitted the first `count` releases, each superseded by the next, the last
 * one running; with `running.floor` set, the floor follows the version that runs.
 */
async function churned (dir: string, running: { floor?: string, pinned?: string[] }, recordsPerApp?: number, count = COUNT): Promise<ReleaseBook> {
  const book = bookAt(dir, running, recordsPerApp)
  await book.load()
  for (const [i, r] of releases.slice(0, count).entries()) {
    expect((await book.consider(r.signed)).kind).toBe('new')
    await book.setState(r.id, 'active')
    if (running.floor != null) running.floor = r.signed.record.version
    const before = releases[i - 1]
    if (before != null) await book.setState(before.id, 'superseded')
    expect(book.inMemory).toBeLessThanOrEqual(MOST)
  }
  return book
}

beforeAll(async () => {
  alice = await generatePublisherKey()
  releases = []
  for (let i = 1; i <= COUNT; i++) releases.push(await signed(`1.${i}.0`))
}, 60_000)

describe('the release book window', () => {
  /** The book of the first test, copied by the second (1000 admissions take a while: every write is fsynced). */
  let churnedDir = ''

  it('holds at most the window in memory with 1000 releases, and still reads and serves the old ones', async () => {
    churnedDir = await tempDir()
    const book = await churned(churnedDir, {})
    const last = releases.at(-1) as { id: string }
    expect(book.inMemory).toBeLessThanOrEqual(MOST)
    expect(book.summaries()).toHaveLength(COUNT)
    expect(book.heads()).toEqual({ kv: last.id })
    // the oldest is known and readable, not held
    const first = releases[0] as { id: string, signed: SignedRelease }
    expect(book.get(first.id)).toBeUndefined()
    expect(book.has(first.id)).toBe(true)
    expect(book.summary(first.id)).toMatchObject({ version: '1.1.0', state: 'superseded', simulation: true, protocol: 1 })
    expect((await book.read(first.id))?.signed.record.version).toBe('1.1.0')
    // read lately, it stays a while
    expect(book.get(first.id)?.state).toBe('superseded')
    // a sync asker far behind gets the releases it asks for, read from disk, and no more than asked
    const answer = await book.atOrAbove('kv', '1.500.0', 256)
    expect(answer).toHaveLength(256)
    expect(answer[0]?.signed.record.version).toBe('1.745.0')
    expect(book.inMemory).toBeLessThanOrEqual(MOST)
    // an old one offered again is known, not admitted twice
    expect((await book.consider(first.signed)).kind).toBe('known')
  }, 120_000)

  it('reads only the window on a restart', async () => {
    const dir = await tempDir()
    await fs.cp(churnedDir, dir, { recursive: true })
    // a damaged old record: a restart that read every record would report it
    const old = releases[10] as { id: string }
    await fs.writeFile(path.join(dir, `${old.id}.cbor`), 'not cbor')
    const again = bookAt(dir, {})
    expect(await again.load()).toEqual([])
    expect(again.inMemory).toBeLessThanOrEqual(MOST)
    expect(again.summaries()).toHaveLength(COUNT)
    expect(again.get((releases.at(-1) as { id: string }).id)?.state).toBe('active')
    // on demand, the damage shows: nothing is returned for it
    expect(await again.read(old.id)).toBeUndefined()
    expect((await again.read((releases[20] as { id: string }).id))?.state).toBe('superseded')
  }, 120_000)

  it('removes settled records past the bound below the running version, keeps the pinned one, and a revoked one stays refused', async () => {
    const dir = await tempDir()
    const last = releases[199] as { id: string }
    const previous = releases[5] as { id: string, signed: SignedRelease }
    const running = { floor: '1.0.0', pinned: [last.id, previous.id] }
    const book = await churned(dir, running, 64, 200)
    const revoked = releases[2] as { id: string, signed: SignedRelease }
    const revocation = await signRevocation({ app: 'kv', release: CID.parse(revoked.id), issued: new Date(NOW).toISOString(), reason: 'bad' }, [alice])
    await book.revoke(revocation)
    const files = (await fs.readdir(dir)).filter(n => n.endsWith('.cbor'))
    // the newest 64 and the pinned previous one (the revoked one went with the rest)
    expect(files).toHaveLength(65)
    expect(book.summaries()).toHaveLength(65)
    expect(book.has(previous.id)).toBe(true)
    expect(book.has((releases[100] as { id: string }).id)).toBe(false)
    expect(await fs.readdir(path.join(dir, 'revocations'))).toEqual([`${revoked.id}.cbor`])
    expect((await book.consider(revoked.signed)).kind).toBe('ignored')
    // a restart knows the same
    const again = bookAt(dir, running, 64)
    expect(await again.load()).toEqual([])
    expect(again.summaries()).toHaveLength(65)
    expect(again.isRevoked(revoked.id)).toBe(true)
  }, 120_000)

  it('reads a state file written before the window (no summary) from its record once, and writes the summary', async () => {
    const dir = await tempDir()
    const r = releases[0] as { id: string, signed: SignedRelease }
    const book = bookAt(dir, {})
    await book.load()
    await book.consider(r.signed)
    await fs.writeFile(path.join(dir, `${r.id}.json`), JSON.stringify({ state: 'superseded', admitted: new Date(NOW).toISOString() }))
    const again = bookAt(dir, {})
    expect(await again.load()).toEqual([])
    expect(again.summary(r.id)).toMatchObject({ app: 'kv', version: '1.1.0', state: 'superseded', size: 1000, signers: 1 })
    expect(JSON.parse(await fs.readFile(path.join(dir, `${r.id}.json`), 'utf8'))).toMatchObject({ app: 'kv', version: '1.1.0' })
  })
})
