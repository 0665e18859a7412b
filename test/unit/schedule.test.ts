import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { ScheduleRule } from '../../src/package/index.js'
import { applicableRules, byRank, canaries, claimWins, countFromFraction, decide, evaluateRule, rank, readPolicy, runModuleRule, PolicyInvalidError } from '../../src/schedule/index.js'
import type { ScheduleContext, SchedulePeer } from '../../src/schedule/index.js'
import { tempDir } from '../helpers.js'

const T0 = Date.parse('2026-12-01T03:00:00Z')
const REL = { id: 'bafyrelease', version: '2.0.0' }

function peer (id: string, extra: Partial<SchedulePeer> = {}): SchedulePeer {
  return { peerId: id, version: '1.0.0', state: 'running', labels: {}, ...extra }
}

function ctx (extra: Partial<ScheduleContext> = {}): ScheduleContext {
  return {
    now: T0,
    self: peer('self'),
    peers: ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'].map(id => peer(id)),
    release: REL,
    stagedAt: T0,
    approved: false,
    idleFor: () => 0,
    ...extra
  }
}

type Plain = Exclude<ScheduleRule, { rule: 'module' }>
const holds = (rule: Plain, c: ScheduleContext): boolean => evaluateRule(rule, c).holds

describe('ranks', () => {
  it('are stable, in [0,1), and differ per release', () => {
    expect(rank('a', 'r1')).toBe(rank('a', 'r1'))
    expect(rank('a', 'r1')).toBeGreaterThanOrEqual(0)
    expect(rank('a', 'r1')).toBeLessThan(1)
    const order1 = byRank(['a', 'b', 'c', 'd', 'e', 'f'], 'r1')
    const order2 = byRank(['a', 'b', 'c', 'd', 'e', 'f'], 'r2')
    expect(order1).not.toEqual(order2)
    expect(countFromFraction(0.1, 5)).toBe(1)
    expect(countFromFraction(0.2, 20)).toBe(4)
  })
})

describe('schedule rules with a fake clock', () => {
  it('immediate and at', () => {
    expect(holds({ rule: 'immediate' }, ctx())).toBe(true)
    expect(holds({ rule: 'at', time: '2026-12-01T04:00:00Z' }, ctx())).toBe(false)
    expect(holds({ rule: 'at', time: '2026-12-01T04:00:00Z' }, ctx({ now: T0 + 3_600_000 }))).toBe(true)
  })

  it('window, in a time zone, across midnight', () => {
    const rule: Plain = { rule: 'window', daily: '02:00-04:00', tz: 'UTC' }
    expect(holds(rule, ctx())).toBe(true)
    expect(holds(rule, ctx({ now: T0 + 2 * 3_600_000 }))).toBe(false)
    // 03:00 UTC is 04:00 in Paris in December: outside 02:00-04:00 there
    expect(holds({ rule: 'window', daily: '02:00-04:00', tz: 'Europe/Paris' }, ctx())).toBe(false)
    expect(holds({ rule: 'window', daily: '22:00-03:30', tz: 'UTC' }, ctx())).toBe(true)
    expect(holds({ rule: 'window', daily: '22:00-02:30', tz: 'UTC' }, ctx())).toBe(false)
  })

  it('jitter waits a delay drawn from the rank, counted from staging', () => {
    const rule: Plain = { rule: 'jitter', max: '100s' }
    const delay = rank('self', REL.id) * 100_000
    expect(holds(rule, ctx({ now: T0 + delay - 1 }))).toBe(delay <= 1)
    expect(holds(rule, ctx({ now: T0 + delay + 1 }))).toBe(true)
    if (delay > 1000) expect(evaluateRule(rule, ctx({ now: T0 })).reason).toMatch(/^jitter: starts in \d/)
  })

  it('rolling counts peers switching or claiming this release', () => {
    const busy = (n: number): SchedulePeer[] => Array.from({ length: 9 }, (_, i) => peer(`p${i}`, i < n ? { upgrading: REL.id } : {}))
    expect(holds({ rule: 'rolling', max: 2 }, ctx({ peers: busy(1) }))).toBe(true)
    expect(holds({ rule: 'rolling', max: 2 }, ctx({ peers: busy(2) }))).toBe(false)
    const claiming = [peer('p1', { claim: REL.id }), peer('p2', { claim: 'another' }), peer('p3')]
    expect(holds({ rule: 'rolling', max: 1 }, ctx({ peers: claiming }))).toBe(false)
    // the reason names the peers that hold the slots, as status shows them
    const long = peer('12D3KooWRHWvhXocwc2MgPFRweutFLgciEdubpMfQTV9HRX73r9d', { upgrading: REL.id })
    expect(evaluateRule({ rule: 'rolling', max: 1 }, ctx({ peers: [long, ...claiming] })).reason).toBe('2 peer(s) switching now, at most 1 at once: 12D3KooWRH…X73r9d, p1')
    // 10 known peers × 0.2 = 2 slots
    expect(holds({ rule: 'rolling', maxFraction: 0.2 }, ctx({ peers: busy(1) }))).toBe(true)
    expect(holds({ rule: 'rolling', maxFraction: 0.2 }, ctx({ peers: busy(2) }))).toBe(false)
  })

  it('canary by fraction: the lowest ranks go first, the rest wait for them to soak', () => {
    const rule = { rule: 'canary', fraction: 0.2, soak: '60s' } as const
    const all = ['self', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9']
    const chosen = byRank(all, REL.id).slice(0, 2)
    expect(canaries(rule, ctx()).map(p => p.peerId).sort()).toEqual([...chosen].sort())
    const selfIsCanary = chosen.includes('self')
    expect(holds(rule, ctx())).toBe(selfIsCanary)
    // as a non-canary: canaries upgraded 30 s ago are not enough, 61 s is
    const asOther = (ago: number): ScheduleContext => {
      const other = all.find(id => !chosen.includes(id)) as string
      return ctx({
        self: peer(other),
        peers: all.filter(id => id !== other).map(id => chosen.includes(id) ? peer(id, { version: '2.0.0', since: T0 - ago }) : peer(id))
      })
    }
    expect(holds(rule, asOther(30_000))).toBe(false)
    expect(holds(rule, asOther(61_000))).toBe(true)
  })

  it('canary by labels', () => {
    const rule = { rule: 'canary', labels: { zone: 'a' }, soak: '10s' } as const
    expect(holds(rule, ctx({ self: peer('self', { labels: { zone: 'a' } }) }))).toBe(true)
    expect(holds(rule, ctx({ peers: [peer('p1', { labels: { zone: 'a' } })] }))).toBe(false)
    expect(holds(rule, ctx({ peers: [peer('p1', { labels: { zone: 'a' }, version: '2.0.0', since: T0 - 11_000 })] }))).toBe(true)
    expect(holds(rule, ctx({ peers: [peer('p1', { labels: { zone: 'a' }, version: '2.0.0', state: 'failed', since: T0 - 11_000 })] }))).toBe(false)
    expect(evaluateRule(rule, ctx({ peers: [] })).reason).toMatch(/no canary/)
  })

  it('after: a fraction of known peers already runs the release', () => {
    const peers = (n: number): SchedulePeer[] => Array.from({ length: 9 }, (_, i) => peer(`p${i}`, i < n ? { version: '2.0.0' } : {}))
    expect(holds({ rule: 'after', fraction: 0.5 }, ctx({ peers: peers(4) }))).toBe(false)
    expect(holds({ rule: 'after', fraction: 0.5 }, ctx({ peers: peers(5) }))).toBe(true)
    // this peer does not count: with every other peer done, even fraction 1 holds; alone, it holds
    expect(holds({ rule: 'after', fraction: 1 }, ctx({ peers: peers(9) }))).toBe(true)
    expect(holds({ rule: 'after', fraction: 1 }, ctx({ peers: [] }))).toBe(true)
  })

  it('after with an app: a fraction of the known peers of that app runs a version in the range', () => {
    const rule = { rule: 'after' as const, app: 'store', version: '>=2.0.0', fraction: 1 }
    const stores = (versions: string[]): SchedulePeer[] => versions.map((v, i) => peer(`s${i}`, { app: 'store', version: v }))
    // peers of this app (`peers`) do not count, peers of a third app neither
    const others = [peer('c1', { app: 'client', version: '9.0.0' }), peer('x1', { app: 'other', version: '2.0.0' })]
    expect(evaluateRule(rule, ctx({ network: [...stores(['2.0.0', '1.4.0']), ...others] }))).toEqual({ holds: false, reason: '1 of 2 peers of store run a version in >=2.0.0; waiting for 2' })
    expect(holds(rule, ctx({ network: [...stores(['2.0.0', '2.1.0']), ...others] }))).toBe(true)
    expect(holds({ ...rule, fraction: 0.5 }, ctx({ network: stores(['2.0.0', '1.4.0', '1.4.0']) }))).toBe(false)
    expect(holds({ ...rule, fraction: 0.5 }, ctx({ network: stores(['2.0.0', '2.0.0', '1.4.0']) }))).toBe(true)
    // a store that runs nothing yet, or a version that is not semver, is not done
    expect(holds(rule, ctx({ network: [...stores(['2.0.0']), peer('s9', { app: 'store', version: null })] }))).toBe(false)
    // no store in view holds nothing: "no servers seen" is not "every server switched"
    expect(evaluateRule(rule, ctx({ network: others })).reason).toBe('no peer of store in view yet')
    expect(holds(rule, ctx({}))).toBe(false)
  })

  it('idle, approve, labels, halt-on-failures', () => {
    expect(holds({ rule: 'idle', maxInFlight: 0, for: '5s' }, ctx({ idleFor: () => 4000 }))).toBe(false)
    expect(holds({ rule: 'idle', maxInFlight: 0, for: '5s' }, ctx({ idleFor: n => n === 0 ? 5000 : 0 }))).toBe(true)
    expect(holds({ rule: 'approve' }, ctx())).toBe(false)
    expect(holds({ rule: 'approve' }, ctx({ approved: true }))).toBe(true)
    expect(holds({ rule: 'labels', match: { zone: 'a' } }, ctx({ self: peer('self', { labels: { zone: 'a', rack: '1' } }) }))).toBe(true)
    expect(holds({ rule: 'labels', match: { zone: 'a' } }, ctx({ self: peer('self', { labels: { zone: 'b' } }) }))).toBe(false)
    expect(holds({ rule: 'halt-on-failures', max: 1 }, ctx({ peers: [peer('p1', { failed: ['other'] })] }))).toBe(true)
    expect(holds({ rule: 'halt-on-failures', max: 1 }, ctx({ peers: [peer('p1', { failed: [REL.id] })] }))).toBe(false)
    expect(holds({ rule: 'halt-on-failures', max: 2 }, ctx({ peers: [peer('p1', { failed: [REL.id] })] }))).toBe(true)
  })

  it('decide names the first rule that does not hold; halt-on-failures applies by default, and first', async () => {
    const rules = applicableRules([{ rule: 'immediate' }], [{ rule: 'approve' }])
    expect(rules.map(r => r.rule)).toEqual(['halt-on-failures', 'approve', 'immediate'])
    expect(await decide(rules, ctx())).toMatchObject({ start: false, waitingOn: 'approve' })
    expect(await decide(rules, ctx({ approved: true }))).toEqual({ start: true })
    expect(await decide(rules, ctx({ approved: true, peers: [peer('p1', { failed: [REL.id] })] }))).toMatchObject({ start: false, waitingOn: 'halt-on-failures' })
    expect(applicableRules([{ rule: 'halt-on-failures', max: 3 }], []).filter(r => r.rule === 'halt-on-failures')).toHaveLength(1)
    // a halted rollout says so even while a canary rule also holds it back
    const canary = applicableRules([{ rule: 'canary', fraction: 0.1, soak: '1s' }, { rule: 'halt-on-failures', max: 1 }], [])
    expect(canary.map(r => r.rule)).toEqual(['halt-on-failures', 'canary'])
    expect(await decide(canary, ctx({ peers: [peer('p1', { failed: [REL.id] })] }))).toMatchObject({ start: false, waitingOn: 'halt-on-failures' })
  })
})

describe('the claim step', () => {
  it('never lets more peers start than rolling allows: higher ranks back off', () => {
    const rules: ScheduleRule[] = [{ rule: 'rolling', max: 2 }]
    const ids = ['a', 'b', 'c', 'd', 'e']
    // everyone decided at once and claimed: each peer runs the claim step with the same view
    const winners = ids.filter(self => claimWins(rules, ctx({
      self: peer(self, { claim: REL.id }),
      peers: ids.filter(id => id !== self).map(id => peer(id, { claim: REL.id }))
    })).start)
    expect(winners).toHaveLength(2)
    expect(winners.sort()).toEqual(byRank(ids, REL.id).slice(0, 2).sort())
    // one already switching leaves one slot
    const withSwitching = ids.filter(self => self !== 'a' && claimWins(rules, ctx({
      self: peer(self, { claim: REL.id }),
      peers: ids.filter(id => id !== self).map(id => peer(id, id === 'a' ? { upgrading: REL.id } : { claim: REL.id }))
    })).start)
    expect(withSwitching).toHaveLength(1)
  })

  it('lets everyone go when no rule limits slots', () => {
    expect(claimWins([{ rule: 'immediate' }], ctx({ peers: [peer('p1', { claim: REL.id })] })).start).toBe(true)
  })
})

describe('module rules', () => {
  // generous limits: starting a worker on a loaded 2-core machine takes a while
  async function moduleFile (source: string, timeLimit = '10s'): Promise<{ dir: string, rule: Extract<ScheduleRule, { rule: 'module' }> }> {
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'schedule.js'), source)
    return { dir, rule: { rule: 'module', path: 'schedule.js', timeLimit } }
  }

  it('hold when the default export says true, and see the context', async () => {
    const { dir, rule } = await moduleFile('export default (ctx) => ctx.release.version === "2.0.0" && ctx.self.peerId === "self"')
    expect(await runModuleRule(dir, rule, ctx())).toEqual({ holds: true })
    const { dir: no, rule: r2 } = await moduleFile('export default async () => false')
    expect((await runModuleRule(no, r2, ctx())).holds).toBe(false)
  })

  it('do not hold when the module throws, loops forever, or has no default export', async () => {
    const logged: string[] = []
    const thrower = await moduleFile('export default () => { throw new Error("boom") }')
    expect(await runModuleRule(thrower.dir, thrower.rule, ctx(), m => logged.push(m))).toMatchObject({ holds: false, reason: expect.stringMatching(/boom/) })
    const looper = await moduleFile('export default () => { for (;;) {} }', '1s')
    const started = Date.now()
    expect(await runModuleRule(looper.dir, looper.rule, ctx(), m => logged.push(m))).toMatchObject({ holds: false, reason: expect.stringMatching(/limit/) })
    expect(Date.now() - started).toBeLessThan(20_000)
    const empty = await moduleFile('export const x = 1')
    expect((await runModuleRule(empty.dir, empty.rule, ctx())).holds).toBe(false)
    expect(logged).toHaveLength(2)
  })
})

describe('local policy files', () => {
  it('read rules and refuse bad ones', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'policy.json')
    await fs.writeFile(file, JSON.stringify({ rules: [{ rule: 'window', daily: '02:00-04:00' }, { rule: 'approve' }] }))
    expect((await readPolicy(file)).map(r => r.rule)).toEqual(['window', 'approve'])
    await fs.writeFile(file, JSON.stringify({ rules: [{ rule: 'module', path: 'x.js' }] }))
    await expect(readPolicy(file)).rejects.toThrow(PolicyInvalidError)
    await fs.writeFile(file, JSON.stringify({ rules: [{ rule: 'jitter', max: 'soon' }] }))
    await expect(readPolicy(file)).rejects.toThrow(/rules\[0\]\.max/)
  })
})
