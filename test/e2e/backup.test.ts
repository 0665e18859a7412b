/**
 * Backup and restore of a data directory, with real daemons: a backup of a running peer
 * (switching paused for the copy) restored into a fresh directory runs as the same peer,
 * version and app state; a restore onto a directory locked by another host needs
 * --take-over; a copied directory's stale control.json is never trusted; truncated and
 * hostile archives are refused with nothing left behind.
 */
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import zlib from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readArchive } from '../../src/store/index.js'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet
let a: Peer
/** The backup of `a`, taken while it ran. */
let archive: string
let backedUp: Record<string, unknown>

async function entries (dir: string): Promise<string[]> {
  return await fs.readdir(dir).catch(() => [])
}

async function events (dataDir: string): Promise<Array<{ type: string, message: string }>> {
  return (await fs.readFile(path.join(dataDir, 'events.jsonl'), 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { type: string, message: string })
}

beforeAll(async () => {
  net = await TestNet.create()
  const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
  a = await net.start('a', ['--install', v1.file])
  await a.waitVersion('1.0.0')
  expect(await a.call({ op: 'put', key: 'colour', value: 'teal' })).toMatchObject({ ok: true })
  archive = path.join(net.root, 'a.tar.gz')
  const run = await runCli(['backup', '--data', a.dataDir, '--out', archive, '--json'])
  expect(run.stderr).toContain('a daemon runs on')
  expect(run.code).toBe(0)
  backedUp = JSON.parse(run.stdout) as Record<string, unknown>
  await a.stop()
})

afterAll(async () => {
  await net?.close()
})

describe('backup and restore', () => {
  it('a backup of a running daemon, restored into a fresh directory, runs as the same peer, version and app state', async () => {
    expect(backedUp).toMatchObject({ out: archive, data: a.dataDir, peerId: a.peerId, app: 'kv', version: '1.0.0', daemon: 'running' })
    expect(backedUp.files).toBeGreaterThan(5)
    expect(typeof backedUp.pausedMs).toBe('number')
    expect((await fs.stat(archive)).mode & 0o777).toBe(0o600)
    // the daemon paused switching for the copy, and said so
    expect((await events(a.dataDir)).map(e => e.type)).toEqual(expect.arrayContaining(['backup-began', 'backup-ended']))
    // what belongs to the running process is not in it
    const names: string[] = []
    await readArchive(createReadStream(archive), async entry => { names.push(entry.path) })
    expect(names).toContain('peer.key')
    expect(names.filter(n => ['lock', 'control.json'].includes(n))).toEqual([])

    const target = path.join(net.root, 'b')
    const restored = await runCli(['restore', archive, '--data', target, '--json'])
    expect(restored.code, restored.stderr).toBe(0)
    expect(JSON.parse(restored.stdout)).toMatchObject({ data: target, peerId: a.peerId, app: 'kv', version: '1.0.0', files: backedUp.files, bytes: backedUp.bytes })
    expect(restored.stderr).toContain('never run both')
    expect((await fs.stat(target)).mode & 0o777).toBe(0o700)
    expect((await fs.stat(path.join(target, 'node.json'))).mode & 0o777).toBe(0o600)
    expect(await entries(target)).not.toContain('lock')

    const b = await net.start('b')
    expect(b.peerId).toBe(a.peerId)
    await b.waitVersion('1.0.0')
    expect(await b.call({ op: 'get', key: 'colour' })).toMatchObject({ value: 'teal', version: '1.0.0' })

    // a plain copy of b's directory while it runs carries b's lock and control.json: never trusted
    const copy = path.join(net.root, 'b-copy')
    await fs.cp(b.dataDir, copy, { recursive: true })
    const status = await runCli(['status', '--data', copy])
    expect(status.code).toBe(1)
    expect(status.stderr).toContain(`no daemon runs on ${copy} (control.json is stale: it was copied in with the directory`)
    expect(status.stderr).toContain('[DaemonUnreachableError]')
    // b's own directory is still b's
    expect((await runCli(['status', '--data', b.dataDir, '--json'])).code).toBe(0)
    await b.stop()
  })

  it('while a backup holds switching, a staged release waits and a rollback is refused; the switch goes on when it ends', async () => {
    const target = path.join(net.root, 'c')
    expect((await runCli(['restore', '--in', archive, '--data', target])).code).toBe(0)
    const c = await net.start('c')
    await c.waitVersion('1.0.0')
    const begun = await (await c.api('/backup/begin', { method: 'POST' })).json() as { lease: string, expires: string }
    expect(begun.lease).toMatch(/^[0-9a-f]{32}$/)
    const second = await runCli(['backup', '--data', c.dataDir, '--out', path.join(net.root, 'c2.tar.gz')])
    expect(second.code).toBe(1)
    expect(second.stderr).toContain('[BackupInProgressError]')
    await expect(fs.stat(path.join(net.root, 'c2.tar.gz'))).rejects.toThrow(/ENOENT/)
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { upgrades: '^1.0.0' }))
    expect((await runCli(['publish', v2.file, '--data', c.dataDir])).code).toBe(0)
    await c.waitStaged(v2.id)
    const rollback = await runCli(['rollback', '--data', c.dataDir])
    expect(rollback.stderr).toMatch(/a backup of this peer is being taken.*\[RolloutRefusedError\]/)
    // an immediate schedule, held back for as long as the backup lasts
    await new Promise(resolve => setTimeout(resolve, 3000))
    expect((await c.status()).version).toBe('1.0.0')
    const ended = await c.api('/backup/end', { method: 'POST', body: JSON.stringify({ lease: begun.lease }), headers: { 'content-type': 'application/json' } })
    expect(ended.status).toBe(200)
    await c.waitVersion('2.0.0')
    expect(await c.call({ op: 'get', key: 'colour' })).toMatchObject({ value: 'teal', version: '2.0.0' })
    // a lease that is over is named as such
    const late = await c.api('/backup/renew', { method: 'POST', body: JSON.stringify({ lease: begun.lease }), headers: { 'content-type': 'application/json' } })
    expect(late.status).toBe(422)
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe('BackupLeaseError')
    await c.stop()
  })

  it('a directory locked by another host: restore and daemon refuse it, naming --take-over, and take it over with it', async () => {
    const target = path.join(net.root, 'foreign')
    await fs.mkdir(target)
    const foreign = JSON.stringify({ pid: 17042, host: 'old-vm', since: '2026-01-01T00:00:00.000Z', dir: '64768:1234' })
    await fs.writeFile(path.join(target, 'lock'), foreign)
    const refused = await runCli(['restore', archive, '--data', target])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`data directory ${target} is locked by process 17042 on old-vm since 2026-01-01T00:00:00.000Z; if old-vm no longer runs a daemon on it (the directory was copied, moved or restored from there), use --take-over [DataDirLockedError]`)
    expect(await entries(target)).toEqual(['lock'])
    const taken = await runCli(['restore', archive, '--data', target, '--take-over'])
    expect(taken.code, taken.stderr).toBe(0)
    expect(taken.stderr).toContain(`took over the lock of ${target} from process 17042 on old-vm`)
    expect(await entries(target)).not.toContain('lock')

    // the same for a daemon on a directory that came with another host's lock
    await fs.writeFile(path.join(target, 'lock'), foreign)
    const daemon = await runCli(['daemon', '--data', target, '--listen', '/ip4/127.0.0.1/tcp/0'], {}, 30_000)
    expect(daemon.code).toBe(1)
    expect(daemon.stderr).toContain('use --take-over [DataDirLockedError]')
    const d = await net.start('foreign', ['--take-over'])
    expect(d.peerId).toBe(a.peerId)
    await waitFor('the take-over to be logged', async () => (await events(target)).find(e => e.type === 'lock-taken-over'))
    expect(d.log).toContain(`took over the lock of ${target} from process 17042 on old-vm since 2026-01-01T00:00:00.000Z (--take-over)`)
    await d.stop()
  })

  it('a stopped daemon\'s directory is backed up under its lock; bad targets and bad archives are refused by name, leaving nothing behind', async () => {
    const offline = path.join(net.root, 'offline.tar.gz')
    const run = await runCli(['backup', '--data', a.dataDir, '--out', offline, '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ daemon: 'stopped', peerId: a.peerId, version: '1.0.0' })
    expect(await entries(a.dataDir)).not.toContain('lock')
    const again = await runCli(['backup', '--data', a.dataDir, '--out', offline])
    expect(again.stderr).toContain('exists; a backup never replaces a file: choose another name or remove it [ArchiveExistsError]')
    const nothing = await runCli(['backup', '--data', path.join(net.root, 'nowhere'), '--out', path.join(net.root, 'x.tar.gz')])
    expect(nothing.stderr).toContain('[NotADataDirError]')
    await expect(fs.stat(path.join(net.root, 'nowhere'))).rejects.toThrow(/ENOENT/)

    // into a directory in use
    const used = await runCli(['restore', archive, '--data', a.dataDir])
    expect(used.code).toBe(1)
    expect(used.stderr).toContain('[RestoreTargetNotEmptyError]')

    // cut short: refused, and the directory it created is gone again
    const bytes = await fs.readFile(archive)
    const truncated = path.join(net.root, 'truncated.tar.gz')
    await fs.writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)))
    const cut = await runCli(['restore', truncated, '--data', path.join(net.root, 'cut')])
    expect(cut.code).toBe(1)
    expect(cut.stderr).toMatch(/cut short.*\[ArchiveTruncatedError\]/)
    await expect(fs.stat(path.join(net.root, 'cut'))).rejects.toThrow(/ENOENT/)

    // a "../" entry after a harmless one: refused before it is written, and the harmless one removed
    const header = (name: string, size: number): Buffer => {
      const h = Buffer.alloc(512)
      h.write(name, 0)
      h.write('0000644\0', 100)
      h.write(size.toString(8).padStart(11, '0') + '\0', 124)
      h.write('00000000000\0', 136)
      h.write('        ', 148)
      h.write('0', 156)
      h.write('ustar\x0000', 257)
      let sum = 0
      for (const b of h) sum += b
      h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
      return h
    }
    const file = (name: string, body: string): Buffer[] => [header(name, body.length), Buffer.from(body), Buffer.alloc((512 - body.length % 512) % 512)]
    const manifest = JSON.stringify({ format: 1, upgossip: '0.1.0', created: '2026-01-01T00:00:00Z', peerId: null, app: null, version: null, daemon: 'stopped' })
    const hostile = path.join(net.root, 'hostile.tar.gz')
    await fs.writeFile(hostile, zlib.gzipSync(Buffer.concat([...file('upgossip-backup.json', manifest), ...file('node.json', '{}'), ...file('../evil', 'owned'), Buffer.alloc(1024)])))
    const evil = await runCli(['restore', hostile, '--data', path.join(net.root, 'h')])
    expect(evil.code).toBe(1)
    expect(evil.stderr).toContain('the archive has an entry "../evil" whose path is unsafe (it climbs out with "..")')
    expect(evil.stderr).toContain('[ArchivePathUnsafeError]')
    await expect(fs.stat(path.join(net.root, 'evil'))).rejects.toThrow(/ENOENT/)
    await expect(fs.stat(path.join(net.root, 'h'))).rejects.toThrow(/ENOENT/)
  })
})
