/**
 * The multi-class check (`upgossip check --classes`) from manifests alone: which callee
 * versions a caller version can meet (given `after` rules on other apps, chained), which
 * protocols a callee version serves (native, past SO chain, future SOs of newer releases),
 * and for each failing combination why and what would fix it; bad input refused by name.
 */
import { describe, expect, it } from 'vitest'
import { Coexistence } from '../../src/schedule/index.js'
import { checkClassCalls, servedProtocols } from '../../src/shim/index.js'
import type { ClassRelease } from '../../src/shim/index.js'

type Extra = Partial<Pick<ClassRelease, 'calls' | 'schedule' | 'simulation'>>
const release = (app: string, version: string, protocol: number, extra: Extra = {}): ClassRelease =>
  ({ app, version, protocol, schedule: [{ rule: 'immediate' }], ...extra })
const past = { past: 'so/past.js' }
const after = (app: string, version: string, fraction = 1): ClassRelease['schedule'] => [{ rule: 'after', app, version, fraction }]

const store1 = release('store', '1.0.0', 1)
const store2 = release('store', '2.0.0', 2, { simulation: past })
const client1 = release('client', '1.0.0', 1, { calls: { store: 1 } })
const client2 = (extra: Extra = {}): ClassRelease => release('client', '2.0.0', 2, { calls: { store: 2 }, ...extra })

const result = (report: ReturnType<typeof checkClassCalls>, caller: string, callee: string): ReturnType<typeof checkClassCalls>['combinations'][number] | undefined =>
  report.combinations.find(c => `${c.caller.app} ${c.caller.version}` === caller && `${c.callee.app} ${c.callee.version}` === callee)

describe('servedProtocols', () => {
  it('follows the past SO chain down and the future SOs of newer releases up, and says why each end stops', () => {
    const s3 = release('store', '3.0.0', 3, { simulation: { past: 'p.js', future: 'f.js' } })
    const s2 = release('store', '2.0.0', 2, { simulation: { past: 'p.js', future: 'f.js' } })
    const s1 = release('store', '1.0.0', 1)
    expect(servedProtocols(s3, [s1, s2, s3])).toEqual({
      protocols: [{ protocol: 1, via: 'past', through: ['3.0.0', '2.0.0'] }, { protocol: 2, via: 'past', through: ['3.0.0'] }, { protocol: 3, via: 'native', through: [] }],
      below: 'store 1.0.0 has no past SO',
      above: 'no newer store release given speaks protocol 4'
    })
    expect(servedProtocols(s1, [s1, s2, s3]).protocols.map(p => [p.protocol, p.via, p.through])).toEqual([[1, 'native', []], [2, 'future', ['2.0.0']], [3, 'future', ['2.0.0', '3.0.0']]])
    // a 2.0.0 without a future SO stops the chain up from 1.0.0
    expect(servedProtocols(s1, [s1, release('store', '2.0.0', 2), s3])).toMatchObject({ protocols: [{ protocol: 1 }], above: 'store 2.0.0 (protocol 2) has no future SO' })
  })
})

describe('checkClassCalls', () => {
  it('finds the client that calls in protocol 2 while stores still speak 1 only, and says how to keep them apart', () => {
    const report = checkClassCalls([store1, store2, client1, client2()])
    expect(report.problems).toBe(1)
    expect(result(report, 'client 1.0.0', 'store 1.0.0')).toMatchObject({ result: 'ok', protocol: 1, via: 'native' })
    expect(result(report, 'client 1.0.0', 'store 2.0.0')).toMatchObject({ result: 'ok', via: 'the past SO of store 2.0.0' })
    expect(result(report, 'client 2.0.0', 'store 2.0.0')).toMatchObject({ result: 'ok', via: 'native' })
    const bad = result(report, 'client 2.0.0', 'store 1.0.0')
    expect(bad?.result).toBe('fails')
    expect(bad?.reason).toBe('client 2.0.0 calls store in protocol 2; store 1.0.0 speaks 1, and store 2.0.0 (protocol 2) has no future SO')
    expect(bad?.fixes).toEqual([
      'client 2.0.0 waits on {"rule": "after", "app": "store", "version": ">=2.0.0", "fraction": 1}',
      'store 2.0.0 ships a future SO (then store 1.0.0 serves protocol 2 once it has staged it)'
    ])
    expect(report.apps.store?.map(v => v.serves)).toEqual([[{ protocol: 1, via: 'native' }], [{ protocol: 1, via: 'the past SO of store 2.0.0' }, { protocol: 2, via: 'native' }]])
  })

  it('passes once the client waits for every store (fraction 1), and not with a fraction below 1', () => {
    const waits = checkClassCalls([store1, store2, client1, client2({ schedule: after('store', '>=2.0.0') })])
    expect(waits.problems).toBe(0)
    expect(result(waits, 'client 2.0.0', 'store 1.0.0')).toMatchObject({ result: 'never-meet', reason: 'client 2.0.0 waits on after store >=2.0.0 fraction 1' })
    const half = checkClassCalls([store1, store2, client1, client2({ schedule: after('store', '>=2.0.0', 0.5) })])
    expect(half.problems).toBe(1)
    expect(result(half, 'client 2.0.0', 'store 1.0.0')?.fixes?.[0]).toContain('its after rule on store has fraction 0.5')
    const wide = checkClassCalls([store1, store2, client1, client2({ schedule: after('store', '>=1.0.0') })])
    expect(result(wide, 'client 2.0.0', 'store 1.0.0')?.fixes?.[0]).toBe('client 2.0.0 waits on {"rule": "after", "app": "store", "version": ">=2.0.0", "fraction": 1} (its after rule on store names >=1.0.0, which 1.0.0 is in)')
  })

  it('lets an old store serve a new client through the future SO of the store release it staged', () => {
    const report = checkClassCalls([store1, release('store', '2.0.0', 2, { simulation: { past: 'p.js', future: 'f.js' } }), client1, client2()])
    expect(report.problems).toBe(0)
    expect(result(report, 'client 2.0.0', 'store 1.0.0')).toMatchObject({ result: 'ok', via: 'the future SO of store 2.0.0 (once staged)' })
  })

  it('names a store that drops the old protocol while old clients run, and the rule on the store side that fixes it', () => {
    const store3 = release('store', '3.0.0', 3, { simulation: past })
    const report = checkClassCalls([store1, release('store', '2.0.0', 2), store3, client1, client2()])
    const bad = result(report, 'client 1.0.0', 'store 3.0.0')
    expect(bad?.reason).toBe('client 1.0.0 calls store in protocol 1; store 3.0.0 speaks 2–3, and store 2.0.0 has no past SO')
    // the oldest client already runs: only the store can wait, or SOs bridge
    expect(bad?.fixes).toEqual([
      'store 3.0.0 waits on {"rule": "after", "app": "client", "version": ">=2.0.0", "fraction": 1}',
      'store 2.0.0 ships a past SO (then store 3.0.0 serves protocol 1)'
    ])
    expect(result(report, 'client 1.0.0', 'store 2.0.0')?.result).toBe('fails')
  })

  it('names every release whose SO a chain lacks, and a protocol no release given speaks', () => {
    const s3 = release('store', '3.0.0', 3)
    const report = checkClassCalls([store1, s3, release('client', '2.0.0', 2, { calls: { store: 1 } })])
    // the only client already runs (it cannot wait) and calls in 1 alone (the store cannot wait for it to stop)
    expect(result(report, 'client 2.0.0', 'store 3.0.0')?.fixes).toEqual(['a new store release of protocol 2 and store 3.0.0 ship a past SO (then store 3.0.0 serves protocol 1)'])
  })

  it('chains after rules: a client waiting for stores that wait for a database never meets the old database', () => {
    const db1 = release('db', '1.0.0', 1)
    const db2 = release('db', '2.0.0', 2)
    const s2 = release('store', '2.0.0', 2, { simulation: past, schedule: after('db', '>=2.0.0') })
    const c2 = release('client', '2.0.0', 2, { calls: { store: 2, db: 2 }, schedule: after('store', '^2.0.0') })
    const c1 = release('client', '1.0.0', 1, { calls: { store: 1, db: 1 } })
    const report = checkClassCalls([db1, db2, store1, s2, c1, c2])
    expect(result(report, 'client 2.0.0', 'db 1.0.0')).toMatchObject({ result: 'never-meet', reason: 'client 2.0.0 waits on after store ^2.0.0 fraction 1; store 2.0.0 waits on after db >=2.0.0 fraction 1' })
    // db 2.0.0 has no past SO and no rule: client 1.0.0 meets it and fails
    expect(result(report, 'client 1.0.0', 'db 2.0.0')?.result).toBe('fails')
    expect(report.problems).toBe(1)
  })

  it('finds two classes that wait for each other: neither switches, so neither meets the other', () => {
    const s2 = release('store', '2.0.0', 2, { simulation: past, schedule: after('client', '>=2.0.0') })
    const report = checkClassCalls([store1, s2, client1, client2({ schedule: after('store', '>=2.0.0') })])
    expect(report.apps.store?.[1]?.neverRuns).toBe('store 2.0.0 waits on after client >=2.0.0 fraction 1, and client 2.0.0 waits on after store >=2.0.0 fraction 1: they wait for each other')
    expect(report.apps.client?.[1]?.neverRuns).toBe('client 2.0.0 waits on after store >=2.0.0 fraction 1, and no store version from 2.0.0 on ever runs')
    expect(report.combinations.filter(c => c.result === 'never-meet')).toHaveLength(3)
    // a store that waits only for some clients does not close the circle
    const loose = checkClassCalls([store1, release('store', '2.0.0', 2, { simulation: past, schedule: after('client', '>=2.0.0', 0.5) }), client1, client2({ schedule: after('store', '>=2.0.0') })])
    expect(loose.apps.client?.[1]?.neverRuns).toBeUndefined()
  })

  it('says which release never runs, and warns of a rule on an app not given', () => {
    const report = checkClassCalls([store1, store2, client1, client2({ schedule: [...after('store', '>=3.0.0'), ...after('auth', '>=1.0.0')] })])
    expect(report.apps.client?.[1]?.neverRuns).toBe('client 2.0.0 waits on after store >=3.0.0 fraction 1, and no store release given is in that range')
    expect(result(report, 'client 2.0.0', 'store 1.0.0')?.result).toBe('never-meet')
    expect(report.warnings).toEqual(['client 2.0.0 waits on after auth >=1.0.0 fraction 1, and no auth release is given: the check cannot tell when it switches'])
  })

  it('refuses calls to an app not given, a protocol no release speaks, a version given twice and a range that is not one', () => {
    expect(() => checkClassCalls([client1])).toThrow(expect.objectContaining({ name: 'CallsUnknownAppError', message: expect.stringContaining('client 1.0.0 calls store (protocol 1), and no store release is given') }))
    expect(() => checkClassCalls([store1, store2, release('client', '3.0.0', 3, { calls: { store: 3 } })])).toThrow(expect.objectContaining({ name: 'CallsProtocolOutOfRangeError', message: expect.stringContaining('client 3.0.0 calls store in protocol 3, and the store releases given speak 1–2 natively') }))
    expect(() => checkClassCalls([store1, store1])).toThrow(expect.objectContaining({ name: 'DuplicateReleaseError' }))
    expect(() => new Coexistence([store1, client1, client2({ schedule: after('store', 'two or more') })])).toThrow(expect.objectContaining({ name: 'AfterRangeInvalidError' }))
  })
})
