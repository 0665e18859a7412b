import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import { IDLE_BEATS_TO_EXPIRE, MAX_BEAT_BUILD, MAX_IDLE_BEAT_MS, MAX_WAITING_REASON, MalformedBeatError, NetworkView, beatNow, beatWaiting, cutWaitingReason, decodeBeat, encodeBeat, entryLifetime, idleBeatIntervalFor } from '../../src/net/index.js'
import type { StatusBeat } from '../../src/net/index.js'

/** A beat as a peer of the first release sent it: none of the optional fields. */
const OLD_BEAT = {
  v: 1,
  seq: 7,
  app: 'kv',
  version: '1.0.0',
  state: 'running',
  labels: { zone: 'a' },
  addrs: ['/ip4/127.0.0.1/tcp/4001'],
  heads: { kv: 'bafyhead' },
  held: [{ id: 'bafyv1', have: 498, size: 498 }]
}

const withWaiting = (waiting: unknown): Uint8Array => dagCbor.encode({ ...OLD_BEAT, waiting })

describe('status beats', () => {
  it('an older peer\'s beat, without the optional fields, still parses', () => {
    const beat = decodeBeat(dagCbor.encode(OLD_BEAT))
    expect(beat.version).toBe('1.0.0')
    expect(beat.waiting).toBeUndefined()
    expect(beat.failed).toBeUndefined()
  })

  it('carries the release a peer waits for and the rule it waits on', () => {
    const beat: StatusBeat = { ...OLD_BEAT, state: 'running', waiting: { id: 'bafyv2', on: 'halt-on-failures', reason: '1 peer reported 2.0.0 failed' }, failed: ['bafyv0'] }
    const back = decodeBeat(encodeBeat(beat))
    expect(back.waiting).toEqual({ id: 'bafyv2', on: 'halt-on-failures', reason: '1 peer reported 2.0.0 failed' })
    expect(decodeBeat(withWaiting(null)).waiting).toBeNull()
    expect(decodeBeat(withWaiting({ id: 'bafyv2', on: 'approve' })).waiting).toEqual({ id: 'bafyv2', on: 'approve' })
  })

  it('refuses a waiting field out of bounds or of the wrong shape', () => {
    const bad: unknown[] = [
      'approve',
      { id: 'bafyv2' },
      { on: 'approve' },
      { id: 'bafyv2', on: '' },
      { id: 'bafyv2', on: 'x'.repeat(65) },
      { id: 'bafyv2', on: 'Approve' },
      { id: 'bafyv2', on: 'approve <script>' },
      { id: 'bafyv2', on: 'approve', reason: 'r'.repeat(MAX_WAITING_REASON + 1) },
      { id: 'b'.repeat(129), on: 'approve' },
      { id: 7, on: 'approve' }
    ]
    for (const waiting of bad) expect(() => decodeBeat(withWaiting(waiting)), JSON.stringify(waiting)).toThrow(MalformedBeatError)
    // the longest allowed values pass
    expect(decodeBeat(withWaiting({ id: 'b'.repeat(128), on: 'a'.repeat(64), reason: 'r'.repeat(MAX_WAITING_REASON) })).waiting?.on).toHaveLength(64)
  })

  it('carries the upgossip build of the peer\'s daemon; a beat without one (an older daemon\'s) still parses', () => {
    expect(decodeBeat(dagCbor.encode(OLD_BEAT)).build).toBeUndefined()
    expect(decodeBeat(encodeBeat({ ...OLD_BEAT, build: '0.1.0 (1a2b3c4)' } as StatusBeat)).build).toBe('0.1.0 (1a2b3c4)')
    expect(decodeBeat(dagCbor.encode({ ...OLD_BEAT, build: '0.1.0 (unknown)' })).build).toBe('0.1.0 (unknown)')
    expect(decodeBeat(dagCbor.encode({ ...OLD_BEAT, build: 'b'.repeat(MAX_BEAT_BUILD) })).build).toHaveLength(MAX_BEAT_BUILD)
    // the other way, an older daemon drops the key it does not know (next test), so this build's beats stay valid to it
  })

  it('refuses a build that is too long, empty, not a string or not printable ASCII, naming the field', () => {
    for (const build of ['b'.repeat(MAX_BEAT_BUILD + 1), '', 7, null, '0.1.0\n(1a2b3c4)', '0.1.0 \u001b[31m(x)', '0.1.0 (é)']) {
      expect(() => decodeBeat(dagCbor.encode({ ...OLD_BEAT, build })), JSON.stringify(build)).toThrow(MalformedBeatError)
    }
    expect(() => decodeBeat(dagCbor.encode({ ...OLD_BEAT, build: 'b'.repeat(MAX_BEAT_BUILD + 1) }))).toThrow(/"build"/)
  })

  it('keys this build does not know (a newer build\'s) are dropped, not refused', () => {
    const newer = decodeBeat(dagCbor.encode({ ...OLD_BEAT, colour: 'blue', waiting: { id: 'bafyv2', on: 'approve', eta: 5 }, held: [{ id: 'bafyv2', have: 1, size: 2, peers: 3 }] }))
    expect(newer).not.toHaveProperty('colour')
    expect(newer.waiting).toEqual({ id: 'bafyv2', on: 'approve' })
    expect(newer.held).toEqual([{ id: 'bafyv2', have: 1, size: 2 }])
    // known keys are still checked
    expect(() => decodeBeat(dagCbor.encode({ ...OLD_BEAT, colour: 'blue', seq: -1 }))).toThrow(MalformedBeatError)
  })

  it('a long reason is cut to fit, never splitting a character', () => {
    expect(cutWaitingReason('short')).toBe('short')
    for (const reason of ['x'.repeat(1000), '😀'.repeat(300), 'x' + '😀'.repeat(300)]) {
      const cut = cutWaitingReason(reason)
      expect(cut.length).toBeLessThanOrEqual(MAX_WAITING_REASON)
      expect(cut.endsWith('…')).toBe(true)
      expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/)
      expect(decodeBeat(withWaiting({ id: 'bafyv2', on: 'rolling', reason: cut })).waiting?.reason).toBe(cut)
    }
  })

  it('this peer\'s own waiting field never holds a value the schema refuses', () => {
    expect(beatWaiting('bafyv2', 'rolling', 'r'.repeat(1000))?.reason).toHaveLength(MAX_WAITING_REASON)
    expect(beatWaiting('bafyv2', 'Not A Rule')).toBeNull()
    expect(beatWaiting('bafyv2', 'approve')).toEqual({ id: 'bafyv2', on: 'approve' })
  })

  it('the idle interval grows with the view so that the network keeps to its idle beat rate, within bounds', () => {
    // 10 peers at 0.5 beats/s: 20 s, the floor; 50 peers: 100 s; 1000 peers: 2000 s, cut to the ceiling
    expect(idleBeatIntervalFor(10, 20_000, 0.5)).toBe(20_000)
    expect(idleBeatIntervalFor(50, 20_000, 0.5)).toBe(100_000)
    expect(idleBeatIntervalFor(1000, 20_000, 0.5)).toBe(MAX_IDLE_BEAT_MS)
    expect(idleBeatIntervalFor(50, 20_000, 5)).toBe(20_000)
    // the network's idle beats per second (peers ÷ interval) stay at or below the rate once past the floor
    for (const peers of [40, 64, 100, 300]) expect(peers / (idleBeatIntervalFor(peers, 20_000, 0.5) / 1000)).toBeLessThanOrEqual(0.5)
  })

  it('a peer that announced a long idle interval stays in view for three of them; one that announced none, for peerTimeout', () => {
    const view = new NetworkView()
    const quiet: StatusBeat = { ...(OLD_BEAT as StatusBeat), idle: 100_000 }
    view.update('quiet', quiet, 0)
    view.update('old', OLD_BEAT as StatusBeat, 0)
    view.update('short', { ...(OLD_BEAT as StatusBeat), idle: 5000 }, 0)
    expect(entryLifetime(quiet, 60_000)).toBe(IDLE_BEATS_TO_EXPIRE * 100_000)
    expect(view.allAnnounceIdle()).toBe(false)
    expect(view.expire(60_000, 60_000)).toEqual([])
    expect(view.expire(60_001, 60_000).sort()).toEqual(['old', 'short'])
    expect(view.allAnnounceIdle()).toBe(true)
    expect(view.expire(300_000, 60_000)).toEqual([])
    expect(view.expire(300_001, 60_000)).toEqual(['quiet'])
  })

  it('refuses an idle interval out of bounds', () => {
    for (const idle of [-1, 1.5, MAX_IDLE_BEAT_MS + 1, '100', null]) expect(() => decodeBeat(dagCbor.encode({ ...OLD_BEAT, idle })), String(idle)).toThrow(MalformedBeatError)
    expect(decodeBeat(dagCbor.encode({ ...OLD_BEAT, idle: MAX_IDLE_BEAT_MS })).idle).toBe(MAX_IDLE_BEAT_MS)
  })

  it('a tick beats on a change at once, on progress alone at most ten times per interval, and idle never later than the last beat promised', () => {
    const base = { body: 'a', steady: 'a', lastBody: 'a', lastSteady: 'a', since: 1000, idle: 100_000, lastIdle: 100_000, slack: 2500 }
    // nothing changed: silent until the idle interval (less half a tick) has passed
    expect(beatNow(base)).toBe(false)
    expect(beatNow({ ...base, since: 97_499 })).toBe(false)
    expect(beatNow({ ...base, since: 97_500 })).toBe(true)
    // a change of status goes out at once
    expect(beatNow({ ...base, body: 'b', steady: 'b' })).toBe(true)
    // progress alone (the steady body the same): not before a tenth of the interval
    expect(beatNow({ ...base, body: 'b' })).toBe(false)
    expect(beatNow({ ...base, body: 'b', since: 7500 })).toBe(true)
    // at the default 20 s interval a tenth is under half a tick: progress goes out every tick
    expect(beatNow({ ...base, body: 'b', idle: 20_000, lastIdle: 20_000 })).toBe(true)
    // the interval grew since the last beat (the view grew, or its last old daemon left):
    // others expect a beat within the 20 s the last one announced, not the new 100 s
    expect(beatNow({ ...base, lastIdle: 20_000, since: 17_500 })).toBe(true)
    expect(beatNow({ ...base, lastIdle: 20_000, since: 17_499 })).toBe(false)
    // before any beat (nothing announced), a tick beats
    expect(beatNow({ ...base, lastIdle: 0 })).toBe(true)
  })
})
