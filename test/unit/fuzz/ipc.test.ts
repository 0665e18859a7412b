/**
 * Fuzz properties of the messages package code can send the daemon: the app process over
 * IPC, a transform's child process, a schedule module's worker thread. Package code is
 * less trusted than the daemon: whatever it sends (structured clone carries maps, sets,
 * dates, big integers and byte arrays), the daemon stays up, keeps its own state within
 * bounds, and settles a pending request with the app's value or a named error.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { readModuleAnswer } from '../../../src/schedule/index.js'
import { readTransformAnswer } from '../../../src/upgrade/index.js'
import type { AppProcess, Route } from '../../../src/host/index.js'
import { appProcessInit, fromApp, stubbedAppProcess } from '../app-process-stub.js'
import { RUNS } from './runs.js'
import { cborValueArb, expectNamedError, fieldArb, nastyStringArb, valueOrNamedError, withoutUndefined } from './support.js'

const TYPES = ['hello', 'serving', 'ready', 'unhealthy', 'response', 'simulations-loaded', 'route', 'send', 'call', 'peers', 'call-out-result', 'shutdown-done', 'bogus'] as const

/** What structured clone can carry that dag-cbor cannot. */
const clonableArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: cborValueArb },
  { weight: 1, arbitrary: fc.constantFrom(new Map([[1, 2]]), new Set(['a']), new Date(0), /x/g, new Error('inner'), undefined, Number.NaN, Infinity) }
)

const idArb = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: clonableArb })

const messageArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 1, arbitrary: clonableArb },
  {
    weight: 8,
    arbitrary: fc.record({
      t: fieldArb(fc.constantFrom(...TYPES), 10),
      v: fieldArb(fc.constantFrom(1, 2, 3), 2),
      id: fieldArb(idArb, 4),
      ok: fieldArb(fc.boolean(), 4),
      value: clonableArb,
      error: fieldArb(fc.record({ name: fieldArb(fc.oneof(fc.constantFrom('Error', 'NotFound', ''), nastyStringArb), 4), message: fieldArb(nastyStringArb, 4) }).map(withoutUndefined), 4),
      spoken: fieldArb(fc.oneof(fc.array(fc.integer({ min: -1, max: 5 }), { maxLength: 5 }), fc.constant(Array.from({ length: 70 }, (_, i) => i + 1))), 4),
      errors: fieldArb(fc.array(clonableArb, { maxLength: 25 }), 2),
      reason: fieldArb(fc.oneof(nastyStringArb, fc.string({ minLength: 490, maxLength: 600 })), 4),
      peer: fieldArb(fc.oneof(fc.constant(null), fc.constant('12D3KooWGzh4t3YMGZUU3uhqTMy3i6HUfrXAqjKaA5AqLKUSdmEk'), nastyStringArb), 4),
      version: fieldArb(fc.integer({ min: -1, max: 3 }), 4),
      request: clonableArb
    }, { requiredKeys: ['t'] }).map(withoutUndefined)
  }
)

/** An app process whose child "runs" without a process: what it sends the app goes nowhere. */
function appProcess (calls: { routes: unknown[], sends: unknown[] }): AppProcess {
  const init = appProcessInit({
    protocol: 2,
    onRoute: async (peer): Promise<Route> => { calls.routes.push(peer); return { self: true } },
    onSend: async (peer, version, request) => { calls.sends.push({ peer, version, request }); return null }
  })
  return stubbedAppProcess(init, { connected: false, send: () => true })
}

describe('IPC messages from the app', () => {
  it('structured: any message keeps the daemon up and its view of the app in bounds; pending requests settle with a value or a named error', async () => {
    await fc.assert(fc.asyncProperty(fc.array(messageArb, { minLength: 1, maxLength: 6 }), async messages => {
      const calls = { routes: [] as unknown[], sends: [] as unknown[] }
      const proc = appProcess(calls)
      const unhealthy: string[] = []
      proc.on('unhealthy', reason => unhealthy.push(reason))
      const settled: Array<Promise<unknown>> = []
      const observe = (p: Promise<unknown>): void => {
        settled.push(p.then(() => undefined, (err: unknown) => { expectNamedError(err) }))
      }
      observe(proc.request('12D3KooWpeer', { op: 'get' }, undefined, 1000))
      observe(proc.request('12D3KooWpeer', { op: 'get' }, 1, 1000))
      observe(proc.callOut(null, { op: 'get' }, 1000))
      for (const message of messages) {
        // the daemon's listener catches what onMessage throws; what it throws must still be named
        await valueOrNamedError(() => { fromApp(proc, message) })
      }
      expect(proc.spoken).toContain(2)
      expect(proc.spoken.length).toBeLessThanOrEqual(64)
      for (const [i, v] of proc.spoken.entries()) if (i > 0) expect(v).toBe((proc.spoken[i - 1] as number) + 1)
      for (const r of unhealthy) expect(r.length).toBeLessThanOrEqual(500)
      for (const peer of calls.routes) expect(peer == null || typeof peer === 'string').toBe(true)
      for (const s of calls.sends as Array<{ peer: unknown, version: unknown }>) {
        expect(typeof s.peer).toBe('string')
        expect(Number.isInteger(s.version)).toBe(true)
      }
      expect(proc.inFlight).toBeGreaterThanOrEqual(0)
      // end whatever the messages left pending, as the child's exit does
      ;(proc as unknown as { child: { emit?: unknown } }).child = undefined as never
      for (const map of ['pending', 'outgoing'] as const) {
        const pending = (proc as unknown as Record<string, Map<number, { resolve: (v: unknown) => void, timer: NodeJS.Timeout }>>)[map] as Map<number, { resolve: (v: unknown) => void, timer: NodeJS.Timeout }>
        for (const [, p] of pending) { clearTimeout(p.timer); p.resolve(null) }
      }
      await Promise.all(settled)
    }), { numRuns: RUNS })
  })
})

describe('answers of transforms and schedule modules (their code can post messages too)', () => {
  const answerArb = fc.oneof(
    clonableArb,
    fc.record({ ok: fieldArb(fc.boolean(), 4), holds: fieldArb(fc.boolean(), 4), error: fieldArb(fc.oneof(fc.string({ maxLength: 20 }), fc.string({ minLength: 1000, maxLength: 1100 }), fc.constant({ toString: 0 })), 4) }, { requiredKeys: [] }).map(withoutUndefined)
  )

  it('a schedule module\'s worker: any message is a rule result, never a throw (which was an uncaught exception in the daemon)', async () => {
    await fc.assert(fc.asyncProperty(answerArb, async m => {
      const result = readModuleAnswer(m)
      expect(typeof result.holds).toBe('boolean')
      expect(result.reason === undefined || (typeof result.reason === 'string' && result.reason.length <= 1100)).toBe(true)
      if (result.holds) expect((m as { ok?: unknown }).ok).toBe(true)
    }), { numRuns: RUNS })
  })

  it('a transform\'s child: any message is a success only when it is the child\'s own { ok: true }, else a failure with text', async () => {
    await fc.assert(fc.asyncProperty(answerArb, async m => {
      const outcome = readTransformAnswer(m)
      if (outcome.ok) expect((m as { ok?: unknown }).ok).toBe(true)
      else expect(typeof outcome.error).toBe('string')
    }), { numRuns: RUNS })
  })
})
