import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SimulationChain, SimulationError } from '../../../src/sdk/chain.js'
import type { SimulationObject } from '../../../src/sdk/chain.js'
import { NoCommonVersionError, chooseVersion } from '../../../src/shim/versions.js'
import { RUNS } from './runs.js'

// version k puts the value under its own key: every step changes the wire format
const enc = (k: number, x: number): Record<string, number> => ({ [`x${k}`]: x })
const dec = (k: number, req: unknown): number => {
  const v = (req as Record<string, unknown>)?.[`x${k}`]
  if (typeof v !== 'number') throw new Error(`not a version ${k} message: ${JSON.stringify(req)}`)
  return v
}
const f = (x: number): number => x * 2 + 1

/** The past SO shipped with version k+1 (bridges k+1 ↔ k). */
function past (k: number, counter: { n: number }): SimulationObject {
  return {
    version: k,
    serve: async (req, local) => { counter.n++; return enc(k, dec(k + 1, await local(enc(k + 1, dec(k, req))))) },
    call: async (req, remote) => { counter.n++; return enc(k + 1, dec(k, await remote(enc(k, dec(k + 1, req))))) }
  }
}

/** The future SO shipped with version k, loaded by k-1 nodes (bridges k-1 ↔ k). */
function future (k: number, counter: { n: number }): SimulationObject {
  return {
    version: k,
    serve: async (req, local) => { counter.n++; return enc(k, dec(k - 1, await local(enc(k - 1, dec(k, req))))) },
    call: async (req, remote) => { counter.n++; return enc(k - 1, dec(k, await remote(enc(k, dec(k - 1, req))))) }
  }
}

function node (native: number, lo: number, hi: number, counter: { n: number }): { chain: SimulationChain, handler: (r: unknown) => Promise<unknown> } {
  const chain = new SimulationChain(native, 1000)
  for (let k = lo; k < native; k++) chain.add(past(k, counter))
  for (let k = native + 1; k <= hi; k++) chain.add(future(k, counter))
  return { chain, handler: async r => enc(native, f(dec(native, r))) }
}

const nodeArb = fc.integer({ min: 1, max: 6 }).chain(native => fc.tuple(fc.constant(native), fc.integer({ min: 1, max: native }), fc.integer({ min: native, max: 7 })))

describe('simulation-object chains (properties)', () => {
  it('a node serves every version it speaks, with the same meaning', async () => {
    await fc.assert(fc.asyncProperty(nodeArb, fc.integer({ min: -1e6, max: 1e6 }), async ([native, lo, hi], x) => {
      const { chain, handler } = node(native, lo, hi, { n: 0 })
      expect(chain.spoken()).toEqual(Array.from({ length: hi - lo + 1 }, (_, i) => lo + i))
      for (const v of chain.spoken()) expect(await chain.serve(v, enc(v, x), handler)).toEqual(enc(v, f(x)))
    }), { numRuns: RUNS })
  })

  it('any two nodes with a common version talk both ways, through chains on either side', async () => {
    await fc.assert(fc.asyncProperty(nodeArb, nodeArb, fc.integer({ min: -1e6, max: 1e6 }), async ([n1, lo1, hi1], [n2, lo2, hi2], x) => {
      const a = node(n1, lo1, hi1, { n: 0 })
      const b = node(n2, lo2, hi2, { n: 0 })
      const spokenA = a.chain.spoken()
      const spokenB = b.chain.spoken()
      if (!spokenA.some(v => spokenB.includes(v))) {
        expect(() => chooseVersion({ native: n1, spoken: spokenA }, { native: n2, spoken: spokenB })).toThrow(NoCommonVersionError)
        return
      }
      const t = chooseVersion({ native: n1, spoken: spokenA }, { native: n2, spoken: spokenB })
      expect(await a.chain.call(t, enc(n1, x), async r => await b.chain.serve(t, r, b.handler))).toEqual(enc(n1, f(x)))
      const back = chooseVersion({ native: n2, spoken: spokenB }, { native: n1, spoken: spokenA })
      expect(await b.chain.call(back, enc(n2, x), async r => await a.chain.serve(back, r, a.handler))).toEqual(enc(n2, f(x)))
    }), { numRuns: RUNS })
  })

  it('two peers of one version never translate, even when both speak newer versions', async () => {
    await fc.assert(fc.asyncProperty(nodeArb, fc.integer(), async ([native, lo, hi], x) => {
      const counter = { n: 0 }
      const a = node(native, lo, hi, counter)
      const b = node(native, lo, hi, counter)
      const t = chooseVersion({ native, spoken: a.chain.spoken() }, { native, spoken: b.chain.spoken() })
      expect(t).toBe(native)
      await a.chain.call(t, enc(native, x), async r => await b.chain.serve(t, r, b.handler))
      expect(counter.n).toBe(0)
    }), { numRuns: RUNS })
  })

  it('prefers the fewest hops, then the newer version', () => {
    expect(chooseVersion({ native: 1, spoken: [1, 2] }, { native: 1, spoken: [1, 2] })).toBe(1)
    expect(chooseVersion({ native: 1, spoken: [1, 2] }, { native: 3, spoken: [1, 2, 3] })).toBe(2)
    expect(chooseVersion({ native: 2, spoken: [1, 2] }, { native: 2, spoken: [1, 2, 3] })).toBe(2)
    expect(chooseVersion({ native: 1, spoken: [1, 2] }, { spoken: [2] })).toBe(2)
  })

  it('an SO that throws or hangs fails that request only; gaps and unknown versions are refused', async () => {
    const chain = new SimulationChain(2, 200)
    chain.add({ version: 1, serve: () => { throw new Error('boom') }, call: () => new Promise(() => {}) })
    await expect(chain.serve(1, {}, async () => ({}))).rejects.toThrow('boom')
    await expect(chain.call(1, {}, async () => ({}))).rejects.toThrow(/limit/)
    expect(await chain.serve(2, { ok: 1 }, async r => r)).toEqual({ ok: 1 })
    await expect(chain.serve(5, {}, async () => ({}))).rejects.toThrow(SimulationError)
    const gap = new SimulationChain(3)
    gap.add({ version: 1, serve: async () => ({}), call: async () => ({}) })
    expect(gap.spoken()).toEqual([3])
  })
})
