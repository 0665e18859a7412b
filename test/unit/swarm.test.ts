import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { BlockChannel } from '../../src/net/block-session.js'
import { BlockSessions } from '../../src/net/block-sessions.js'
import type { NetMetrics, PeerId } from '../../src/net/index.js'
import { UploadShare, fetchPackage, noNetMetrics } from '../../src/net/index.js'
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
  /** Block streams opened, in all (blocks 2.0.0: one per peer pair that exchanged anything). */
  streams: number
  /** Messages sent, by kind, in all. */
  messages: Record<string, number>
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** One node's uplink: frames leave one at a time, each taking `blockMs` per 256 KiB. */
class Uplink {
  private free = 0
  constructor (private readonly blockMs: number) {}
  /** When a frame of `bytes` handed over now has left. */
  async send (bytes: number): Promise<void> {
    const now = Date.now()
    this.free = Math.max(now, this.free) + this.blockMs * bytes / 262_144
    if (this.free > now) await sleep(this.free - now)
  }
}

/** Two ends of an in-memory block stream: frames in order, after the sender's uplink and `latencyMs`. */
function pipe (a: Uplink, b: Uplink, latencyMs: number): [BlockChannel, BlockChannel] {
  const inbox = [[] as Uint8Array[], [] as Uint8Array[]]
  const readers: Array<(() => void) | undefined> = [undefined, undefined]
  const closed = [false, false]
  const lastAt = [Promise.resolve(), Promise.resolve()]
  const end = (me: 0 | 1, uplink: Uplink): BlockChannel => {
    const other = (1 - me) as 0 | 1
    return {
      write: async frames => {
        if (closed[me] === true) throw new Error('closed')
        const bytes = frames.reduce((n, f) => n + f.byteLength, 0)
        await uplink.send(bytes)
        // in order: each frame after the one sent before it
        const at = Date.now() + latencyMs
        const delivered = (lastAt[me] as Promise<void>).then(async () => {
          const wait = at - Date.now()
          if (wait > 0) await sleep(wait)
          // a frame given as pieces arrives as one array, as a stream reads it
          inbox[other]?.push(...frames.map(f => f.subarray()))
          readers[other]?.()
        })
        lastAt[me] = delivered
      },
      read: async () => {
        while (true) {
          const next = inbox[me]?.shift()
          if (next != null) return next
          if (closed[me] === true) return undefined
          await new Promise<void>(resolve => { readers[me] = resolve })
          readers[me] = undefined
        }
      },
      abort: () => {
        closed[0] = closed[1] = true
        readers[0]?.()
        readers[1]?.()
      }
    }
  }
  return [end(0, a), end(1, b)]
}

/** Metrics that count block bytes and messages. */
function countingMetrics (debug?: (n: number) => void): NetMetrics & { out: number, in: number, streams: number, messages: Map<string, number> } {
  const m = {
    ...noNetMetrics,
    out: 0,
    in: 0,
    streams: 0,
    messages: new Map<string, number>(),
    blockBytes: (direction: 'in' | 'out', n: number) => { if (direction === 'out') m.out += n; else m.in += n; if (debug != null && direction === 'out') debug(n) },
    blockStreams: (direction: 'in' | 'out') => { if (direction === 'out') m.streams++ },
    blockMessages: (kind: string, n: number) => { m.messages.set(kind, (m.messages.get(kind) ?? 0) + n) }
  }
  return m
}

/**
 * One publisher and `fetchers` peers in memory, each connected to `degree` random others,
 * starting within `spreadMs` of each other (the announcement's spread): the real
 * `fetchPackage` on every fetcher, and the real blocks 2.0.0 sessions ({@link BlockSessions},
 * with the {@link UploadShare} of every server) over in-memory streams with a one-way
 * latency per frame and an uplink per peer that sends one frame at a time.
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
  const uplinks = new Map(names.map(n => [n, new Uplink(opts.blockMs)]))
  const metrics = new Map(names.map(n => [n, countingMetrics(n === 'seed' && process.env.SWARM_DEBUG != null ? b => { console.log(`${Date.now() - started} seed sends ${b}`) } : undefined)]))
  const peer = (name: string): PeerId => ({ toString: () => name }) as unknown as PeerId
  const hubs = new Map<string, BlockSessions>()
  for (const n of names) {
    const store = stores.get(n) as MemoryBlockStore
    const share = new UploadShare({ connected: p => links.get(n)?.has(p) === true })
    if (n === 'seed' && process.env.SWARM_DEBUG != null) {
      const decide = share.leaveToOthers.bind(share)
      share.leaveToOthers = (key, to, bytes) => { const r = decide(key, to, bytes); if (bytes > 65536) console.log(`${Date.now() - started} seed ${r ? 'declines' : 'SENDS'} ${key.slice(-4)} to ${to}`); return r }
    }
    hubs.set(n, new BlockSessions({
      store,
      metrics: metrics.get(n) as NetMetrics,
      share,
      onError: (p, err) => { if (process.env.SWARM_DEBUG != null) console.log(`DBG ${n} session with ${p} ended: ${err.message}`) },
      open: async p => {
        const [mine, theirs] = pipe(uplinks.get(n) as Uplink, uplinks.get(p.toString()) as Uplink, opts.latencyMs)
        metrics.get(n)?.blockStreams('out')
        hubs.get(p.toString())?.accept(n, theirs)
        return mine
      }
    }))
  }
  try {
    await Promise.all(names.slice(1).map(async name => {
      await sleep(Math.random() * opts.spreadMs)
      const store = stores.get(name) as MemoryBlockStore
      const hub = hubs.get(name) as BlockSessions
      await fetchPackage({
        root,
        // a block stored here is announced, as the daemon's store does through the exchange
        store: { ...store, has: async c => await store.has(c), get: async c => await store.get(c), delete: async c => { await store.delete(c) }, holding: async fn => await fn(), put: async (c, b) => { await store.put(c, b); if (process.env.SWARM_DEBUG != null) console.log(`${Date.now() - started} ${name} stores ${c.toString().slice(-4)}`); hub.arrived(c); return c } },
        exchange: hub,
        sources: () => [...(links.get(name) ?? [])].map(peer),
        onProgress: () => {},
        log: m => { if (process.env.SWARM_DEBUG != null) console.log(`${Date.now() - started} ${name}: ${m}`) },
        signal: AbortSignal.timeout(120_000),
        // a fetch waits 8 refresh intervals (4 × idleMs) for the swarm before asking the publisher
        // again; at 40 ms a loaded machine stalled the loop that long and 3 runs in 12 failed
        idleMs: Number(process.env.SWARM_IDLE_MS ?? 120)
      })
    }))
  } finally {
    for (const hub of hubs.values()) hub.stop()
  }
  const all = [...metrics.entries()]
  const messages: Record<string, number> = {}
  for (const [, m] of all) for (const [k, v] of m.messages) messages[k] = (messages[k] ?? 0) + v
  return {
    packageBytes: size,
    seedSent: metrics.get('seed')?.out ?? 0,
    received: all.filter(([n]) => n !== 'seed').reduce((sum, [, m]) => sum + m.in, 0),
    fetchers: opts.fetchers,
    ms: Date.now() - started,
    streams: all.reduce((sum, [, m]) => sum + m.streams, 0),
    messages
  }
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
    // publisher. Single runs spread 1.0–2.4 with the same code (12 runs, real timers on a
    // shared machine; docs/benchmarks-analysis.md), about one in six above 2: a median of
    // three at ≤ 2 failed one run in thirteen, so the bound is 2.5 — far below an origin's 9
    expect(egress.sort((a, b) => a - b)[1]).toBeLessThanOrEqual(2.5)
    expect(Math.max(...egress)).toBeLessThan(4)
  })

  it('a single fetcher takes everything from the publisher without detours', async () => {
    const r = await inMemorySwarm({ fetchers: 1, degree: 1, fileBytes: 2 * 1024 * 1024, latencyMs: 1, blockMs: 1, spreadMs: 0 })
    expect(r.seedSent).toBe(r.packageBytes)
  })
  it('two fetches at once (two packages) from one peer share its 32 wantBlocks: both finish, no session is refused over the limit', async () => {
    const seed = new MemoryBlockStore()
    const roots = await Promise.all(['1.0.0', '2.0.0'].map(async version => {
      // 32 leaves of 256 KiB each: a fetch alone fills the peer's 32 wantBlocks
      const dir = await samplePackage(await tempDir(), version, {}, { 'blob.bin': randomBytes(8 * 1024 * 1024) })
      return (await packDirectory(dir, seed)).cid
    }))
    const here = new MemoryBlockStore()
    const errors: string[] = []
    const logs: string[] = []
    const seedSide = new BlockSessions({ store: seed, metrics: noNetMetrics, share: new UploadShare({ connected: () => true }), open: async () => { throw new Error('the seed opens no stream') }, onError: (_, err) => { errors.push(`seed: ${err.message}`) } })
    const hub = new BlockSessions({
      store: here,
      metrics: noNetMetrics,
      share: new UploadShare({ connected: () => true }),
      onError: (_, err) => { errors.push(`fetcher: ${err.message}`) },
      open: async () => {
        // a slow uplink at the seed: the wants of both fetches pile up there
        const [mine, theirs] = pipe(new Uplink(4), new Uplink(4), 1)
        seedSide.accept('fetcher', theirs)
        return mine
      }
    })
    try {
      await Promise.all(roots.map(async root => await fetchPackage({
        root,
        store: { ...here, has: async c => await here.has(c), get: async c => await here.get(c), delete: async c => { await here.delete(c) }, holding: async fn => await fn(), put: async (c, b) => { await here.put(c, b); hub.arrived(c); return c } },
        exchange: hub,
        sources: () => [({ toString: () => 'seed' }) as unknown as PeerId],
        onProgress: () => {},
        log: m => { logs.push(m) },
        signal: AbortSignal.timeout(20_000),
        idleMs: 120
      }))).catch((err: Error) => { errors.push(`fetch: ${err.message}`) })
    } finally {
      const during = errors.splice(0)
      hub.stop()
      seedSide.stop()
      // what stopping them says is not a refusal
      errors.splice(0, errors.length, ...during)
    }
    expect(errors).toEqual([])
    expect(logs).toEqual([])
    for (const root of roots) expect((await walkPackageBlocks(root, here)).size).toBe((await walkPackageBlocks(root, seed)).size)
  }, 60_000)
})

if (process.env.SWARM_MODEL != null) {
  describe('swarm model (SWARM_MODEL="fetchers,degree,MiB,latencyMs,blockMs,spreadMs,runs")', () => {
    it('runs', async () => {
      const [fetchers, degree, mb, latencyMs, blockMs, spreadMs, runs] = (process.env.SWARM_MODEL ?? '').split(',').map(x => Number(x))
      for (let i = 0; i < (runs ?? 1); i++) {
        const r = await inMemorySwarm({ fetchers: fetchers ?? 9, degree: degree ?? 3, fileBytes: (mb ?? 4) * 1024 * 1024, latencyMs: latencyMs ?? 2, blockMs: blockMs ?? 4, spreadMs: spreadMs ?? 20 })
        console.log(`egress ${(r.seedSent / r.packageBytes).toFixed(2)}× duplicates ${(r.received / (r.fetchers * r.packageBytes)).toFixed(3)} in ${r.ms} ms, ${r.streams} streams, messages ${JSON.stringify(r.messages)}`)
      }
    }, 600_000)
  })
}
