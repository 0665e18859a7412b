import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import type { BlockSource, PeerId } from '../../src/net/index.js'
import { BlockProtocolError, fetchPackage } from '../../src/net/index.js'
import { packDirectory, walkPackageBlocks } from '../../src/package/index.js'
import { DiskFullError, MemoryBlockStore, verifyBlock } from '../../src/store/index.js'
import { samplePackage, tempDir } from '../helpers.js'

function peer (name: string): PeerId {
  return { toString: () => name } as unknown as PeerId
}

interface FakePeer { name: string, store: MemoryBlockStore, lie?: boolean, down?: boolean, breaks?: boolean, slow?: boolean, stallGetMs?: number, stalled?: number, silent?: Promise<void> }

/**
 * A block exchange over in-memory peers that speak blocks 1.0.0 (asked to wait, they
 * answer at once), recording who was asked for what, who was asked what it holds, and
 * who served what.
 */
function exchange (peers: FakePeer[], gets: Array<{ peer: string, cids: string[] }>, haves: string[] = [], served: Array<{ peer: string, cid: string }> = []): BlockSource {
  const find = (p: PeerId): FakePeer => peers.find(x => x.name === p.toString()) as FakePeer
  const have = async (p: PeerId, cids: CID[]): Promise<boolean[]> => {
    const fp = find(p)
    if (fp.down === true) throw new Error('connection refused')
    if (fp.silent != null) {
      // answers only once the test lets it, as if its "timeout" came then
      haves.push(fp.name)
      await fp.silent
      throw new Error('The operation was aborted due to timeout')
    }
    return await Promise.all(cids.map(async c => await fp.store.has(c)))
  }
  return {
    have,
    haveWait: async (p: PeerId, cids: CID[]) => ({ have: await have(p, cids), waited: false }),
    get: async (p: PeerId, cids: CID[], onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>) => {
      const fp = find(p)
      gets.push({ peer: fp.name, cids: cids.map(String) })
      if (fp.breaks === true) throw new BlockProtocolError('peer sent more blocks than asked for')
      if (fp.slow === true) throw new Error('get request timed out')
      if (fp.stallGetMs != null) {
        await new Promise(resolve => setTimeout(resolve, fp.stallGetMs))
        fp.stalled = (fp.stalled ?? 0) + 1
        throw new Error('get request timed out')
      }
      const missing: CID[] = []
      for (const cid of cids) {
        // like the real exchange: a block the peer does not hold is answered missing
        if (!(await fp.store.has(cid))) {
          missing.push(cid)
          continue
        }
        served.push({ peer: fp.name, cid: cid.toString() })
        let bytes = await fp.store.get(cid)
        if (fp.lie === true) bytes = randomBytes(bytes.byteLength)
        await verifyBlock(cid, bytes)
        await onBlock(cid, bytes)
      }
      return missing
    }
  }
}

async function packageWithBlocks (): Promise<{ root: CID, source: MemoryBlockStore, cids: CID[], size: number }> {
  const source = new MemoryBlockStore()
  const dir = await samplePackage(await tempDir(), '1.0.0', {}, { 'a.bin': randomBytes(600_000), 'b.bin': randomBytes(600_000) })
  const { cid } = await packDirectory(dir, source)
  const { cids, size } = await walkPackageBlocks(cid, source)
  return { root: cid, source, cids, size }
}

async function copyOf (from: MemoryBlockStore, cids: CID[]): Promise<MemoryBlockStore> {
  const store = new MemoryBlockStore()
  for (const cid of cids) await store.put(cid, await from.get(cid))
  return store
}

describe('fetching a package from the swarm', () => {
  it('pulls from several peers at once and ends with every block, size accounted', async () => {
    const { root, source, cids, size } = await packageWithBlocks()
    const peers = [{ name: 'a', store: await copyOf(source, cids) }, { name: 'b', store: await copyOf(source, cids) }, { name: 'c', store: await copyOf(source, cids) }]
    const gets: Array<{ peer: string, cids: string[] }> = []
    const store = new MemoryBlockStore()
    let lastProgress = 0
    const result = await fetchPackage({ root, store, exchange: exchange(peers, gets), sources: () => peers.map(p => peer(p.name)), onProgress: h => { lastProgress = h }, log: () => {}, signal: new AbortController().signal, idleMs: 1 })
    expect(result.size).toBe(size)
    expect(lastProgress).toBe(size)
    expect(store.count).toBe(cids.length)
    // the leaves of one level were spread over more than one peer
    expect(new Set(gets.map(g => g.peer)).size).toBeGreaterThan(1)
    // no block was asked for twice
    const asked = gets.flatMap(g => g.cids)
    expect(new Set(asked).size).toBe(asked.length)
  })

  it('asks for the rarest blocks first and takes partial holdings into account', async () => {
    const { root, source, cids } = await packageWithBlocks()
    // b holds everything; a holds only the directory blocks and one leaf (a peer still fetching)
    const leaves = cids.filter(c => c.code === 0x55)
    const partial = cids.filter(c => c.code !== 0x55).concat(leaves.slice(0, 1))
    const peers = [{ name: 'a', store: await copyOf(source, partial) }, { name: 'b', store: await copyOf(source, cids) }]
    const gets: Array<{ peer: string, cids: string[] }> = []
    const served: Array<{ peer: string, cid: string }> = []
    const store = new MemoryBlockStore()
    await fetchPackage({ root, store, exchange: exchange(peers, gets, [], served), sources: () => peers.map(p => peer(p.name)), onProgress: () => {}, log: () => {}, signal: new AbortController().signal, idleMs: 1 })
    expect(store.count).toBe(cids.length)
    // every block came once; blocks only b has came from b; a served from what it had
    expect(served.map(s => s.cid).sort()).toEqual(cids.map(String).sort())
    for (const s of served.filter(x => x.peer === 'a')) expect(partial.map(String)).toContain(s.cid)
    // a peer that delivered a block is asked for what it links to at once; a partial holder
    // answers missing for some, which costs a request, not a block
    const askedOfA = gets.filter(g => g.peer === 'a').flatMap(g => g.cids)
    expect(askedOfA.filter(c => !partial.map(String).includes(c)).length).toBeLessThanOrEqual(leaves.length)
  })

  it('drops a peer that serves a wrong block and completes from the others; never refetches held blocks', async () => {
    const { root, source, cids } = await packageWithBlocks()
    const peers: FakePeer[] = [{ name: 'liar', store: await copyOf(source, cids), lie: true }, { name: 'down', store: new MemoryBlockStore(), down: true }, { name: 'honest', store: await copyOf(source, cids) }]
    const gets: Array<{ peer: string, cids: string[] }> = []
    const logs: string[] = []
    // this peer already holds half the blocks
    const store = await copyOf(source, cids.slice(0, Math.floor(cids.length / 2)))
    await fetchPackage({ root, store, exchange: exchange(peers, gets), sources: () => peers.map(p => peer(p.name)), onProgress: () => {}, log: m => logs.push(m), signal: new AbortController().signal, idleMs: 1 })
    expect(store.count).toBe(cids.length)
    // a wrong block is misbehaviour, not bad luck: the liar is dropped for this package, not benched a while
    expect(logs.filter(l => l.startsWith('peer liar '))).toEqual([expect.stringMatching(/^peer liar served a block that does not match its CID: block \S+ does not match its hash; it was corrupted or forged; it is no longer a source for this package$/)])
    expect(gets.filter(g => g.peer === 'liar')).toHaveLength(1)
    const asked = new Set(gets.filter(g => g.peer === 'honest').flatMap(g => g.cids))
    for (const held of cids.slice(0, Math.floor(cids.length / 2))) expect(asked.has(held.toString())).toBe(false)
  })

  it('stops when aborted, and notices blocks that arrive in the store meanwhile', async () => {
    const { root, source, cids } = await packageWithBlocks()
    const controller = new AbortController()
    const store = new MemoryBlockStore()
    // no sources at first: the fetch waits; the blocks then arrive by another path (a publish)
    const running = fetchPackage({ root, store, exchange: exchange([], []), sources: () => [], onProgress: () => {}, log: () => {}, signal: controller.signal, idleMs: 5 })
    for (const cid of cids) await store.put(cid, await source.get(cid))
    await expect(running).resolves.toMatchObject({ blocks: cids.length, fetched: 0 })
    const stalled = fetchPackage({ root: cids[0] as CID, store: new MemoryBlockStore(), exchange: exchange([], []), sources: () => [], onProgress: () => {}, log: () => {}, signal: controller.signal, idleMs: 5 })
    controller.abort()
    await expect(stalled).rejects.toThrow(/fetch stopped/)
  })

  it('drops a peer that breaks the protocol at once; a peer that times out sits out a while, then is asked again', async () => {
    const { root, source, cids } = await packageWithBlocks()
    const peers: FakePeer[] = [{ name: 'breaker', store: await copyOf(source, cids), breaks: true }, { name: 'slow', store: await copyOf(source, cids), slow: true }]
    const gets: Array<{ peer: string, cids: string[] }> = []
    const logs: string[] = []
    let t = 0
    const controller = new AbortController()
    // nobody honest: the fetch keeps going round; let the clock run on and stop after a while
    const stopped = fetchPackage({ root, store: new MemoryBlockStore(), exchange: exchange(peers, gets), sources: () => peers.map(p => peer(p.name)), onProgress: () => {}, log: m => logs.push(m), signal: controller.signal, idleMs: 1, clock: { now: () => t } })
    for (let i = 0; i < 50; i++) { t += 1000; await new Promise(resolve => setTimeout(resolve, 5)) }
    controller.abort()
    await stopped.catch(() => {})
    expect(gets.filter(g => g.peer === 'breaker')).toHaveLength(1)
    expect(logs.some(l => /breaker failed to serve blocks: peer sent more blocks than asked for; it is no longer a source/.test(l))).toBe(true)
    // benched 15 s, then 30 s: asked a few times in 50 s, not every round
    const slowAsks = gets.filter(g => g.peer === 'slow').length
    expect(slowAsks).toBeGreaterThanOrEqual(2)
    expect(slowAsks).toBeLessThanOrEqual(5)
    expect(logs.some(l => /slow failed to serve blocks: get request timed out; asking others for 15 s/.test(l))).toBe(true)
  })

  it('stops with DiskFullError when the store is full, keeping what it holds, instead of blaming the peers and asking again', async () => {
    const { root, source, cids } = await packageWithBlocks()
    const peers = [{ name: 'a', store: await copyOf(source, cids) }, { name: 'b', store: await copyOf(source, cids) }]
    const gets: Array<{ peer: string, cids: string[] }> = []
    const logs: string[] = []
    // room for three blocks
    const store = new MemoryBlockStore()
    const put = store.put.bind(store)
    store.put = async (cid, bytes) => {
      if (store.count >= 3) throw new DiskFullError(`no space left on device for block ${cid.toString()}`)
      return await put(cid, bytes)
    }
    const fetching = fetchPackage({ root, store, exchange: exchange(peers, gets), sources: () => peers.map(p => peer(p.name)), onProgress: () => {}, log: m => logs.push(m), signal: new AbortController().signal, idleMs: 1 })
    await expect(fetching).rejects.toBeInstanceOf(DiskFullError)
    expect(store.count).toBe(3)
    // the root's round, then one round in which each peer was asked once; no peer was blamed for this peer's full disk
    expect(gets.length).toBeLessThanOrEqual(1 + peers.length)
    expect(logs.filter(l => /failed/.test(l))).toEqual([])
  })

  it('does not wait round after round for a peer that never answers (cut off by a partition, still connected)', async () => {
    const { root, source, cids } = await packageWithBlocks()
    // the cut-off peer's first answer comes only after the fetch (its timeout, as far as the fetch can tell, never)
    let answer = (): void => {}
    const silent = new Promise<void>(resolve => { answer = resolve })
    const peers: FakePeer[] = [{ name: 'cut-off', store: new MemoryBlockStore(), silent }, { name: 'a', store: await copyOf(source, cids) }]
    const haves: string[] = []
    const store = new MemoryBlockStore()
    try {
      await fetchPackage({ root, store, exchange: exchange(peers, [], haves), sources: () => peers.map(p => peer(p.name)), onProgress: () => {}, log: () => {}, signal: new AbortController().signal, idleMs: 1 })
    } finally {
      answer()
    }
    expect(store.count).toBe(cids.length)
    // the package has several levels (several rounds), yet the fetch ended while the silent
    // peer's one "which blocks do you hold" was still out: no round waited for its answer,
    // and it was not asked again while that was out
    expect(haves).toEqual(['cut-off'])
  })

  it('asks an idle other holder for blocks a stalling peer sits on, and keeps whichever answer comes first', async () => {
    const { root, source, cids } = await packageWithBlocks()
    // the staller says it holds everything and then never answers a get (until its 10 s "timeout")
    const peers: FakePeer[] = [{ name: 'staller', store: await copyOf(source, cids), stallGetMs: 10_000 }, { name: 'honest', store: await copyOf(source, cids) }]
    const gets: Array<{ peer: string, cids: string[] }> = []
    const store = new MemoryBlockStore()
    const logs: string[] = []
    const started = Date.now()
    // the staller is the only source at first, so it surely sits on a request
    const sources = (): PeerId[] => (Date.now() - started < 100 ? peers.slice(0, 1) : peers).map(p => peer(p.name))
    const result = await fetchPackage({ root, store, exchange: exchange(peers, gets), sources, onProgress: () => {}, log: m => logs.push(m), signal: new AbortController().signal, idleMs: 1, hedgeMs: 50 })
    expect(store.count).toBe(cids.length)
    expect(result.fetched).toBe(cids.length)
    // done before any request to the staller timed out, every block it sat on taken from the honest peer
    expect(peers[0]?.stalled).toBeUndefined()
    const fromStaller = gets.filter(g => g.peer === 'staller').flatMap(g => g.cids)
    expect(fromStaller.length).toBeGreaterThan(0)
    const fromHonest = new Set(gets.filter(g => g.peer === 'honest').flatMap(g => g.cids))
    for (const cid of fromStaller) expect(fromHonest.has(cid)).toBe(true)
  })

  it('reads the time from its clock only: a stalling peer\'s block is asked of another once the clock passes the hedge delay, not before', async () => {
    const { root, source, cids } = await packageWithBlocks()
    const peers: FakePeer[] = [{ name: 'staller', store: await copyOf(source, cids), stallGetMs: 10_000 }, { name: 'honest', store: await copyOf(source, cids) }]
    const gets: Array<{ peer: string, cids: string[] }> = []
    let t = Date.parse('2026-01-01T00:00:00Z')
    let both = false
    const sources = (): PeerId[] => (both ? peers : peers.slice(0, 1)).map(p => peer(p.name))
    const fetching = fetchPackage({ root, store: new MemoryBlockStore(), exchange: exchange(peers, gets), sources, onProgress: () => {}, log: () => {}, signal: new AbortController().signal, idleMs: 1, clock: { now: () => t } })
    while (gets.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
    expect(gets).toEqual([{ peer: 'staller', cids: [root.toString()] }])
    // the honest peer joins and says it holds the root; real time passes, the clock stands still
    both = true
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(gets.filter(g => g.peer === 'honest')).toEqual([])
    t += 2000
    const result = await fetching
    expect(result.fetched).toBe(cids.length)
    expect(gets.find(g => g.peer === 'honest')?.cids).toEqual([root.toString()])
    // done long before the staller's request timed out
    expect(peers[0]?.stalled).toBeUndefined()
  })

  it('a peer that had nothing new is asked to wait for a block instead of again and again; its answer when one arrives goes on at once', async () => {
    const { root, source, cids } = await packageWithBlocks()
    const a: FakePeer = { name: 'a', store: new MemoryBlockStore() }
    const gets: Array<{ peer: string, cids: string[] }> = []
    const plain: string[] = []
    const waits: number[] = []
    const base = exchange([a], gets)
    const withWaits: BlockSource = {
      ...base,
      have: async (p: PeerId, list: CID[]) => { plain.push(p.toString()); return await base.have(p, list) },
      haveWait: async (p: PeerId, list: CID[], waitMs: number) => {
        waits.push(waitMs)
        const until = Date.now() + waitMs
        const held = async (): Promise<boolean[]> => await Promise.all(list.map(async c => await a.store.has(c)))
        let have = await held()
        while (!have.some(Boolean) && Date.now() < until) {
          await new Promise(resolve => setTimeout(resolve, 5))
          have = await held()
        }
        return { have, waited: true }
      }
    }
    // the blocks reach a a second after the fetch starts
    const arrive = setTimeout(() => { void copyOf(source, cids).then(async copy => { for (const c of cids) await a.store.put(c, await copy.get(c)) }) }, 1000)
    try {
      const result = await fetchPackage({ root, store: new MemoryBlockStore(), exchange: withWaits, sources: () => [peer('a')], onProgress: () => {}, log: () => {}, signal: new AbortController().signal, idleMs: 40, haveWaitMs: 3000 })
      expect(result.blocks).toBe(cids.length)
    } finally {
      clearTimeout(arrive)
    }
    expect(waits.length).toBeGreaterThan(0)
    expect(waits.every(ms => ms === 3000)).toBe(true)
    // asked plainly first, and once more at most before it waits; polling every 20-80 ms for a second would be a dozen
    expect(plain.length).toBeLessThanOrEqual(3)
  })
})
