/**
 * A model of the swarm at the level of the planner: no sockets, no timers, no stores — a
 * virtual clock in ticks of one millisecond and a seeded random mesh. Every fetcher runs
 * the real planner (`planGets`, `planPause` and the transitions of fetch-peer.ts) and
 * every server the real {@link UploadShare}; what peers know of each other is what blocks
 * 2.0.0 gives them: a neighbour's holdings as of one link latency ago (its pushed `have`s).
 * A block occupies its sender's uplink for `blockMs`; a request, an answer or an
 * announcement takes `latencyMs`. Same seed, same numbers: the publisher's egress and the
 * duplicates at N = 10, 50 and 200.
 */
import { describe, expect, it } from 'vitest'
import { blockDelivered, forgetDeclined, getAnswered, getLaunched, getSettled, newPeer } from '../../src/net/fetch-peer.js'
import type { PeerState } from '../../src/net/fetch-peer.js'
import { blockPace, fetchPlanConfig, planGets, planPause } from '../../src/net/fetch-planner.js'
import type { Bench, InFlight } from '../../src/net/fetch-planner.js'
import { UploadShare } from '../../src/net/upload-share.js'
import { seededRandom as seeded } from '../../scripts/prng.ts'

/** What one modelled swarm did. */
export interface ModelOutcome {
  /** Copies of the package the publisher sent. */
  egress: number
  /** Blocks received ÷ blocks needed, over every fetcher. */
  duplicates: number
  /** When the last fetcher completed (virtual ms). */
  doneMs: number
}

interface Node {
  name: string
  links: string[]
  /** When each block was held here (virtual ms). */
  heldAt: Map<string, number>
  share: UploadShare
  uplinkFree: number
  state: { needed: Set<string>, inflight: Map<string, InFlight>, peers: Map<string, PeerState>, benched: Map<string, Bench>, banned: Set<string>, lastGrowth: number, blockMs?: number }
  startAt: number
}

/** Run the model: a publisher holding `blocks` blocks of 256 KiB, `fetchers` peers, each linked to about `degree` others. */
export function modelSwarm (opts: { fetchers: number, degree: number, blocks: number, seed: number, latencyMs?: number, blockMs?: number, spreadMs?: number }): ModelOutcome {
  const random = seeded(opts.seed)
  const latency = opts.latencyMs ?? 2
  const blockMs = opts.blockMs ?? 4
  const size = 256 * 1024
  const config = fetchPlanConfig({ idleMs: 500 })
  const keys = Array.from({ length: opts.blocks }, (_, i) => `b${i}`)
  const names = ['seed', ...Array.from({ length: opts.fetchers }, (_, i) => `f${i}`)]
  const links = new Map(names.map(n => [n, new Set<string>()]))
  for (const n of names) {
    while ((links.get(n)?.size ?? 0) < Math.min(opts.degree, names.length - 1)) {
      const other = names[Math.floor(random() * names.length)] as string
      if (other === n) continue
      links.get(n)?.add(other)
      links.get(other)?.add(n)
    }
  }
  let now = 0
  const nodes = new Map<string, Node>(names.map(name => [name, {
    name,
    links: [...(links.get(name) ?? [])],
    heldAt: new Map(name === 'seed' ? keys.map(k => [k, 0]) : []),
    share: new UploadShare({ connected: p => links.get(name)?.has(p) === true, now: () => now }),
    uplinkFree: 0,
    state: { needed: new Set(name === 'seed' ? [] : keys), inflight: new Map(), peers: new Map(), benched: new Map(), banned: new Set(), lastGrowth: 0 },
    startAt: name === 'seed' ? 0 : Math.floor(random() * (opts.spreadMs ?? 20))
  }]))
  const events = new Map<number, Array<() => void>>()
  const at = (t: number, fn: () => void): void => { const list = events.get(t) ?? []; list.push(fn); events.set(t, list) }
  const node = (name: string): Node => nodes.get(name) as Node
  let seedBlocks = 0
  let received = 0

  /** One get of `blocks` from `server` to `fetcher`: each block served in turn on the server's uplink, or declined. */
  const get = (fetcher: Node, server: Node, blocks: readonly string[]): void => {
    const missing: string[] = []
    let left = blocks.length
    let last = now
    const answered = (): void => {
      if (--left > 0) return
      const s = fetcher.state
      s.peers.set(server.name, getSettled(getAnswered(s.peers.get(server.name) as PeerState, blocks.length, missing)))
      for (const key of blocks) {
        const entry = s.inflight.get(key)
        const from = new Set(entry?.from)
        from.delete(server.name)
        if (entry == null || from.size === 0) s.inflight.delete(key)
        else s.inflight.set(key, { since: entry.since, from })
      }
    }
    at(now + latency, () => {
      for (const key of blocks) {
        if (!server.heldAt.has(key) || server.share.leaveToOthers(key, fetcher.name, size)) {
          missing.push(key)
          at(now + latency, answered)
          continue
        }
        server.share.sent(key, fetcher.name, size)
        server.uplinkFree = Math.max(server.uplinkFree, now) + blockMs
        if (server.name === 'seed') seedBlocks++
        at(server.uplinkFree + latency, () => {
          received++
          const s = fetcher.state
          s.blockMs = blockPace(s.blockMs, now - last)
          last = now
          s.peers.set(server.name, blockDelivered(s.peers.get(server.name) as PeerState, now))
          if (!fetcher.heldAt.has(key)) {
            fetcher.heldAt.set(key, now)
            fetcher.share.fetched(key)
            s.needed.delete(key)
            s.lastGrowth = now
          }
          answered()
        })
      }
    })
  }

  const fetchers = names.slice(1).map(node)
  while (fetchers.some(f => f.state.needed.size > 0)) {
    if (now > 600_000) throw new Error('the modelled swarm did not complete in 10 virtual minutes')
    for (const fn of events.get(now) ?? []) fn()
    events.delete(now)
    for (const f of fetchers) {
      if (now < f.startAt || f.state.needed.size === 0) continue
      const s = f.state
      // what each neighbour holds, as its pushed announcements tell one latency later, less what it declined
      for (const name of f.links) {
        const p = s.peers.get(name) ?? newPeer(name)
        const n = node(name)
        const holds = new Set([...s.needed].filter(key => (n.heldAt.get(key) ?? Infinity) <= now - latency && !p.declined.has(key)))
        if ([...holds].some(key => !p.holds.has(key))) s.lastGrowth = now
        s.peers.set(name, { ...p, holds, seed: p.seed ?? holds.size === s.needed.size })
      }
      const asks = planGets(s, f.links, now, config, random)
      for (const ask of asks) {
        s.peers.set(ask.peer, getLaunched(s.peers.get(ask.peer) as PeerState))
        for (const key of ask.blocks) {
          const entry = s.inflight.get(key)
          s.inflight.set(key, { since: entry?.since ?? now, from: new Set([...(entry?.from ?? []), ask.peer]) })
        }
        get(f, node(ask.peer), ask.blocks)
      }
      if (asks.length === 0 && planPause(s, false, now, config).kind === 'ask-again') {
        for (const [name, p] of s.peers) s.peers.set(name, forgetDeclined(p, now, config.refreshMs))
      }
    }
    now++
  }
  return { egress: seedBlocks / opts.blocks, duplicates: received / (opts.fetchers * opts.blocks), doneMs: now }
}

describe('the swarm, modelled at the planner (seeded, no sockets)', () => {
  for (const fetchers of [10, 50, 200]) {
    it(`N = ${fetchers}: the publisher sends at most 1.5 copies of a 4 MiB package, and nothing is received more than 1.05 times`, () => {
      const runs = [1, 2, 3].map(seed => modelSwarm({ fetchers, degree: 6, blocks: 16, seed }))
      console.log(`N = ${fetchers}: ${runs.map(r => `egress ${r.egress.toFixed(2)}×, duplicates ${r.duplicates.toFixed(3)}, done at ${r.doneMs} ms`).join('; ')}`)
      for (const r of runs) {
        expect(r.egress).toBeLessThanOrEqual(1.5)
        expect(r.duplicates).toBeLessThanOrEqual(1.05)
        // no cluster of fetchers that were all told to look elsewhere waits out the bound of a loaded network
        expect(r.doneMs).toBeLessThan(fetchPlanConfig({ idleMs: 500 }).patienceMs)
      }
    }, 120_000)
  }

  it('is deterministic: the same seed gives the same swarm', () => {
    expect(modelSwarm({ fetchers: 30, degree: 6, blocks: 16, seed: 7 })).toEqual(modelSwarm({ fetchers: 30, degree: 6, blocks: 16, seed: 7 }))
  })
})
