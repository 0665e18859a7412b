/**
 * The status projection: what `GET /status`, beats and metrics show, computed from the
 * parts' state and changing nothing. Its collaborators are stubs handed in through its
 * components object.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.js'
import { StatusChanges } from '../../src/daemon/changes.js'
import { Downloads } from '../../src/daemon/downloads.js'
import { DaemonMetrics } from '../../src/daemon/metrics.js'
import type { NodeState } from '../../src/daemon/node-state.js'
import { StatusProjection } from '../../src/daemon/status.js'
import type { StatusComponents } from '../../src/daemon/status.js'
import type { TimelineSample } from '../../src/daemon/version-timeline.js'
import type { ViewEntry } from '../../src/net/index.js'
import { TrustPolicy, summarize } from '../../src/release/index.js'
import type { ReleaseEntry, ReleaseState } from '../../src/release/index.js'

const NOW = Date.parse('2026-06-01T00:00:00Z')
const PKG = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

function entry (version: string, state: ReleaseState, size = 1000): ReleaseEntry {
  return {
    id: `r-${version}`,
    state,
    admitted: new Date(NOW).toISOString(),
    signed: { record: { app: 'kv', version, previous: null, package: PKG, size, manifest: { app: 'kv', version, main: 'server.js', protocol: 1 }, issued: new Date(NOW).toISOString(), expires: new Date(NOW + 1000).toISOString() }, signatures: [] }
  }
}

function beatOf (app: string, version: string): ViewEntry['beat'] {
  return { v: 1, seq: 1, app, version, state: 'running', labels: {}, addrs: [], heads: {}, held: [], since: null, protocol: 1, upgrading: null, claim: null, failed: [], waiting: null }
}

async function projection (over: Partial<StatusComponents> & { entries: ReleaseEntry[], view?: ViewEntry[], state?: NodeState }): Promise<{ status: StatusProjection, self: string, metrics: DaemonMetrics, changes: StatusChanges, downloads: Downloads }> {
  const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const metrics = new DaemonMetrics()
  const changes = new StatusChanges()
  const downloads = new Downloads()
  const { entries, view, state: given, ...rest } = over
  const state: NodeState = given ?? { app: 'kv', current: { id: 'r-1.0.0', version: '1.0.0' }, previous: null, since: NOW }
  const components: StatusComponents = {
    node: { getPeers: () => [], getMultiaddrs: () => [multiaddr(`/ip4/10.0.0.1/tcp/4001/p2p/${peerId.toString()}`), multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${peerId.toString()}`)], peerId },
    nodeState: { state },
    book: { summaries: () => entries.map(e => summarize(e.id, e.signed, e)), summary: id => { const e = entries.find(x => x.id === id); return e == null ? undefined : summarize(e.id, e.signed, e) } },
    downloads,
    view: { list: () => view ?? [] },
    trustStore: { policy: TrustPolicy.parse({ apps: {} }) },
    freshness: { status: () => ({ lastStatus: null, lastRelease: null, frozen: false, freezeAfterMs: 60_000 }) },
    waitingOn: () => undefined,
    pauseOf: () => undefined,
    failedReason: () => undefined,
    switchStep: () => undefined,
    appProcess: () => undefined,
    changes,
    metrics,
    clock: fixedClock(NOW),
    ...rest
  }
  return { status: new StatusProjection(components, { labels: { zone: 'a' }, network: 'default', build: '0.1.0 (1a2b3c4)' }), self: peerId.toString(), metrics, changes, downloads }
}

describe('the status projection', () => {
  it('names the peer state from the parts: failed, rolling back, upgrading, installing, running', async () => {
    const cases: Array<[Partial<StatusComponents>, NodeState | undefined, string]> = [
      [{ failedReason: () => 'crashed 5 times' }, undefined, 'failed'],
      [{ switchStep: () => 'rollback' }, undefined, 'rolling-back'],
      [{ switchStep: () => 'transform' }, undefined, 'upgrading'],
      [{}, { app: 'kv', current: null, previous: null, since: null }, 'installing'],
      [{}, undefined, 'running']
    ]
    for (const [over, state, expected] of cases) {
      const { status } = await projection({ entries: [], ...over, ...(state == null ? {} : { state }) })
      expect(status.peerState()).toBe(expected)
    }
  })

  it('shows each release with what is held of it, why it waits or is paused, and lists loopback addresses first', async () => {
    const { status, downloads } = await projection({
      entries: [entry('1.0.0', 'active'), entry('2.0.0', 'fetching', 4000), entry('3.0.0', 'waiting')],
      waitingOn: id => id === 'r-3.0.0' ? { rule: 'approve', reason: 'waits for "upgossip approve"' } : undefined
    })
    downloads.setHave('r-2.0.0', 1500)
    downloads.setPaused('r-2.0.0', 'DiskFullError: no space left')
    const s = status.status()
    expect(s.releases.map(r => [r.version, r.state, r.have, r.size])).toEqual([['1.0.0', 'active', 1000, 1000], ['2.0.0', 'fetching', 1500, 4000], ['3.0.0', 'waiting', 1000, 1000]])
    expect(s.releases[1]?.reason).toBe('DiskFullError: no space left')
    expect(s.releases[2]).toMatchObject({ waitingOn: 'approve', reason: 'waits for "upgossip approve"' })
    expect(s.multiaddrs[0]).toMatch(/^\/ip4\/127\.0\.0\.1\//)
    expect(s).toMatchObject({ app: 'kv', version: '1.0.0', state: 'running', labels: { zone: 'a' }, networkName: 'default' })
  })

  it('lists the other peers, not this one, and counts releases by state for the metrics when scraped', async () => {
    const view: ViewEntry[] = []
    const { status, self, metrics } = await projection({ entries: [entry('1.0.0', 'active'), entry('2.0.0', 'staged'), entry('2.0.1', 'staged')], view })
    view.push({ peerId: self, seen: NOW, beat: beatOf('kv', '1.0.0') }, { peerId: '12D3KooWother', seen: NOW, beat: beatOf('kv', '2.0.0') })
    expect(status.status().network.map(p => [p.peerId, p.version])).toEqual([['12D3KooWother', '2.0.0']])
    // this daemon's build, and another peer's from its beats only when they carry it
    expect(status.status().build).toBe('0.1.0 (1a2b3c4)')
    expect(status.status().network[0]).not.toHaveProperty('build')
    view.push({ peerId: '12D3KooWnewer', seen: NOW, beat: { ...beatOf('kv', '2.0.0'), build: '0.2.0 (abcdef1)' } })
    expect(status.status().network.find(p => p.peerId === '12D3KooWnewer')?.build).toBe('0.2.0 (abcdef1)')
    const text = await metrics.text()
    expect(text).toContain('upgossip_releases{state="staged"} 2')
    expect(text).toContain('upgossip_releases{state="active"} 1')
  })

  it('adds a timeline sample when the versions of this app\'s peers change, and only then', async () => {
    const view: ViewEntry[] = [{ peerId: '12D3KooWother', seen: NOW, beat: beatOf('kv', '1.0.0') }, { peerId: '12D3KooWstore', seen: NOW, beat: beatOf('store', '9.0.0') }]
    const { status, changes } = await projection({ entries: [], view })
    expect(status.timeline().samples.at(-1)?.versions).toEqual({ '1.0.0': 2 })
    const samples: TimelineSample[] = []
    changes.on('timeline', s => { samples.push(s) })
    changes.emit('status')
    expect(samples).toEqual([])
    view[0] = { peerId: '12D3KooWother', seen: NOW, beat: beatOf('kv', '2.0.0') }
    changes.emit('status')
    expect(samples.map(s => s.versions)).toEqual([{ '1.0.0': 1, '2.0.0': 1 }])
  })
})
