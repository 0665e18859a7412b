import { execFileSync } from 'node:child_process'
import { createReadStream, existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import zlib from 'node:zlib'
import { describe, expect, it } from 'vitest'
import {
  ArchiveCorruptError, ArchiveEntryUnsupportedError, ArchiveExistsError, ArchivePathUnsafeError, ArchiveTruncatedError, ArchiveWriter,
  BACKUP_END, BACKUP_MANIFEST, NotABackupError, checkArchivePath, readArchive, restoreBackup, writeBackup
} from '../../src/store/index.js'
import type { ArchiveEntry } from '../../src/store/index.js'
import { tempDir } from '../helpers.js'

/** A raw ustar header, built by hand: what a hostile or foreign archive may hold. */
function rawHeader (name: string, type: string, size: number): Buffer {
  const h = Buffer.alloc(512)
  h.write(name, 0, 100, 'utf8')
  h.write('0000644\0', 100)
  h.write('0000000\0', 108)
  h.write('0000000\0', 116)
  h.write(size.toString(8).padStart(11, '0') + '\0', 124)
  h.write('00000000000\0', 136)
  h.write('        ', 148)
  h.write(type, 156)
  h.write('ustar\x0000', 257)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  return h
}

/** A gzip tar of raw entries. */
function rawArchive (entries: Array<{ name: string, type?: string, body?: string }>): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '')
    parts.push(rawHeader(e.name, e.type ?? '0', body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return zlib.gzipSync(Buffer.concat(parts))
}

async function readAll (file: string): Promise<Array<ArchiveEntry & { text: string, bytes: Buffer }>> {
  const out: Array<ArchiveEntry & { text: string, bytes: Buffer }> = []
  await readArchive(createReadStream(file), async (entry, body) => {
    const chunks: Buffer[] = []
    for await (const c of body) chunks.push(c)
    const bytes = Buffer.concat(chunks)
    out.push({ ...entry, bytes, text: bytes.toString('utf8') })
  })
  return out
}

async function readRaw (bytes: Buffer): Promise<void> {
  await readArchive([bytes], async () => {})
}

describe('archive writer and reader', () => {
  it('reads back what it wrote: files, directories, a path over 100 bytes, a name not in ASCII, an empty file; system tar lists it', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'a.tar.gz')
    const long = `packages/${'x'.repeat(60)}/${'y'.repeat(60)}/server.js`
    const out = await ArchiveWriter.create(file)
    await out.addDirectory('state', 0o755, 1_700_000_000)
    await out.addBytes('state/café.json', Buffer.from('{"a":1}'))
    await out.addBytes(long, Buffer.from('export {}\n'), 0o644)
    await out.addBytes('empty', new Uint8Array(0))
    await out.addFile('big', 0o600, 0, 70_000, [Buffer.alloc(30_000, 1), Buffer.alloc(50_000, 2)])
    const size = await out.finish()
    expect(size).toBe((await fs.stat(file)).size)
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600)
    expect(await fs.readdir(dir)).toEqual(['a.tar.gz'])
    const entries = await readAll(file)
    expect(entries.map(e => [e.path, e.type, e.size])).toEqual([['state', 'directory', 0], ['state/café.json', 'file', 7], [long, 'file', 10], ['empty', 'file', 0], ['big', 'file', 70_000]])
    expect(entries[1]?.text).toBe('{"a":1}')
    expect(entries[2]?.mode).toBe(0o644)
    // cut at the size given: 30 000 ones, then 40 000 twos
    expect(entries[4]?.bytes.equals(Buffer.concat([Buffer.alloc(30_000, 1), Buffer.alloc(40_000, 2)]))).toBe(true)
    if (existsSync('/usr/bin/tar')) {
      expect(execFileSync('/usr/bin/tar', ['-tzf', file], { encoding: 'utf8' }).split('\n').filter(Boolean)).toEqual(['state/', 'state/café.json', long, 'empty', 'big'])
    }
  })

  it('never replaces a file: ArchiveExistsError before writing, nothing left behind by an aborted archive', async () => {
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'taken.tar.gz'), 'mine')
    await expect(ArchiveWriter.create(path.join(dir, 'taken.tar.gz'))).rejects.toThrow(ArchiveExistsError)
    const out = await ArchiveWriter.create(path.join(dir, 'b.tar.gz'))
    await out.addBytes('x', Buffer.from('x'))
    await out.abort()
    expect(await fs.readdir(dir)).toEqual(['taken.tar.gz'])
    await expect(out.addDirectory('../up', 0o700, 0)).rejects.toThrow()
  })

  it('refuses unsafe paths by name', () => {
    for (const p of ['../evil', 'a/../../evil', '/etc/passwd', '', 'a//b', './a', 'a/./b', 'a\0b']) expect(() => checkArchivePath(p), p).toThrow(ArchivePathUnsafeError)
    expect(checkArchivePath('state/x/')).toBe('state/x')
  })

  it('a "../" entry, an absolute one, a link and a device are refused before the caller sees them', async () => {
    await expect(readRaw(rawArchive([{ name: '../evil', body: 'x' }]))).rejects.toThrow(ArchivePathUnsafeError)
    await expect(readRaw(rawArchive([{ name: '/tmp/evil', body: 'x' }]))).rejects.toThrow(ArchivePathUnsafeError)
    await expect(readRaw(rawArchive([{ name: 'link', type: '2' }]))).rejects.toThrow(ArchiveEntryUnsupportedError)
    await expect(readRaw(rawArchive([{ name: 'dev', type: '3' }]))).rejects.toThrow(ArchiveEntryUnsupportedError)
    // a pax path overrides the header's name: it is checked too
    const pax = '25 path=../../etc/passwd\n'
    await expect(readRaw(rawArchive([{ name: 'PaxHeader', type: 'x', body: pax }, { name: 'harmless', body: 'x' }]))).rejects.toThrow(ArchivePathUnsafeError)
  })

  it('a truncated archive is ArchiveTruncatedError; damaged bytes, or not gzip at all, ArchiveCorruptError', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'c.tar.gz')
    const out = await ArchiveWriter.create(file)
    for (let i = 0; i < 20; i++) await out.addBytes(`f${i}`, Buffer.from(`file ${i} `.repeat(500)))
    await out.finish()
    const bytes = await fs.readFile(file)
    await expect(readRaw(bytes.subarray(0, Math.floor(bytes.length / 2)))).rejects.toThrow(ArchiveTruncatedError)
    await expect(readRaw(bytes.subarray(0, bytes.length - 4))).rejects.toThrow(ArchiveTruncatedError)
    const damaged = Buffer.from(bytes)
    for (let i = 40; i < 60; i++) damaged[i] = (damaged[i] ?? 0) ^ 0xff
    await expect(readRaw(damaged)).rejects.toThrow(ArchiveCorruptError)
    await expect(readRaw(Buffer.from('this is not an archive'))).rejects.toThrow(ArchiveCorruptError)
    // gzip, but not tar inside
    await expect(readRaw(zlib.gzipSync(Buffer.alloc(600, 0x41)))).rejects.toThrow(ArchiveCorruptError)
  })
})

async function fakeDataDir (): Promise<string> {
  const root = path.join(await tempDir(), 'A')
  const w = async (rel: string, text: string, mode = 0o644): Promise<void> => {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true })
    await fs.writeFile(path.join(root, rel), text, { mode })
  }
  await w('peer.key', 'KEY', 0o600)
  await w('node.json', '{"app":"kv"}')
  await w('releases/r1.json', '{"state":"active"}')
  await w('blocks/AB/CIQ.data', 'block')
  await w('state/r1/data.json', '{"k":"v"}')
  await w('state/r1/data.json.tmp', 'the app\'s own temporary: kept')
  await w('events.jsonl', '{"type":"a"}\n{"type":"b"}\n{"type":"c, half-writ')
  // what belongs to the running process, and temporaries: left out
  await w('lock', '{"pid":1}')
  await w('control.json', '{}')
  await w('app.pgid', '1 2 3')
  await w('.node.json.0a1b2c.tmp', 'half')
  await w('blocks/AB/.CIQ2.data.tmp', 'half')
  await w('packages/r2.unpacking-0a1b2c3d/server.js', 'half')
  await w('state/r2.tmp-0a1b2c3d/x', 'half')
  await fs.symlink('/etc/passwd', path.join(root, 'state', 'r1', 'link'))
  return root
}

const manifest = { upgossip: '0.1.0', created: '2026-01-01T00:00:00.000Z', peerId: '12D3KooWtest', app: 'kv', version: '1.0.0', daemon: 'stopped' as const }

describe('backup and restore of a data directory', () => {
  it('copies records before content, leaves out the lock, control.json and temporaries, cuts a half-written log line; restores with tight modes', async () => {
    const root = await fakeDataDir()
    const out = path.join(path.dirname(root), 'A.tar.gz')
    const skipped: string[] = []
    const { totals } = await writeBackup({ root, out, manifest, onSkipped: rel => skipped.push(rel) })
    expect(skipped).toEqual(['state/r1/link'])
    const names = (await readAll(out)).map(e => e.path)
    expect(names).toEqual([BACKUP_MANIFEST, 'events.jsonl', 'node.json', 'peer.key', 'releases', 'releases/r1.json', 'state', 'state/r1', 'state/r1/data.json', 'state/r1/data.json.tmp', 'packages', 'blocks', 'blocks/AB', 'blocks/AB/CIQ.data', BACKUP_END])
    expect(totals.files).toBe(7)

    const target = path.join(path.dirname(root), 'B')
    await fs.mkdir(target)
    const restored = await restoreBackup({ archive: createReadStream(out), root: target })
    expect(restored.manifest).toEqual({ format: 1, ...manifest })
    expect(restored.totals).toEqual(totals)
    expect(await fs.readFile(path.join(target, 'events.jsonl'), 'utf8')).toBe('{"type":"a"}\n{"type":"b"}\n')
    expect(await fs.readFile(path.join(target, 'state/r1/data.json'), 'utf8')).toBe('{"k":"v"}')
    expect((await fs.readdir(target)).sort()).toEqual(['blocks', 'events.jsonl', 'node.json', 'packages', 'peer.key', 'releases', 'state'])
    expect((await fs.stat(path.join(target, 'node.json'))).mode & 0o777).toBe(0o600)
    expect((await fs.stat(path.join(target, 'state/r1'))).mode & 0o777).toBe(0o700)
  })

  it('refuses an archive that is not a backup, one cut short before its end record, and one that holds a lock', async () => {
    const target = await tempDir()
    const restore = async (bytes: Buffer): Promise<void> => { await restoreBackup({ archive: [bytes], root: target }) }
    await expect(restore(rawArchive([{ name: 'node.json', body: '{}' }]))).rejects.toThrow(NotABackupError)
    await expect(restore(rawArchive([{ name: BACKUP_MANIFEST, body: JSON.stringify({ format: 1 }) }, { name: 'x', body: 'x' }]))).rejects.toThrow(ArchiveTruncatedError)
    await fs.rm(path.join(target, 'x'))
    await expect(restore(rawArchive([{ name: BACKUP_MANIFEST, body: JSON.stringify({ format: 1 }) }, { name: 'lock', body: '{}' }]))).rejects.toThrow(ArchiveEntryUnsupportedError)
    await expect(restore(rawArchive([{ name: BACKUP_MANIFEST, body: JSON.stringify({ format: 1 }) }, { name: BACKUP_END, body: JSON.stringify({ files: 3, bytes: 9 }) }]))).rejects.toThrow(ArchiveCorruptError)
    await expect(restore(rawArchive([{ name: BACKUP_MANIFEST, body: JSON.stringify({ format: 99, upgossip: '9.0.0' }) }]))).rejects.toThrow(/format 99/)
  })
})
