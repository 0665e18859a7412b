import { describe, expect, it } from 'vitest'
import { MAX_HAVE_CIDS } from '../../src/net/block-exchange.js'
import { MAX_GETS_PER_PEER, forgetDeclined, getAnswered, getLaunched, getSettled, haveAnswered, haveAsked, haveSettled, linksHeld, newPeer, peerFailed } from '../../src/net/fetch-peer.js'
import type { PeerState } from '../../src/net/fetch-peer.js'
import { BENCH_MS, GET_BATCH, HEDGE_BLOCKS, MAX_HAVE_IN_FLIGHT, MIN_PATIENCE_MS, PATIENCE_BLOCKS, blockPace, fetchPlanConfig, patience, isUsable, penalty, planGets, planHaves, planPause, requestsOut, usablePeers } from '../../src/net/fetch-planner.js'
import type { Bench, FetchState, GetAsk, InFlight } from '../../src/net/fetch-planner.js'

const config = fetchPlanConfig({ idleMs: 500, hedgeMs: 2000, haveWaitMs: 5000 })
const T = 1_000_000

/** A peer as the fetch knows it; `holds` and the like as lists. */
function peer (key: string, fields: Partial<Omit<PeerState, 'holds' | 'declined' | 'askedFor'>> & { holds?: string[], declined?: string[], askedFor?: string[] } = {}): PeerState {
  const { holds, declined, askedFor, ...rest } = fields
  return { ...newPeer(key), ...rest, holds: new Set(holds), declined: new Set(declined), askedFor: new Set(askedFor) }
}

function state (needed: string[], peers: PeerState[], more: { inflight?: Record<string, InFlight>, benched?: Record<string, Bench>, banned?: string[], lastGrowth?: number } = {}): FetchState {
  return {
    needed: new Set(needed),
    inflight: new Map(Object.entries(more.inflight ?? {})),
    peers: new Map(peers.map(p => [p.key, p])),
    benched: new Map(Object.entries(more.benched ?? {})),
    banned: new Set(more.banned),
    lastGrowth: more.lastGrowth ?? T
  }
}

/** Deterministic randomness (mulberry32), so a tie-break can be replayed with many seeds. */
function seeded (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const blocks = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`)
const askedOf = (asks: GetAsk[], key: string): string[] => asks.filter(a => a.peer === key).flatMap(a => [...a.blocks])

describe('which blocks are asked of whom (planGets)', () => {
  it('asks for the rarest blocks first: a peer with room for fewer blocks than it holds gets those only it holds', () => {
    const rare = blocks('rare', 2)
    const common = blocks('common', 10)
    // b holds the common blocks too, but has no room now: rarity counts every holder
    const a = peer('a', { holds: [...common, ...rare] })
    const b = peer('b', { holds: common, gets: 1 })
    for (let seed = 0; seed < 20; seed++) {
      const asks = planGets(state([...common, ...rare], [a, b]), ['a', 'b'], T, config, seeded(seed))
      const toA = askedOf(asks, 'a')
      expect(toA).toHaveLength(GET_BATCH)
      expect(toA.slice(0, 2).sort()).toEqual(rare)
      expect(askedOf(asks, 'b')).toEqual([])
    }
  })

  it('spreads blocks many peers hold evenly over them, and asks no peer for more than it has room for', () => {
    const needed = blocks('x', 20)
    const peers = ['a', 'b', 'c'].map(k => peer(k, { holds: needed }))
    const asks = planGets(state(needed, peers), ['a', 'b', 'c'], T, config, seeded(1))
    // each block to the holder with the least planned so far: an even spread, not 8 + 8 + 4
    expect(['a', 'b', 'c'].map(k => askedOf(asks, k).length).sort()).toEqual([6, 7, 7])
    const all = asks.flatMap(a => [...a.blocks])
    expect(new Set(all).size).toBe(20)
    for (const ask of asks) expect(ask.blocks.length).toBeLessThanOrEqual(GET_BATCH)
    // with room for 24 blocks in all (one batch each), 30 lacking: 24 asked, 8 of each
    const more = blocks('y', 30)
    const full = planGets(state(more, ['a', 'b', 'c'].map(k => peer(k, { holds: more }))), ['a', 'b', 'c'], T, config, seeded(2))
    expect(['a', 'b', 'c'].map(k => askedOf(full, k).length)).toEqual([GET_BATCH, GET_BATCH, GET_BATCH])
  })

  it('asks a block only of peers that said they hold it, and nothing of a peer with all its requests out', () => {
    const a = peer('a', { holds: ['x0'] })
    const busy = peer('busy', { holds: ['x0', 'x1'], gets: 1, limit: 1 })
    const asks = planGets(state(['x0', 'x1', 'x2'], [a, busy]), ['a', 'busy'], T, config, Math.random)
    expect(asks).toEqual([{ peer: 'a', blocks: ['x0'] }])
  })

  it('gives a peer that delivered more requests at once (slow start, up to MAX_GETS_PER_PEER), and one again after a failure', () => {
    const needed = blocks('x', 64)
    let a = getLaunched(peer('a', { holds: needed }))
    a = getSettled(getAnswered(a, GET_BATCH, []))
    expect(a.limit).toBe(2)
    for (let i = 0; i < 5; i++) a = getAnswered(a, GET_BATCH, [])
    expect(a.limit).toBe(MAX_GETS_PER_PEER)
    expect(askedOf(planGets(state(needed, [a]), ['a'], T, config, Math.random), 'a')).toHaveLength(MAX_GETS_PER_PEER * GET_BATCH)
    // a peer that answered every block missing does not earn more
    expect(getAnswered(peer('b', { limit: 1 }), 2, ['x0', 'x1']).limit).toBe(1)
    const failed = peerFailed(a)
    expect(failed.limit).toBe(1)
    expect(failed.holds.size).toBe(0)
  })

  it('does not ask a peer again for blocks it answered missing for (it left them to the peer it sent them to)', () => {
    const a = getAnswered(peer('a', { holds: ['x0', 'x1'] }), 2, ['x1'])
    expect(askedOf(planGets(state(['x1'], [a]), ['a'], T, config, Math.random), 'a')).toEqual([])
    // and a `have` answer later does not make it a holder of that block again
    const answered = haveAnswered(a, ['x0', 'x1'], [true, true]).peer
    expect([...answered.holds]).toEqual(['x0'])
  })

  it('asks a peer that delivered a block for the blocks it links to at once, before it is asked what it holds', () => {
    const a = linksHeld(peer('a', { holds: [] }), ['child0', 'child1'])
    expect(askedOf(planGets(state(['child0', 'child1'], [a]), ['a'], T, config, Math.random), 'a').sort()).toEqual(['child0', 'child1'])
  })

  it('does not take a link it left to others as held: asked again at once, a seed would send what the swarm is bringing', () => {
    const declined = getAnswered(peer('a', { holds: ['child0'] }), 1, ['child0'])
    const a = linksHeld(declined, ['child0', 'child1'])
    expect([...a.holds]).toEqual(['child1'])
    expect(askedOf(planGets(state(['child0', 'child1'], [a]), ['a'], T, config, Math.random), 'a')).toEqual(['child1'])
  })
})

describe('hedging a slow request (planGets)', () => {
  const slow = peer('slow', { holds: ['x0'], gets: 1 })
  const fast = peer('fast', { holds: ['x0'] })
  const inflight = { x0: { since: T, from: new Set(['slow']) } }

  it('asks an idle other holder for a block one peer has sat on for the hedge delay, not sooner', () => {
    const s = state(['x0'], [slow, fast], { inflight })
    expect(planGets(s, ['slow', 'fast'], T + config.hedgeMs - 1, config, Math.random)).toEqual([])
    expect(planGets(s, ['slow', 'fast'], T + config.hedgeMs, config, Math.random)).toEqual([{ peer: 'fast', blocks: ['x0'] }])
  })

  it('on a loaded machine, where every block is slow, hedges only after that many block times', () => {
    const loaded: FetchState = { ...state(['x0'], [slow, fast], { inflight }), blockMs: 1000 }
    expect(planGets(loaded, ['slow', 'fast'], T + config.hedgeMs, config, Math.random)).toEqual([])
    expect(planGets(loaded, ['slow', 'fast'], T + HEDGE_BLOCKS * 1000 - 1, config, Math.random)).toEqual([])
    expect(planGets(loaded, ['slow', 'fast'], T + HEDGE_BLOCKS * 1000, config, Math.random)).toEqual([{ peer: 'fast', blocks: ['x0'] }])
    // quick blocks leave the hedge delay as it is
    expect(planGets({ ...loaded, blockMs: 20 }, ['slow', 'fast'], T + config.hedgeMs, config, Math.random)).toEqual([{ peer: 'fast', blocks: ['x0'] }])
  })

  it('leaves alone a peer that keeps delivering (busy, not stalled), and does not hedge to a busy holder', () => {
    const delivering = { ...slow, lastBlockAt: T + 1500 }
    expect(planGets(state(['x0'], [delivering, fast], { inflight }), ['slow', 'fast'], T + config.hedgeMs, config, Math.random)).toEqual([])
    expect(planGets(state(['x0'], [delivering, fast], { inflight }), ['slow', 'fast'], T + 1500 + config.hedgeMs, config, Math.random)).toEqual([{ peer: 'fast', blocks: ['x0'] }])
    const busyFast = { ...fast, gets: 1, limit: 4 }
    expect(planGets(state(['x0'], [slow, busyFast], { inflight }), ['slow', 'fast'], T + 10 * config.hedgeMs, config, Math.random)).toEqual([])
  })

  it('never asks a block twice of the peer it is in flight to, and asks no third peer once hedged', () => {
    const idleSlow = { ...slow, gets: 0 }
    expect(planGets(state(['x0'], [idleSlow], { inflight }), ['slow'], T + 10 * config.hedgeMs, config, Math.random)).toEqual([])
    const hedged = { x0: { since: T, from: new Set(['slow', 'fast']) } }
    const third = peer('third', { holds: ['x0'] })
    expect(planGets(state(['x0'], [slow, { ...fast, gets: 1 }, third], { inflight: hedged }), ['slow', 'fast', 'third'], T + 10 * config.hedgeMs, config, Math.random)).toEqual([])
  })

  it('asks for blocks nobody was asked for before it hedges', () => {
    // fast has room for one batch: the new blocks fill it, the hedge waits
    const needed = ['x0', ...blocks('new', GET_BATCH)]
    const s = state(needed, [slow, { ...fast, holds: new Set(needed) }], { inflight })
    expect(askedOf(planGets(s, ['slow', 'fast'], T + config.hedgeMs, config, Math.random), 'fast').sort()).toEqual(blocks('new', GET_BATCH).sort())
  })
})

describe('benching a peer that failed (penalty, usablePeers)', () => {
  it('benches a failing peer for 15 s, doubling with each strike up to 8×, and does not ask it until its bench ends', () => {
    let bench: Bench | undefined
    const lengths: number[] = []
    for (let i = 0; i < 5; i++) {
      // each strike once the bench before it ended
      const outcome = penalty(bench, false, bench?.until ?? T)
      if (outcome.banned) throw new Error('a timeout is not misbehaviour')
      bench = outcome.bench
      lengths.push(outcome.ms)
    }
    expect(lengths).toEqual([1, 2, 4, 8, 8].map(n => n * BENCH_MS))
    const first = penalty(undefined, false, T)
    if (first.banned) throw new Error('a timeout is not misbehaviour')
    const s = state(['x0'], [peer('slow', { holds: ['x0'] }), peer('other')], { benched: { slow: first.bench } })
    expect(usablePeers(s, ['slow', 'other'], T + BENCH_MS - 1)).toEqual(['other'])
    expect(usablePeers(s, ['slow', 'other'], T + BENCH_MS)).toEqual(['slow', 'other'])
    // the fetch plans over usable peers only: nothing is asked of it meanwhile
    const meanwhile = usablePeers(s, ['slow', 'other'], T + 1000)
    expect(planHaves(s, meanwhile, T + 1000, config).map(a => a.peer)).toEqual(['other'])
    expect(planGets(s, meanwhile, T + 1000, config, Math.random)).toEqual([])
  })

  it('a failure while the peer sits out is no new strike (every request out on a broken stream fails at once)', () => {
    const first = penalty(undefined, false, T)
    if (first.banned) throw new Error('a timeout is not misbehaviour')
    for (const late of [0, 1, BENCH_MS - 1]) {
      const again = penalty(first.bench, false, T + late)
      expect(again).toEqual({ banned: false, bench: first.bench, ms: BENCH_MS - late, again: true })
    }
    const next = penalty(first.bench, false, T + BENCH_MS)
    expect(next).toEqual({ banned: false, bench: { until: T + 3 * BENCH_MS, strikes: 2 }, ms: 2 * BENCH_MS })
    // misbehaviour still bans, benched or not
    expect(penalty(first.bench, true, T + 1)).toEqual({ banned: true })
  })

  it('bans a peer that served a wrong block or broke the protocol for good', () => {
    expect(penalty(undefined, true, T)).toEqual({ banned: true })
    const s = state(['x0'], [peer('liar')], { banned: ['liar'] })
    expect(isUsable(s, 'liar', T + 365 * 24 * 3600_000)).toBe(false)
  })

  it('offers each peer once, in the order given', () => {
    expect(usablePeers(state([], []), ['b', 'a', 'b'], T)).toEqual(['b', 'a'])
  })
})

describe('who is asked which blocks it holds (planHaves)', () => {
  it('asks a peer never asked about every lacking block, those in flight last', () => {
    const s = state(['x0', 'x1', 'x2'], [peer('a')], { inflight: { x0: { since: T, from: new Set(['b']) } } })
    expect(planHaves(s, ['a'], T, config)).toEqual([{ peer: 'a', blocks: ['x1', 'x2', 'x0'], waitMs: 0 }])
    const many = blocks('x', MAX_HAVE_CIDS + 10)
    expect(planHaves(state(many, [peer('a')]), ['a'], T, config)[0]?.blocks).toHaveLength(MAX_HAVE_CIDS)
  })

  it('does not ask a peer again while its answer is out, and keeps at most MAX_HAVE_IN_FLIGHT asks out, those heard from longest ago first', () => {
    const peers = Array.from({ length: 12 }, (_, i) => peer(`p${i}`, { askedAt: T - 1000 * (i + 1), askedFor: [] }))
    const s = state(['x0'], [...peers, peer('asking', { asking: true })])
    const asked = planHaves(s, [...peers.map(p => p.key), 'asking'], T, config).map(a => a.peer)
    expect(asked).toHaveLength(MAX_HAVE_IN_FLIGHT - 1)
    expect(asked).not.toContain('asking')
    expect(asked).toEqual(['p11', 'p10', 'p9', 'p8', 'p7', 'p6', 'p5'])
  })

  it('asks a peer that answered lately only about blocks lacked since its answer', () => {
    const a = haveSettled(haveAnswered(haveAsked(peer('a'), 0), ['x0'], [true]).peer, ['x0'], T)
    expect(planHaves(state(['x0'], [a]), ['a'], T + 1000, config)).toEqual([])
    expect(planHaves(state(['x0', 'x1'], [a]), ['a'], T + 49, config)).toEqual([])
    expect(planHaves(state(['x0', 'x1'], [a]), ['a'], T + 50, config)).toEqual([{ peer: 'a', blocks: ['x0', 'x1'], waitMs: 0 }])
  })

  it('asks a peer that holds none of what is lacking again once its answer is old, a quiet one less often', () => {
    const fresh = peer('a', { askedAt: T, askedFor: ['x0'], quiet: 0, waits: false })
    expect(planHaves(state(['x0'], [fresh]), ['a'], T + config.refreshMs - 1, config)).toEqual([])
    expect(planHaves(state(['x0'], [fresh]), ['a'], T + config.refreshMs, config)).toHaveLength(1)
    const quiet = { ...fresh, quiet: 5 }
    expect(planHaves(state(['x0'], [quiet]), ['a'], T + 4 * config.refreshMs - 1, config)).toEqual([])
    expect(planHaves(state(['x0'], [quiet]), ['a'], T + 4 * config.refreshMs, config)).toHaveLength(1)
  })

  it('asks a quiet peer to wait for a block instead of asking again and again, unless it does not speak 1.1.0', () => {
    const quiet = peer('a', { askedAt: T, askedFor: ['x0'], quiet: 1 })
    // not known yet whether it waits: asked once it is due, to wait
    expect(planHaves(state(['x0'], [quiet]), ['a'], T + 2 * config.refreshMs, config)).toEqual([{ peer: 'a', blocks: ['x0'], waitMs: config.haveWaitMs }])
    // one that waits is asked again at once: it answers only when it has something
    expect(planHaves(state(['x0'], [{ ...quiet, waits: true }]), ['a'], T, config)).toEqual([{ peer: 'a', blocks: ['x0'], waitMs: config.haveWaitMs }])
    expect(planHaves(state(['x0'], [{ ...quiet, waits: false }]), ['a'], T + 2 * config.refreshMs, config)[0]?.waitMs).toBe(0)
    const never = fetchPlanConfig({ idleMs: 500, haveWaitMs: 0 })
    expect(planHaves(state(['x0'], [{ ...quiet, waits: true }]), ['a'], T + 2 * never.refreshMs, never)[0]?.waitMs).toBe(0)
    // waiting asks do not count against the limit of asks out
    const waiting = Array.from({ length: MAX_HAVE_IN_FLIGHT }, (_, i) => peer(`w${i}`, { asking: true, waiting: true }))
    expect(planHaves(state(['x0'], [...waiting, peer('b')]), [...waiting.map(p => p.key), 'b'], T, config).map(a => a.peer)).toEqual(['b'])
  })

  it('asks a failing peer less often, and never to wait', () => {
    const failing = peerFailed(peer('a', { askedAt: T, askedFor: ['x0'], quiet: 1, waits: true }))
    expect(planHaves(state(['x0'], [failing]), ['a'], T + 2 * config.refreshMs - 1, config)).toEqual([])
    expect(planHaves(state(['x0'], [failing]), ['a'], T + 2 * config.refreshMs, config)).toEqual([{ peer: 'a', blocks: ['x0'], waitMs: 0 }])
  })

  it('does not name to a peer the blocks it left to others, and does not ask it at all when that is all', () => {
    const a = peer('a', { declined: ['x0'] })
    expect(planHaves(state(['x0', 'x1'], [a]), ['a'], T, config)[0]?.blocks).toEqual(['x1'])
    expect(planHaves(state(['x0'], [a]), ['a'], T, config)).toEqual([])
  })
})

describe('what to do once the requests are out (planPause)', () => {
  it('waits for answers while requests are out; a peer waiting to tell of a block is not work under way', () => {
    expect(planPause(state(['x0'], [peer('a', { gets: 1 })]), false, T, config)).toEqual({ kind: 'busy' })
    expect(planPause(state(['x0'], [peer('a', { asking: true })]), false, T, config)).toEqual({ kind: 'busy' })
    expect(planPause(state(['x0'], [peer('a')]), true, T, config)).toEqual({ kind: 'busy' })
    expect(planPause(state(['x0'], [peer('a', { asking: true, waiting: true })]), false, T, config)).toEqual({ kind: 'idle', wakeOnAnswer: true })
    expect(planPause(state(['x0'], [peer('a')]), false, T, config)).toEqual({ kind: 'idle', wakeOnAnswer: false })
    expect(requestsOut(state(['x0'], [peer('a', { gets: 1 })]))).toBe(true)
  })

  it('waits for blocks peers left to others while the swarm grows, then asks for them again', () => {
    const a = getAnswered(peer('a', { holds: ['x0'], askedAt: T, askedFor: ['x0'] }), 1, ['x0'])
    // b lacks x0: it may get it, and pass it on
    const s = state(['x0'], [a, peer('b', { askedAt: T, askedFor: ['x0'] })], { lastGrowth: T })
    expect(planPause(s, false, T + config.patienceMs - 1, config)).toEqual({ kind: 'await-swarm', waitMs: 1 })
    expect(planPause(s, false, T + 1, config)).toEqual({ kind: 'await-swarm', waitMs: config.refreshMs })
    expect(planPause(s, false, T + config.patienceMs, config)).toEqual({ kind: 'ask-again' })
    // meanwhile it is not asked about that block; once the fetch gives up waiting, at once
    expect(planHaves(s, ['a'], T + config.patienceMs, config)).toEqual([])
    const again = forgetDeclined(a, T + config.patienceMs, config.refreshMs)
    expect(planHaves(state(['x0'], [again]), ['a'], T + config.patienceMs, config)).toEqual([{ peer: 'a', blocks: ['x0'], waitMs: 0 }])
  })

  it('asks again at once for a block every peer left to others: none of them lacks it, so none will bring it', () => {
    const a = getAnswered(peer('a', { holds: ['x0'], askedAt: T, askedFor: ['x0'] }), 1, ['x0'])
    const b = getAnswered(peer('b', { holds: ['x0'], askedAt: T, askedFor: ['x0'] }), 1, ['x0'])
    expect(planPause(state(['x0'], [a, b], { lastGrowth: T }), false, T + 1, config)).toEqual({ kind: 'ask-again' })
    // while one of them is still asked for it, it is not stuck
    expect(planPause(state(['x0'], [a, b], { lastGrowth: T, inflight: { x0: { since: T, from: new Set(['b']) } } }), false, T + 1, config).kind).toBe('await-swarm')
  })

  it('waits for blocks left to others a few block times, as this fetch has seen them, within a floor and the bound', () => {
    const a = getAnswered(peer('a', { holds: ['x0'], askedAt: T, askedFor: ['x0'] }), 1, ['x0'])
    const lacking = peer('b', { askedAt: T, askedFor: ['x0'] })
    const at = (blockMs: number | undefined): FetchState => ({ ...state(['x0'], [a, lacking], { lastGrowth: T }), blockMs })
    expect(patience(at(undefined), config)).toBe(config.patienceMs)
    expect(patience(at(30), config)).toBe(PATIENCE_BLOCKS * 30)
    expect(patience(at(1), config)).toBe(MIN_PATIENCE_MS)
    expect(patience(at(10_000), config)).toBe(config.patienceMs)
    // blocks that came quickly: a stalled cluster asks again long before the bound
    expect(planPause(at(30), false, T + PATIENCE_BLOCKS * 30 - 10, config)).toEqual({ kind: 'await-swarm', waitMs: 10 })
    expect(planPause(at(30), false, T + PATIENCE_BLOCKS * 30, config)).toEqual({ kind: 'ask-again' })
    // what only a seed declined is waited for to the bound: asked again, the seed's uplink would send it
    const seed: PeerState = { ...a, seed: true }
    expect(patience({ ...state(['x0'], [seed, lacking], { lastGrowth: T }), blockMs: 30 }, config)).toBe(config.patienceMs)
  })

  it('keeps a moving average of how long a block takes to arrive', () => {
    expect(blockPace(undefined, 40)).toBe(40)
    expect(blockPace(40, 80)).toBe(50)
    let pace: number | undefined
    for (let i = 0; i < 50; i++) pace = blockPace(pace, 20)
    expect(pace).toBeCloseTo(20)
  })
})
