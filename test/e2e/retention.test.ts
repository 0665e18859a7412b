/**
 * Retention on real daemons: after a run of releases the packages, states and blocks of
 * old releases are gone from both peers while the current and previous ones (and
 * `keepReleases` more) remain; a revoked release goes once nothing runs it; and a newcomer
 * still fetches the current release from a peer that collected.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { afterEach, describe, expect, it } from 'vitest'
import { walkPackageBlocks } from '../../src/package/index.js'
import { readBundle } from '../../src/release/index.js'
import { FsBlockStore } from '../../src/store/index.js'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

interface Built { version: string, file: string, id: string, blocks: CID[] }

/** A kv release whose package has a file of its own (a few blocks no other release shares). */
async function build (version: string): Promise<Built> {
  const own = new Uint8Array(300 * 1024).map((_, i) => (i * 31 + version.charCodeAt(0)) & 0xff)
  const files = { ...kvVersion(version, 'v1', { health: { readyWithin: '10s', stableFor: '1s' } }), 'own.bin': own }
  const { file, id } = await (net as TestNet).releaseFiles(files)
  const bundle = await readBundle(await fs.readFile(file))
  return { version, file, id, blocks: (await walkPackageBlocks(bundle.signed.record.package, bundle.blocks)).cids }
}

/** How many of `cids` the peer's block store holds (read by a store of its own, without the daemon's cache). */
async function heldBy (peer: Peer, cids: CID[]): Promise<number> {
  const store = new FsBlockStore(path.join(peer.dataDir, 'blocks'))
  let n = 0
  for (const cid of cids) if (await store.has(cid)) n++
  return n
}

async function dirs (peer: Peer, folder: 'packages' | 'state'): Promise<string[]> {
  return (await fs.readdir(path.join(peer.dataDir, folder))).filter(n => !n.startsWith('.')).sort()
}

describe('retention', () => {
  it('keeps current, previous and keepReleases more; collects older packages, states and blocks; a revoked release goes; a newcomer still fetches', async () => {
    net = await TestNet.create({ keepReleases: 1 })
    const releases: Built[] = []
    for (const v of ['1.0.0', '2.0.0', '3.0.0', '4.0.0', '5.0.0', '6.0.0']) releases.push(await build(v))
    const [v1, v2, v3, v4, v5, v6] = releases as [Built, Built, Built, Built, Built, Built]
    const unique = (r: Built): CID[] => r.blocks.filter(c => !releases.some(o => o !== r && o.blocks.some(x => x.equals(c))))
    for (const r of releases) expect(unique(r).length).toBeGreaterThan(0)

    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    for (const r of [v2, v3, v4, v5]) {
      expect((await runCli(['publish', r.file, '--data', a.dataDir])).code).toBe(0)
      for (const p of [a, b]) await p.waitVersion(r.version)
    }
    const ids = (rs: Built[]): string[] => rs.map(r => r.id).sort()
    for (const p of [a, b]) {
      // current 5, previous 4, and one more (keepReleases 1): 3; 1 and 2 are gone, package and blocks
      await waitFor(`${p.name} to collect 1.0.0 and 2.0.0`, async () => JSON.stringify(await dirs(p, 'packages')) === JSON.stringify(ids([v3, v4, v5])))
      expect(await dirs(p, 'state')).toEqual(ids([v4, v5]))
      expect(await heldBy(p, unique(v1))).toBe(0)
      expect(await heldBy(p, unique(v2))).toBe(0)
      for (const r of [v3, v4, v5]) expect(await heldBy(p, r.blocks)).toBe(r.blocks.length)
      expect(await p.metric('upgossip_retention_bytes_freed_total', { folder: 'blocks' })).toBeGreaterThan(0)
      expect(await p.metric('upgossip_disk_bytes', { folder: 'blocks' })).toBeGreaterThan(0)
      const events = await fs.readFile(path.join(p.dataDir, 'events.jsonl'), 'utf8')
      expect(events).toMatch(/"type":"retention".*"reason":"commit"/)
    }

    // 6.0.0 runs, is revoked, and both roll back to 5.0.0: nothing runs 6.0.0, so it goes
    expect((await runCli(['publish', v6.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b]) await p.waitVersion('6.0.0')
    const revoked = await runCli(['revoke', 'kv@6.0.0', '--key', net.keyFile, '--data', a.dataDir])
    expect(revoked.code, revoked.stderr).toBe(0)
    for (const p of [a, b]) await p.waitVersion('5.0.0')
    for (const p of [a, b]) {
      await waitFor(`${p.name} to collect the revoked 6.0.0`, async () => !(await dirs(p, 'packages')).includes(v6.id) && await heldBy(p, unique(v6)) === 0)
      expect(await dirs(p, 'packages')).toContain(v5.id)
      expect(await heldBy(p, v5.blocks)).toBe(v5.blocks.length)
    }

    // a newcomer fetches 5.0.0 from a alone, which collected what it no longer needs
    await b.stop()
    const c = await net.start('c', ['--app', 'kv', '--bootstrap', a.addr])
    await c.waitVersion('5.0.0')
    expect(await heldBy(c, v5.blocks)).toBe(v5.blocks.length)
  }, 240_000)
})
