import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import type { BlockSource, PeerId } from '../../src/net/index.js'
import { UploadShare, fetchPackage } from '../../src/net/index.js'
import { packDirectory, walkPackageBlocks } from '../../src/package/index.js'
import { MemoryBlockStore } from '../../src/store/index.js'
import { samplePackage, tempDir } from '../helpers.js'

/** What one in-memory swarm did. */
export interface SwarmOutcome {
  packageBytes: number
  /** Block bytes the publisher sent. */
  seedSent: number
  /** Block bytes every fetcher received, in all. */
  received: number
  fetchers: number
  ms: number
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * One publisher and `fetchers` peers in memory, each connected to `degree` random others,
 * starting within `spreadMs` of each other (the announcement's spread): the real
 * `fetchPackage` on every fetcher, the real {@link UploadShare} on every server, a
 * one-way latency per message and an uplink per peer that sends one block at a time.
 */
export async function inMemorySwarm (opts: { fetchers: number, degree: number, fileBytes: number, latencyMs: number, blockMs: number, spreadMs: number }): Promise<SwarmOutcome> {
  const source = new MemoryBlockStore()
  const dir = await samplePackage(await tempDir(), '1.0.0', {}, { 'blob.bin': randomBytes(opts.fileBytes) })
  const { cid: root } = await packDirectory(dir, source)
  const { size } = await walkPackageBlocks(root, source)
  const names = ['seed', ...Array.from({ length: opts.fetchers }, (_, i) => `f${i}`)]
  const stores = new Map(names.map(n => [n, n === 'seed' ? source : new MemoryBlockStore()]))
  const links = new Map(names.map(n => [n, new Set<string>()]))
  for (const n of names) {
    while ((links.get(n)?.size ?? 0) < Math.min(opts.degree, names.length - 1)) {
      const other = names[Math.floor(Math.random() * names.length)] as string
      if (other === n) continue
      links.get(n)?.add(other)
      links.get(other)?.add(n)
    }
  }
  const started = Date.now()
  if (process.env.SWARM_DEBUG != null) console.log('links', [...links].map(([k, v]) => `${k}:${[...v].join(',')}`).join(' '))
  const uplinks = new Map(names.map(n => [n, Promise.resolve()]))
  const shares = new Map(names.map(n => [n, new UploadShare({ connected: p => links.get(n)?.has(p) === true })]))
  let seedSent = 0
  let received = 0
  const peer = (name: string): PeerId => ({ toString: () => name }) as unknown as PeerId
  const have = async (p: PeerId, cids: CID[]): Promise<boolean[]> => {
    await sleep(opts.latencyMs)
    const store = stores.get(p.toString()) as MemoryBlockStore
    const answer = await Promise.all(cids.map(async c => await store.has(c)))
    await sleep(opts.latencyMs)
    return answer
  }
  // every peer speaks blocks 1.0.0: asked to wait for a block, it answers at once
  const exchangeOf = (me: string): BlockSource => ({
    have,
    haveWait: async (p: PeerId, cids: CID[]) => ({ have: await have(p, cids), waited: false }),
    get: async (p: PeerId, cids: CID[], onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>) => {
      const from = p.toString()
      const store = stores.get(from) as MemoryBlockStore
      const share = shares.get(from) as UploadShare
      await sleep(opts.latencyMs)
      const missing: CID[] = []
      for (const cid of cids) {
        const bytes = await store.has(cid) ? await store.get(cid) : undefined
        if (bytes == null || share.leaveToOthers(cid.toString(), me, bytes.byteLength)) {
          if (from === 'seed' && process.env.SWARM_DEBUG != null && bytes != null) console.log(`${Date.now() - started} seed declines ${me} ${cid.toString().slice(-6)}`)
          missing.push(cid)
          continue
        }
        share.sent(cid.toString(), me, bytes.byteLength)
        // the sender's uplink carries one block at a time
        const turn = (uplinks.get(from) as Promise<void>).then(async () => { await sleep(opts.blockMs * bytes.byteLength / 262_144) })
        uplinks.set(from, turn)
        await turn
        await sleep(opts.latencyMs)
        if (from === 'seed') seedSent += bytes.byteLength
        if (from === 'seed' && process.env.SWARM_DEBUG != null && bytes.byteLength > 65536) console.log(`${Date.now() - started} seed → ${me} ${cid.toString().slice(-6)}`)
        received += bytes.byteLength
        await onBlock(cid, bytes)
      }
      return missing
    }
  })
  await Promise.all(names.slice(1).map(async name => {
    await sleep(Math.random() * opts.spreadMs)
    await fetchPackage({
      root,
      store: stores.get(name) as MemoryBlockStore,
      exchange: exchangeOf(name),
      sources: () => [...(links.get(name) ?? [])].map(peer),
      onProgress: () => {},
      log: () => {},
      signal: AbortSignal.timeout(120_000),
      // a fetch waits 8 refresh intervals (4 × idleMs) for the swarm before asking the publisher
      // again; at 40 ms a loaded machine stalled the loop that long and 3 runs in 12 failed
      idleMs: 120
    })
  }))
  return { packageBytes: size, seedSent, received, fetchers: opts.fetchers, ms: Date.now() - started }
}

describe('a swarm of fetching peers (in memory)', () => {
  it('takes most blocks from each other: the publisher sends each block about once, nothing is received twice', async () => {
    // three random meshes: the publisher's egress varies with who sits next to it
    const egress: number[] = []
    for (let i = 0; i < 3; i++) {
      const r = await inMemorySwarm({ fetchers: 9, degree: 3, fileBytes: 4 * 1024 * 1024, latencyMs: 2, blockMs: 4, spreadMs: 20 })
      expect(r.received).toBe(r.fetchers * r.packageBytes)
      egress.push(r.seedSent / r.packageBytes)
    }
    // an origin sends 9 copies; before this fetcher, 10 real daemons took 6 to 8 from the
    // publisher. The median is usually 1.0–1.4; a loaded machine's stalls (a CI run's other
    // tests) have pushed it to 1.63, so the bound is the quick bench's target, 2
    expect(egress.sort((a, b) => a - b)[1]).toBeLessThanOrEqual(2)
    expect(Math.max(...egress)).toBeLessThan(3)
  })

  it('a single fetcher takes everything from the publisher without detours', async () => {
    const r = await inMemorySwarm({ fetchers: 1, degree: 1, fileBytes: 2 * 1024 * 1024, latencyMs: 1, blockMs: 1, spreadMs: 0 })
    expect(r.seedSent).toBe(r.packageBytes)
  })
})

if (process.env.SWARM_MODEL != null) {
  describe('swarm model (SWARM_MODEL="fetchers,degree,MiB,latencyMs,blockMs,spreadMs,runs")', () => {
    it('runs', async () => {
      const [fetchers, degree, mb, latencyMs, blockMs, spreadMs, runs] = (process.env.SWARM_MODEL ?? '').split(',').map(x => Number(x))
      for (let i = 0; i < (runs ?? 1); i++) {
        const r = await inMemorySwarm({ fetchers: fetchers ?? 9, degree: degree ?? 3, fileBytes: (mb ?? 4) * 1024 * 1024, latencyMs: latencyMs ?? 2, blockMs: blockMs ?? 4, spreadMs: spreadMs ?? 20 })
        console.log(`egress ${(r.seedSent / r.packageBytes).toFixed(2)}× duplicates ${(r.received / (r.fetchers * r.packageBytes)).toFixed(3)} in ${r.ms} ms`)
      }
    }, 600_000)
  })
}
