/**
 * A full disk, on a real file system made for the test: peer b's data directory is a
 * small tmpfs (needs root and `mount`; skipped with a message otherwise, a failure in CI), filled with a
 * filler file to leave as much room as each case wants. Peer a, on the ordinary disk,
 * holds every release and never upgrades (its policy waits for an approval nobody gives).
 *
 * - a fetch that runs out of space pauses with `DiskFullError`, keeps the blocks it
 *   holds, leaves the running version serving, and completes once space is freed;
 * - a transform that runs out of space, and one that fits but leaves no space for the
 *   daemon's own bookkeeping: the upgrade rolls back and the old version serves its state.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { mkdtempSync, rmdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { capable } from './support/capabilities.js'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

const TMPFS_SIZE = '16m'

/** Root, and a tmpfs can really be mounted here (not in every container). */
function canMountTmpfs (): string | undefined {
  if (process.getuid?.() !== 0) return 'it needs root to mount a small tmpfs'
  const dir = mkdtempSync(path.join(os.tmpdir(), 'upgossip-mount-probe-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' })
    execFileSync('umount', [dir], { stdio: 'ignore' })
    return undefined
  } catch (err) {
    return `mounting a tmpfs failed (${(err as Error).message.split('\n')[0] ?? ''})`
  } finally {
    rmdirSync(dir)
  }
}

const capableHere = capable('full-disk.test.ts', canMountTmpfs())

let net: TestNet | undefined
let mounted: string | undefined
let a: Peer
let b: Peer

afterAll(async () => {
  for (const p of net?.peers ?? []) await p.stop()
  if (mounted != null) {
    try {
      execFileSync('umount', [mounted])
    } catch {
      // something still holds a file there: detach it now, it goes when released
      execFileSync('umount', ['-l', mounted])
    }
  }
  await net?.close()
})

/** Leave `bytes` free on b's file system (a filler file takes the rest). */
async function leaveFree (bytes: number): Promise<void> {
  const filler = path.join(b.dataDir, 'filler')
  await fs.rm(filler, { force: true })
  const s = await fs.statfs(b.dataDir)
  await fs.writeFile(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - bytes)))
}

async function freeSpace (): Promise<void> {
  await fs.rm(path.join(b.dataDir, 'filler'), { force: true })
}

async function release (id: string): Promise<{ state: string, reason?: string, have: number, size: number } | undefined> {
  return (await b.status()).releases.find(r => r.id === id)
}

/** Files a switch or a fetch leaves behind when it does not clean up. */
async function leftovers (): Promise<string[]> {
  const out = execFileSync('find', [b.dataDir, '-name', '.*.tmp', '-o', '-name', '*.tmp-*', '-o', '-name', '.snapshot-*', '-o', '-name', '*.unpacking-*']).toString()
  return out.split('\n').filter(l => l !== '')
}

/** An `up` transform that carries store.json over, then writes `index.bin` until the disk is full (at most `max` bytes). */
function greedyUp (max: number, failOnFull: boolean): string {
  return `import fs from 'node:fs/promises'
import path from 'node:path'
export default async function up ({ from, to, log }) {
  await fs.copyFile(path.join(from, 'store.json'), path.join(to, 'store.json'))
  const h = await fs.open(path.join(to, 'index.bin'), 'w')
  const chunk = Buffer.alloc(64 * 1024, 7)
  let written = 0
  try {
    while (written < ${max}) { await h.write(chunk); written += chunk.length }
  } catch (err) {
    if (${String(failOnFull)} || err.code !== 'ENOSPC') throw err
    // the page of the daemon's record of this transform's process group (DATA/transform.pgid)
    // is freed as the transform ends: taken here, so that none is left for the daemon at all
    await fs.rm(path.join(to, '..', '..', 'transform.pgid'), { force: true })
    await h.write(chunk).catch(() => {})
    log('index.bin stopped at', written, 'bytes: the disk is full')
  } finally {
    await h.close()
  }
}
`
}

describe.skipIf(!capableHere)('a full disk', () => {
  beforeAll(async () => {
    net = await TestNet.create({ transformLimit: '10s', fetchRetry: '1s' })
    const dataB = path.join(net.root, 'b')
    await fs.mkdir(dataB)
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', dataB])
    mounted = dataB
    const policy = path.join(net.root, 'never.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'approve' }] }))
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    a = await net.start('a', ['--install', v1.file, '--policy', policy])
    b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    await b.waitVersion('1.0.0')
    expect(await b.call({ op: 'put', key: 'k', value: 1 })).toMatchObject({ ok: true })
  })

  it('during a fetch: it pauses with DiskFullError, keeps its blocks and serves its version; freed space lets it complete', async () => {
    const v2 = await (net as TestNet).releaseFiles({ ...kvVersion('2.0.0', 'v2'), 'blob.bin': randomBytes(3 * 1024 * 1024) })
    await leaveFree(1024 * 1024)
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    const paused = await waitFor('the fetch to pause', async () => {
      const r = await release(v2.id)
      return r?.state === 'fetching' && /DiskFullError/.test(r.reason ?? '') ? r : undefined
    })
    expect(paused.reason).toMatch(/no space left on device/)
    expect(paused.have).toBeGreaterThan(0)
    expect(paused.have).toBeLessThan(paused.size)
    expect(b.log).toMatch(/WARN kv@2\.0\.0: the disk is full \(no space left on device for block .*\); \d+ of \d+ bytes held, kept; the fetch is paused/)
    // not blamed on the peer that served the blocks, and no half-written block left behind
    expect(b.log).not.toMatch(/fetching from \S+ failed/)
    expect(await leftovers()).toEqual([])
    expect(await b.status()).toMatchObject({ version: '1.0.0', state: 'running' })
    expect(await b.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '1.0.0' })
    // a publish to the full peer is refused with the condition named
    const publish = await runCli(['publish', v2.file, '--data', b.dataDir])
    expect(publish.code).toBe(1)
    expect(publish.stderr).toMatch(/DiskFullError/)

    await freeSpace()
    await b.waitVersion('2.0.0', 30_000)
    expect(await b.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '2.0.0' })
    expect((await release(v2.id))?.reason).toBeUndefined()
    // the event log kept recording after the disk was full
    const history = JSON.parse((await runCli(['history', '--data', b.dataDir, '--json'])).stdout) as Array<{ type: string, to?: string }>
    expect(history.some(e => e.type === 'upgrade-committed' && e.to === v2.id)).toBe(true)
  })

  it('during a transform that runs out of space: the upgrade rolls back, 2.0.0 serves its state, the event says ENOSPC', async () => {
    const v3 = await (net as TestNet).releaseFiles({ ...kvVersion('3.0.0', 'v2'), 'migrate/up.js': greedyUp(32 * 1024 * 1024, true) })
    await leaveFree(1024 * 1024)
    expect((await runCli(['publish', v3.file, '--data', a.dataDir])).code).toBe(0)
    const failed = await waitFor('3.0.0 to fail', async () => {
      const r = await release(v3.id)
      return r?.state === 'failed' ? r : undefined
    })
    expect(failed.reason).toMatch(/failed at transform: transform 2\.0\.0 → 3\.0\.0 failed: Error: ENOSPC: no space left on device/)
    expect(await b.status()).toMatchObject({ version: '2.0.0', state: 'running' })
    expect(await b.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '2.0.0' })
    // the old version can still write: the transform's output is gone
    expect(await b.call({ op: 'put', key: 'k2', value: 2 })).toMatchObject({ ok: true })
    expect(await leftovers()).toEqual([])
  })

  it('after a transform that fits but leaves no space: the daemon cannot record the switch, rolls back, and 2.0.0 serves its state', async () => {
    const v4 = await (net as TestNet).releaseFiles({ ...kvVersion('4.0.0', 'v2'), 'migrate/up.js': greedyUp(32 * 1024 * 1024, false) })
    await leaveFree(2 * 1024 * 1024)
    expect((await runCli(['publish', v4.file, '--data', a.dataDir])).code).toBe(0)
    const failed = await waitFor('4.0.0 to fail', async () => {
      const r = await release(v4.id)
      return r?.state === 'failed' ? r : undefined
    })
    expect(failed.reason).toMatch(/ENOSPC/)
    expect(await b.status()).toMatchObject({ version: '2.0.0', state: 'running' })
    expect(await b.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '2.0.0' })
    expect(await b.call({ op: 'get', key: 'k2' })).toEqual({ value: 2, version: '2.0.0' })
    expect(await b.call({ op: 'put', key: 'k3', value: 3 })).toMatchObject({ ok: true })
    expect(await leftovers()).toEqual([])
    await freeSpace()
  })
})
