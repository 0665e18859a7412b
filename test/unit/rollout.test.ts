/**
 * The rollout's decisions on one peer, with its collaborators stubbed through its
 * components object: which release is next (the newest staged one whose `upgrades`
 * range holds the running version, step by step, passing over paused, held, halted and
 * failed ones), what a waiting or passed-over release waits on, and when the switch is
 * handed to the upgrade engine.
 */
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.js'
import type { NodeState } from '../../src/daemon/node-state.js'
import type { ViewEntry } from '../../src/net/index.js'
import { Rollout } from '../../src/daemon/rollout.js'
import type { RolloutComponents } from '../../src/daemon/rollout.js'
import { parseManifest } from '../../src/package/index.js'
import { summarize } from '../../src/release/index.js'
import type { ReleaseEntry, ReleaseState } from '../../src/release/index.js'
import type { InstalledRelease } from '../../src/upgrade/index.js'

const NOW = Date.parse('2026-06-01T00:00:00Z')
const PKG = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

function entry (version: string, state: ReleaseState, manifest: Record<string, unknown> = {}): ReleaseEntry {
  return {
    id: `r-${version}`,
    state,
    admitted: new Date(NOW).toISOString(),
    signed: {
      record: { app: 'kv', version, previous: null, package: PKG, size: 1, manifest: { app: 'kv', version, main: 'server.js', protocol: 1, ...manifest }, issued: new Date(NOW).toISOString(), expires: new Date(NOW + 86_400_000).toISOString() },
      signatures: []
    }
  }
}

interface World {
  rollout: Rollout
  entries: ReleaseEntry[]
  switches: string[]
  approved: Set<string>
  held: Set<string>
  revoked: Set<string>
  /** Release id → why its rollout is paused network-wide. */
  paused: Map<string, string>
  view: ViewEntry[]
  /** States whose write fails (ENOSPC) after the book changed in memory, as the real book does on a full disk. */
  unwritable: Set<ReleaseState>
}

/** `running` null: a peer that joined with `--app` and runs nothing yet; `joinWait`: why its first install must wait. */
function world (entries: ReleaseEntry[], running: string | null, previous?: string, joinWait?: () => string | undefined): World {
  const switches: string[] = []
  const approved = new Set<string>()
  const held = new Set<string>()
  const revoked = new Set<string>()
  const paused = new Map<string, string>()
  const view: ViewEntry[] = []
  const unwritable = new Set<ReleaseState>()
  let state: NodeState = { app: 'kv', current: running == null ? null : { id: `r-${running}`, version: running }, previous: previous == null ? null : { id: `r-${previous}`, version: previous }, since: NOW - 60_000 }
  const installed = async (id: string): Promise<InstalledRelease | undefined> => {
    const e = entries.find(x => x.id === id)
    return e == null ? undefined : { id, app: 'kv', version: e.signed.record.version, packageDir: `/nowhere/${id}`, manifest: parseManifest(e.signed.record.manifest) }
  }
  const components: RolloutComponents = {
    dataDir: { packages: '/nowhere/packages', states: '/nowhere/state' },
    book: {
      get: id => entries.find(e => e.id === id),
      list: () => entries,
      summaries: () => entries.map(e => summarize(e.id, e.signed, e)),
      isRevoked: id => revoked.has(id),
      setState: async (id, s, reason) => {
        const e = entries.find(x => x.id === id)
        if (e != null) { e.state = s; if (reason != null) e.reason = reason }
        if (unwritable.has(s)) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
      }
    },
    engine: {
      inProgress: undefined,
      recover: async () => ({ kind: 'none' }),
      spec: async () => { throw new Error('no app is launched in this test') },
      stateDir: id => `/nowhere/state/${id}`,
      switch: async (from, to, kind) => { switches.push(`${kind} ${from.version} -> ${to.version}`); return { ok: true } }
    },
    host: { current: undefined, idleFor: () => 60_000, launch: () => { throw new Error('no app is launched in this test') }, stopCurrent: async () => {}, supervise: () => {} },
    releases: { installed, simulationsFor: async () => [], nativeProtocol: () => 1 },
    controls: { isApproved: id => approved.has(id), isHeld: id => held.has(id) },
    events: { info: () => {}, warn: () => {}, error: () => {} },
    clock: fixedClock(NOW),
    peerId: () => '12D3KooWself',
    view: () => view,
    nodeState: { get state () { return state }, set: async s => { state = s } },
    changes: { changed: () => {} },
    paused: (app, id) => app === 'kv' ? paused.get(id) : undefined,
    joinWait
  }
  return { rollout: new Rollout(components, { policy: [], labels: {}, settleMs: 10 }), entries, switches, approved, held, revoked, paused, view, unwritable }
}

describe('the rollout', () => {
  it('goes step by step: the next release is the newest staged one whose upgrades range holds the running version', async () => {
    const w = world([entry('1.0.0', 'active'), entry('2.0.0', 'staged', { upgrades: '^1.0.0' }), entry('3.0.0', 'staged', { upgrades: '^2.0.0' })], '1.0.0')
    expect(w.rollout.candidate()?.signed.record.version).toBe('2.0.0')
    await w.rollout.tick()
    expect(w.switches).toEqual(['upgrade 1.0.0 -> 2.0.0'])
  })

  it('a held release waits on "hold" and never switches until resumed', async () => {
    const w = world([entry('1.0.0', 'active'), entry('2.0.0', 'staged')], '1.0.0')
    w.held.add('r-2.0.0')
    await w.rollout.tick()
    expect(w.switches).toEqual([])
    expect(w.entries[1]?.state).toBe('waiting')
    expect(w.rollout.waitingOn('r-2.0.0')?.rule).toBe('hold')
    expect(w.rollout.waitingNow()).toMatchObject({ id: 'r-2.0.0', rule: 'hold' })
    w.held.delete('r-2.0.0')
    await w.rollout.tick()
    expect(w.switches).toEqual(['upgrade 1.0.0 -> 2.0.0'])
  })

  it('a release whose schedule wants approval waits on "approve" until the operator approves it', async () => {
    const w = world([entry('1.0.0', 'active'), entry('2.0.0', 'staged', { schedule: [{ rule: 'approve' }] })], '1.0.0')
    await w.rollout.tick()
    expect(w.rollout.waitingOn('r-2.0.0')?.rule).toBe('approve')
    expect(w.switches).toEqual([])
    w.approved.add('r-2.0.0')
    await w.rollout.tick()
    expect(w.switches).toEqual(['upgrade 1.0.0 -> 2.0.0'])
  })

  it('a release another peer reported failed halts the rollout here (halt-on-failures), named first', async () => {
    const w = world([entry('1.0.0', 'active'), entry('2.0.0', 'staged')], '1.0.0')
    w.view.push({
      peerId: '12D3KooWother',
      seen: NOW,
      beat: { v: 1, seq: 1, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [], since: NOW - 1000, protocol: 1, upgrading: null, claim: null, failed: ['r-2.0.0'], waiting: null }
    })
    await w.rollout.tick()
    expect(w.switches).toEqual([])
    expect(w.rollout.waitingOn('r-2.0.0')?.rule).toBe('halt-on-failures')
  })

  it('rolls a revoked running release back to the previous version, and refuses a rollback with none kept', async () => {
    const w = world([entry('1.0.0', 'superseded'), entry('2.0.0', 'active')], '2.0.0', '1.0.0')
    w.revoked.add('r-2.0.0')
    await w.rollout.tick()
    expect(w.switches).toEqual(['downgrade 2.0.0 -> 1.0.0'])
    expect(w.entries[1]?.state).toBe('revoked')
    const alone = world([entry('1.0.0', 'active')], '1.0.0')
    await expect(alone.rollout.rollback()).rejects.toThrow('no previous version')
  })

  it('a halted release does not block a fix published under a lower version (2.0.1 after a failed 2.0.2), and says why it waits', async () => {
    const w = world([entry('1.0.0', 'active'), entry('2.0.2', 'staged'), entry('2.0.1', 'staged')], '1.0.0')
    w.view.push(failedOn('r-2.0.2'))
    expect(w.rollout.candidate()?.signed.record.version).toBe('2.0.1')
    await w.rollout.tick()
    expect(w.switches).toEqual(['upgrade 1.0.0 -> 2.0.1'])
    expect(w.entries[1]?.state).toBe('waiting')
    expect(w.rollout.waitingOn('r-2.0.2')).toMatchObject({ rule: 'halt-on-failures', reason: expect.stringContaining('1 peer(s) reported this release failed') })
  })

  it('a release that failed here is skipped for the next one down', async () => {
    const w = world([entry('1.0.0', 'active'), entry('2.0.1', 'staged'), entry('2.0.2', 'failed')], '1.0.0')
    await w.rollout.tick()
    expect(w.switches).toEqual(['upgrade 1.0.0 -> 2.0.1'])
  })

  it('a paused release waits on "paused" with who paused it and why, checked before halt-on-failures; the next one down goes; resumed, it goes', async () => {
    const w = world([entry('1.0.0', 'active'), entry('2.0.0', 'staged', { upgrades: '^1.0.0' })], '1.0.0')
    w.paused.set('r-2.0.0', 'paused by the publishers of kv (z6Mkalice…) at 2026-06-01T00:00:00Z: p99 doubled')
    w.view.push(failedOn('r-2.0.0'))
    await w.rollout.tick()
    expect(w.switches).toEqual([])
    expect(w.entries[1]?.state).toBe('waiting')
    expect(w.rollout.waitingOn('r-2.0.0')).toEqual({ rule: 'paused', reason: expect.stringContaining('p99 doubled') })
    expect(w.rollout.waitingNow()).toMatchObject({ id: 'r-2.0.0', rule: 'paused' })
    w.paused.delete('r-2.0.0')
    w.view.length = 0
    await w.rollout.tick()
    expect(w.switches).toEqual(['upgrade 1.0.0 -> 2.0.0'])
  })

  it('with the newest paused, an older release goes first; the beat names the one chosen', async () => {
    const w = world([entry('1.0.0', 'active'), entry('1.5.0', 'staged', { schedule: [{ rule: 'approve' }] }), entry('2.0.0', 'staged')], '1.0.0')
    w.paused.set('r-2.0.0', 'paused by the publishers')
    await w.rollout.tick()
    expect(w.rollout.waitingOn('r-1.5.0')?.rule).toBe('approve')
    expect(w.rollout.waitingOn('r-2.0.0')?.rule).toBe('paused')
    expect(w.rollout.waitingNow()).toMatchObject({ id: 'r-1.5.0', rule: 'approve' })
  })

  it('every staged release it passes over says why: a newer one goes first, its upgrades range, or not newer than what runs', async () => {
    const w = world([entry('1.0.0', 'active'), entry('1.1.0', 'staged'), entry('1.2.0', 'staged', { schedule: [{ rule: 'approve' }] }), entry('3.0.0', 'staged', { upgrades: '^2.0.0' })], '1.0.0')
    await w.rollout.tick()
    expect(w.rollout.waitingOn('r-1.2.0')?.rule).toBe('approve')
    expect(w.rollout.waitingOn('r-1.1.0')).toMatchObject({ rule: 'newer', reason: '1.2.0 is newer and goes first' })
    expect(w.rollout.waitingOn('r-3.0.0')).toMatchObject({ rule: 'upgrades', reason: expect.stringContaining('^2.0.0') })
    expect(w.entries[1]?.state).toBe('staged')
    const past = world([entry('1.5.0', 'staged'), entry('2.0.0', 'active')], '2.0.0')
    await past.rollout.tick()
    expect(past.rollout.waitingOn('r-1.5.0')).toMatchObject({ rule: 'older', reason: expect.stringContaining('2.0.0') })
    for (const e of [...w.entries, ...past.entries].filter(x => x.state === 'staged' || x.state === 'waiting')) {
      expect((w.rollout.waitingOn(e.id) ?? past.rollout.waitingOn(e.id))?.reason, e.id).toBeTruthy()
    }
  })

  it('a release whose upgrading mark could not be written (a full disk) is staged again and switched to once the disk has room', async () => {
    // found by `npm run chaos -- --seed 7`: the book changes in memory before it writes, so a
    // failed write left 2.0.0 "upgrading" with no switch running, never decided again
    const w = world([entry('1.0.0', 'active'), entry('2.0.0', 'staged')], '1.0.0')
    w.unwritable.add('upgrading')
    await w.rollout.tick()
    expect(w.switches).toEqual([])
    expect(w.entries[1]?.state).toBe('staged')
    w.unwritable.clear()
    await w.rollout.tick()
    expect(w.switches).toEqual(['upgrade 1.0.0 -> 2.0.0'])
  })

  it('a peer that joined with no code waits on "join" before its first install until joinWait says enough peers answered', async () => {
    let answered = 1
    const w = world([entry('1.0.0', 'staged'), entry('2.0.0', 'staged')], null, undefined, () => answered >= 2 ? undefined : `${answered} of the 2 peers answered`)
    await w.rollout.tick()
    expect(w.rollout.waitingOn('r-2.0.0')).toEqual({ rule: 'join', reason: '1 of the 2 peers answered' })
    expect(w.entries[1]?.state).toBe('waiting')
    // a revocation heard meanwhile takes the newest out of the choice
    w.revoked.add('r-2.0.0')
    const newest = w.entries[1]
    if (newest != null) newest.state = 'revoked'
    answered = 2
    await w.rollout.tick()
    // the install of 1.0.0 was tried (this world launches no app: it fails, saying so)
    expect(w.entries[0]).toMatchObject({ state: 'failed', reason: 'no app is launched in this test' })
    expect(w.entries[1]?.state).toBe('revoked')
  })
})

function failedOn (id: string): ViewEntry {
  return {
    peerId: '12D3KooWother',
    seen: NOW,
    beat: { v: 1, seq: 1, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [], since: NOW - 1000, protocol: 1, upgrading: null, claim: null, failed: [id], waiting: null }
  }
}
