/**
 * The simulator of several classes (scripts/sim/classes.ts, `npm run simulate -- --classes`):
 * clients that wait with `after` for every store never meet a store they cannot call;
 * without the rule they do, and the report says so. Small networks, fixed seeds.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { servedProtocols, simulateClasses } from '../../scripts/sim/classes.ts'
import type { ClassesParams } from '../../scripts/sim/classes.ts'
import { ScenarioInvalidError, builtInScenario, parsePeerCounts, parseScenario, withPeerCounts, withoutAfterRules } from '../../scripts/sim/scenario.ts'
import type { ClassVersion, Scenario } from '../../scripts/sim/scenario.ts'

const run = promisify(execFile)
const SCRIPT = new URL('../../scripts/simulate.ts', import.meta.url).pathname
const small = withPeerCounts(builtInScenario('stores-then-clients'), { store: 6, client: 12 })
const timing: Omit<ClassesParams, 'scenario'> = { beatMs: 1000, fetchMs: 2000, switchMs: 2000, seed: 3 }

describe('simulating several classes', () => {
  it('with "after store >=2.0.0 fraction 1", clients start only after every store switched, and no caller ever meets a callee it cannot call', async () => {
    const r = await simulateClasses({ scenario: small, ...timing })
    const [store, client] = r.classes
    expect(r.rolloutMs).not.toBeNull()
    expect(store?.lastSwitchMs).not.toBeNull()
    expect(client?.firstSwitchMs).toBeGreaterThan(store?.lastSwitchMs ?? Infinity)
    expect(r.incompatible).toEqual([])
    expect(r.incompatibleMs).toBe(0)
    // the states in order: both classes never mixed at once
    expect(r.states.map(s => s.state)).toEqual([
      'store 1.0.0 / client 1.0.0',
      'store 1.0.0+2.0.0 / client 1.0.0',
      'store 2.0.0 / client 1.0.0',
      'store 2.0.0 / client 1.0.0+2.0.0',
      'store 2.0.0 / client 2.0.0'
    ])
    expect(r.states.filter(s => s.mixed).every(s => s.ms > 0)).toBe(true)
    // the time in every state adds up to the run
    expect(r.states.reduce((n, s) => n + s.ms, 0)).toBe(r.rolloutMs)
  })

  it('without the rule, clients 2.0.0 call stores still on 1.0.0, which serve protocol 1 only', async () => {
    const r = await simulateClasses({ scenario: withoutAfterRules(small), ...timing })
    expect(r.rolloutMs).not.toBeNull()
    expect(r.incompatibleMs).toBeGreaterThan(0)
    const pair = r.incompatible.find(x => x.callee.version === '1.0.0')
    expect(pair).toMatchObject({ caller: { app: 'client', version: '2.0.0', calls: 2 }, callee: { app: 'store', version: '1.0.0', serves: [1] } })
    expect(pair?.ms).toBeGreaterThan(0)
    expect(pair?.firstAtMs).toBeGreaterThanOrEqual(r.classes[1]?.firstSwitchMs ?? Infinity)
    expect(r.states.some(s => s.versions.store?.length === 2 && s.versions.client?.length === 2)).toBe(true)
  })

  it('gives what asking the engine for every peer gives', async () => {
    const fast = await simulateClasses({ scenario: small, ...timing, seed: 5 })
    const slow = await simulateClasses({ scenario: small, ...timing, seed: 5, exhaustive: true })
    expect(slow.classes).toEqual(fast.classes)
    expect(slow.states).toEqual(fast.states)
  })

  it('a store release with a future SO lets a store still on 1.0.0 serve new clients; without it they meet', async () => {
    const scenario = (future: boolean): Scenario => parseScenario({
      classes: [
        { app: 'store', peers: 6, versions: [{ version: '1.0.0', protocol: 1 }, { version: '2.0.0', protocol: 2, simulation: { past: true, future }, schedule: [{ rule: 'rolling', max: 1 }] }] },
        { app: 'client', peers: 4, versions: [{ version: '1.0.0', protocol: 1, calls: { store: 1 } }, { version: '2.0.0', protocol: 2, calls: { store: 2 }, at: '30s' }] }
      ]
    })
    // the clients' release comes 30 s later, once every store has staged 2.0.0; the stores still switch one at a time
    const params = { ...timing, switchMs: 10_000 }
    const served = await simulateClasses({ scenario: scenario(true), ...params })
    expect(served.classes[1]?.lastSwitchMs).toBeLessThan(served.classes[0]?.lastSwitchMs ?? 0)
    expect(served.states.some(s => s.state === 'store 1.0.0+2.0.0 / client 2.0.0' && s.ms > 0)).toBe(true)
    expect(served.incompatible).toEqual([])
    const unserved = await simulateClasses({ scenario: scenario(false), ...params })
    expect(unserved.incompatible.map(x => `${x.caller.app} ${x.caller.version} → ${x.callee.app} ${x.callee.version}`)).toEqual(['client 2.0.0 → store 1.0.0'])
  })
  it('stops, and says what the class waits on, when no peer can start any more', async () => {
    const scenario = parseScenario({
      classes: [
        { app: 'store', peers: 3, versions: [{ version: '1.0.0', protocol: 1 }, { version: '2.0.0', protocol: 2 }] },
        { app: 'client', peers: 3, versions: [{ version: '1.0.0', protocol: 1 }, { version: '2.0.0', protocol: 2, schedule: [{ rule: 'after', app: 'store', version: '>=3.0.0', fraction: 1 }] }] }
      ]
    })
    const r = await simulateClasses({ scenario, ...timing })
    expect(r.rolloutMs).toBeNull()
    expect(r.stalledAtMs).toBeGreaterThan(r.classes[0]?.lastSwitchMs ?? Infinity)
    expect(r.stalledAtMs).toBeLessThan(60_000)
    expect(r.classes[1]).toMatchObject({ firstSwitchMs: null, waitingOn: expect.stringContaining('0 of 3 peers of store run a version in >=3.0.0') })
  })
})

describe('what a peer serves', () => {
  const v = (protocol: number, past = false, future = false): ClassVersion => ({ version: `${protocol}.0.0`, protocol, calls: {}, past, future, schedule: [], announceMs: 0, upgrades: null })
  it('its own protocol, down its chain of past SOs, and up through the future SOs of staged releases', () => {
    const versions = [v(1), v(2, true, true), v(3, true, true)]
    expect(servedProtocols(versions, 2, () => true)).toEqual([1, 2, 3])
    expect(servedProtocols(versions, 0, () => true)).toEqual([1, 2, 3])
    expect(servedProtocols(versions, 0, k => k < 2)).toEqual([1, 2])
    expect(servedProtocols(versions, 0, k => k === 0)).toEqual([1])
    // a gap in the chain stops it
    expect(servedProtocols([v(1), v(2), v(3, true)], 2, () => true)).toEqual([2, 3])
    expect(servedProtocols([v(1), v(2, true), v(3, false, false)], 0, () => true)).toEqual([1])
  })
})

describe('scenarios', () => {
  const two = (client: Record<string, unknown>): unknown => ({
    classes: [
      { app: 'store', peers: 2, versions: [{ version: '1.0.0', protocol: 1 }, { version: '2.0.0', protocol: 2 }] },
      { app: 'client', peers: 2, versions: [{ version: '1.0.0', protocol: 1 }, { version: '2.0.0', protocol: 2, ...client }] }
    ]
  })
  it('refuses calls to and waits for classes the scenario does not have, and versions out of order', () => {
    expect(() => parseScenario(two({ calls: { cache: 1 } }))).toThrow(/no class "cache"/)
    expect(() => parseScenario(two({ schedule: [{ rule: 'after', app: 'cache', version: '>=1.0.0', fraction: 1 }] }))).toThrow(/not a class of the scenario/)
    expect(() => parseScenario(two({ version: '0.9.0' }))).toThrow(/oldest first/)
    expect(() => parseScenario(two({ bogus: 1 }))).toThrow(ScenarioInvalidError)
    expect(() => withPeerCounts(small, parsePeerCounts('cache:3'))).toThrow(/no class "cache"/)
    expect(() => parsePeerCounts('store=3')).toThrow(/APP:PEERS/)
  })
})

describe('npm run simulate -- --classes', () => {
  it('prints the report, and says when callers met callees they cannot call', async () => {
    const args = [SCRIPT, '--classes', 'store:4,client:8', '--beat', '1s', '--fetch', '2s', '--switch', '2s']
    const ok = await run(process.execPath, args)
    expect(ok.stdout).toMatch(/^store 1\.0\.0\+2\.0\.0 \/ client 1\.0\.0 .* mixed$/m)
    expect(ok.stdout).toContain('compatible: no caller ever faced a callee it cannot talk to')
    const bad = await run(process.execPath, [...args, '--without-after', '--json'])
    const out = JSON.parse(bad.stdout) as { scenario: { name: string }, simulation: { incompatibleMs: number, incompatible: unknown[] } }
    expect(out.scenario.name).toBe('stores-then-clients without after')
    expect(out.simulation.incompatibleMs).toBeGreaterThan(0)
  })

  it('reads a scenario file and refuses a bad one with exit 2', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sim-classes-'))
    try {
      const file = path.join(dir, 'bad.json')
      await fs.writeFile(file, JSON.stringify({ classes: [{ app: 'store', peers: 2, versions: [{ version: '1.0.0', protocol: 1 }] }] }))
      await expect(run(process.execPath, [SCRIPT, '--scenario', file])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('versions') })
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })
})
