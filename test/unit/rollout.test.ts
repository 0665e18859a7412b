/**
 * The rollout's decisions on one peer, with its collaborators stubbed through its
 * components object: which release is next (the newest staged one whose `upgrades`
 * range holds the running version, step by step), what a waiting release waits on, and
 * when the switch is handed to the upgrade engine.
 */
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.js'
import type { NodeState } from '../../src/daemon/node-state.js'
import type { ViewEntry } from '../../src/net/index.js'
import { Rollout } from '../../src/daemon/rollout.js'
import type { RolloutComponents } from '../../src/daemon/rollout.js'
import { parseManifest } from '../../src/package/index.js'
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
}

function world (entries: ReleaseEntry[], running: string, previous?: string): World {
  const switches: string[] = []
  const approved = new Set<string>()
  const held = new Set<string>()
  const revoked = new Set<string>()
  const paused = new Map<string, string>()
  const view: ViewEntry[] = []
  let state: NodeState = { app: 'kv', current: { id: `r-${running}`, version: running }, previous: previous == null ? null : { id: `r-${previous}`, version: previous }, since: NOW - 60_000 }
  const installed = async (id: string): Promise<InstalledRelease | undefined> => {
    const e = entries.find(x => x.id === id)
    return e == null ? undefined : { id, app: 'kv', version: e.signed.record.version, packageDir: `/nowhere/${id}`, manifest: parseManifest(e.signed.record.manifest) }
  }
  const components: RolloutComponents = {
    dataDir: { packages: '/nowhere/packages', states: '/nowhere/state' },
    book: {
      get: id => entries.find(e => e.id === id),
      list: () => entries,
      isRevoked: id => revoked.has(id),
      setState: async (id, s, reason) => {
        const e = entries.find(x => x.id === id)
        if (e != null) { e.state = s; if (reason != null) e.reason = reason }
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
    paused: (app, id) => app === 'kv' ? paused.get(id) : undefined
  }
  return { rollout: new Rollout(components, { policy: [], labels: {}, settleMs: 10 }), entries, switches, approved, held, revoked, paused, view }
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
})
