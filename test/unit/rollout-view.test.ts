/**
 * `upgossip rollout status`'s pure parts: the rollout view computed from a status (target
 * choice, counts, each peer's waiting rule, progress and failures), its text, the
 * `APP@VERSION` argument, and peer ids as people type them.
 */
import { describe, expect, it } from 'vitest'
import type { DaemonStatus, NetworkPeerStatus, ReleaseStatus } from '../../src/daemon/index.js'
import { chooseTarget, rolloutView } from '../../src/daemon/rollout-view.js'
import { parseRolloutTarget, renderRollout } from '../../src/cli/commands/rollout.js'
import { printable } from '../../src/cli/output.js'
import { AmbiguousPeerError, UnknownPeerError, editDistance, knownPeers, resolvePeerId, shortPeerId } from '../../src/cli/peer-ids.js'

const SELF = '12D3KooWSg1Xba142m15c1DbekvDArmCAGPfTLDGp6zHZAPE16YF'
const B = '12D3KooWRfYU5FaY9SmJcRD5Ax7Bp9hdGa4Lq6YpB3nR1iQmVYtx'
const C = '12D3KooWRfYU5FbZqkJ2dL7u6v7xNHq3hG3vmf8iBuJYm8wKPz2C'
const D = '12D3KooWLmN2o3P4q5R6s7T8u9V1w2X3y4Z5a6B7c8D9e1F2g3H4'

function release (version: string, state: ReleaseStatus['state'], over: Partial<ReleaseStatus> = {}): ReleaseStatus {
  return { id: `bafy-kv-${version}`, app: 'kv', version, state, have: 1000, size: 1000, signers: 1, expires: '2027-01-01T00:00:00Z', ...over }
}

function peer (peerId: string, version: string | null, over: Partial<NetworkPeerStatus> = {}): NetworkPeerStatus {
  return { peerId, app: 'kv', version, state: 'running', labels: {}, seen: '2026-06-01T00:00:00Z', connected: true, addrs: [], held: [], failed: [], ...over }
}

function status (over: Partial<DaemonStatus> = {}): DaemonStatus {
  return {
    peerId: SELF,
    app: 'kv',
    version: '2.0.0',
    state: 'running',
    labels: {},
    build: '0.2.0 (abcdef1)',
    networkName: 'default',
    multiaddrs: [],
    connections: 3,
    freshness: { frozen: false } as DaemonStatus['freshness'],
    trust: {},
    releases: [release('1.0.0', 'superseded'), release('2.0.0', 'active')],
    network: [],
    ...over
  }
}

describe('rollout view', () => {
  it('counts every peer of the app by the version it runs, this one included, and says what each waits on and holds of the target', () => {
    const s = status({
      network: [
        peer(B, '1.0.0', { held: [{ id: 'bafy-kv-1.0.0', have: 1000, size: 1000 }, { id: 'bafy-kv-2.0.0', have: 1000, size: 1000 }], waiting: { id: 'bafy-kv-2.0.0', on: 'approve', reason: 'waits for "upgossip approve"' } }),
        peer(C, '1.0.0', { held: [{ id: 'bafy-kv-2.0.0', have: 250, size: 1000 }], waiting: { id: 'bafy-kv-2.0.0', on: 'hold' }, failed: ['bafy-kv-1.5.0'] }),
        peer(D, '3.1.0', { app: 'store', held: [] })
      ]
    })
    const view = rolloutView(s)
    expect(view).toMatchObject({ app: 'kv', target: '2.0.0', targetId: 'bafy-kv-2.0.0', counts: { '2.0.0': 1, '1.0.0': 2 } })
    // newest first, so a reader sees where the rollout goes
    expect(Object.keys(view.counts)).toEqual(['2.0.0', '1.0.0'])
    expect(view.peers.map(p => p.peerId)).toEqual([SELF, B, C, D])
    expect(view.peers[0]).toMatchObject({ self: true, version: '2.0.0', have: 1000, size: 1000 })
    expect(view.peers[1]).toMatchObject({ waitingOn: 'approve', reason: 'waits for "upgossip approve"', waitingFor: '2.0.0', have: 1000, size: 1000 })
    // a release this peer does not know is named by its id
    expect(view.peers[2]).toMatchObject({ waitingOn: 'hold', have: 250, size: 1000, failed: ['bafy-kv-1.5.0'] })
    // another app's peer: listed, not counted, no progress on kv's target
    expect(view.peers[3]).not.toHaveProperty('have')
    // APP filters the peers
    expect(rolloutView(s, { app: 'kv', only: true }).peers.map(p => p.peerId)).toEqual([SELF, B, C])
    expect(rolloutView(s, { app: 'store', only: true })).toMatchObject({ app: 'store', target: null, counts: { '3.1.0': 1 }, peers: [{ peerId: D }] })
  })

  it('this peer says what it waits on and what failed on it from its own releases', () => {
    const s = status({ version: '1.0.0', releases: [release('1.0.0', 'active'), release('2.0.0', 'waiting', { waitingOn: 'canary', reason: 'not a canary', have: 10 }), release('2.1.0', 'failed', { reason: 'crashed' })] })
    const view = rolloutView(s)
    expect(view.target).toBe('2.0.0')
    expect(view.peers[0]).toMatchObject({ waitingOn: 'canary', reason: 'not a canary', waitingFor: '2.0.0', have: 10, size: 1000, failed: ['2.1.0'] })
    expect(renderRollout(view).join('\n')).toMatch(/canary: not a canary/)
  })

  it('the target is the newest release that may still roll out, or the version asked for', () => {
    const releases = [release('1.0.0', 'superseded'), release('2.0.0', 'active'), release('2.0.2', 'failed'), release('10.0.0', 'revoked'), release('2.0.1', 'staged')]
    expect(chooseTarget(releases, 'kv')?.version).toBe('2.0.1')
    expect(chooseTarget(releases, 'kv', '2.0.2')?.release?.id).toBe('bafy-kv-2.0.2')
    // a version not known here yet is still a target (no sizes)
    expect(chooseTarget(releases, 'kv', '3.0.0')).toEqual({ version: '3.0.0' })
    expect(chooseTarget(releases, 'other')).toBeNull()
    expect(chooseTarget(releases, null)).toBeNull()
    // a peer that joins with no version counts as "none"
    expect(rolloutView(status({ version: null, state: 'installing', releases: [] })).counts).toEqual({ none: 1 })
  })

  it('text: a heading with the counts and one row per peer with the short id', () => {
    const lines = renderRollout(rolloutView(status({ network: [peer(B, '1.0.0', { waiting: { id: 'bafy-kv-2.0.0', on: 'approve' } })] })))
    expect(lines[0]).toBe('rollout of kv to 2.0.0 (bafy-kv-2.0.0)')
    expect(lines[1]).toMatch(/2\.0\.0 ×1, 1\.0\.0 ×1 +\(2 peers of kv\)/)
    expect(lines.find(l => l.startsWith(shortPeerId(SELF)))).toMatch(/\* +kv +2\.0\.0 +running +100%/)
    expect(lines.find(l => l.startsWith(shortPeerId(B)))).toMatch(/1\.0\.0 +running +0% .* approve$/)
  })

  it('every peer says the upgossip build its daemon runs (from its beats; this peer from its status), and "-" for one whose beats do not say', () => {
    const view = rolloutView(status({ network: [peer(B, '1.0.0', { build: '0.1.0 (1a2b3c4)' }), peer(C, '1.0.0')] }))
    expect(view.peers.map(p => p.build)).toEqual(['0.2.0 (abcdef1)', '0.1.0 (1a2b3c4)', undefined])
    const lines = renderRollout(view)
    expect(lines[3]).toMatch(/^PEER +APP +VERSION +STATE +TARGET +FAILED +UPGOSSIP +WAITING ON$/)
    // the column before WAITING ON ("-": waiting on nothing)
    expect(lines.find(l => l.startsWith(shortPeerId(SELF)))).toMatch(/ 0\.2\.0 \(abcdef1\) +-$/)
    expect(lines.find(l => l.startsWith(shortPeerId(B)))).toMatch(/ 0\.1\.0 \(1a2b3c4\) +-$/)
    expect(lines.find(l => l.startsWith(shortPeerId(C)))).toMatch(/ -  +-$/)
  })

  it('a staged release passed over (older, newer) is not something this peer waits on', () => {
    const s = status({ releases: [release('1.5.0', 'staged', { waitingOn: 'older', reason: 'not newer than 2.0.0' }), release('2.0.0', 'active')] })
    const self = rolloutView(s).peers[0]
    expect(self?.waitingOn).toBeUndefined()
    expect(self?.waitingFor).toBeUndefined()
  })

  it('text: control characters from other peers\' beats never reach the terminal', () => {
    const hostile = '2.0.0\u001b[2A\u001b[J\u009b31m'
    const lines = renderRollout(rolloutView(status({ network: [peer(B, hostile, { state: 'running\u0007', waiting: { id: 'bafy-kv-2.0.0', on: 'approve', reason: 'ok\u001b]0;owned\u0007' } })] })))
    // eslint-disable-next-line no-control-regex
    for (const line of lines) expect(line).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/)
    expect(lines.find(l => l.startsWith(shortPeerId(B)))).toContain('2.0.0?[2A?[J?31m')
    expect(printable('a\tb\u0000c\u007f')).toBe('a\tb?c?')
  })

  it('APP@VERSION', () => {
    expect(parseRolloutTarget(undefined)).toEqual({})
    expect(parseRolloutTarget('kv')).toEqual({ app: 'kv' })
    expect(parseRolloutTarget('kv@2.0.0')).toEqual({ app: 'kv', version: '2.0.0' })
    expect(() => parseRolloutTarget('kv@')).toThrow(/APP@VERSION/)
    expect(() => parseRolloutTarget('@2.0.0')).toThrow(/APP@VERSION/)
  })
})

describe('peer ids as people type them', () => {
  const known = knownPeers(status({ network: [peer(B, '1.0.0'), peer(C, '1.0.0'), peer(D, '3.1.0', { app: 'store' })] }))

  it('the full id, a unique prefix of 8 or more, or the short form status prints', () => {
    expect(resolvePeerId(B, known)).toBe(B)
    expect(resolvePeerId('12D3KooWSg1X', known)).toBe(SELF)
    expect(resolvePeerId('12D3KooWRfYU5Fb', known)).toBe(C)
    expect(resolvePeerId(shortPeerId(C), known)).toBe(C)
    expect(shortPeerId(C)).toBe('12D3KooWRf…wKPz2C')
    expect(resolvePeerId('12D3KooWRf...wKPz2C', known)).toBe(C)
    expect(resolvePeerId(` ${D} `, known)).toBe(D)
  })

  it('an ambiguous id lists the peers it matches', () => {
    const err = catchError(() => resolvePeerId('12D3KooWRfYU', known))
    expect(err).toBeInstanceOf(AmbiguousPeerError)
    expect(err.message).toContain(B)
    expect(err.message).toContain(C)
    expect(err.message).not.toContain(SELF)
    // every Ed25519 peer id starts with 12D3KooW
    expect(catchError(() => resolvePeerId('12D3KooW', known))).toBeInstanceOf(AmbiguousPeerError)
  })

  it('an unknown id lists the closest known peers, a typo first', () => {
    const typo = `${B.slice(0, 20)}X${B.slice(21, 30)}`
    const err = catchError(() => resolvePeerId(typo, known))
    expect(err).toBeInstanceOf(UnknownPeerError)
    expect(err.message.split('closest known: ')[1]?.startsWith(B)).toBe(true)
    expect(err.message).toContain('(kv 1.0.0)')
    const short = catchError(() => resolvePeerId('12D3', known))
    expect(short).toBeInstanceOf(UnknownPeerError)
    expect(short.message).toMatch(/too short/)
    expect(catchError(() => resolvePeerId('QmNotAPeerAtAll', [])).message).toMatch(/heard of no other peer/)
  })

  it('edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3)
    expect(editDistance('', 'abc')).toBe(3)
    expect(editDistance('abc', 'abc')).toBe(0)
  })
})

function catchError (fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected an error')
}
