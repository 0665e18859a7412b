/**
 * The upload share on its own (a clock and the connected set injected): a large block sent
 * to one peer is left to that peer once per other asker, while it is connected and for
 * `shareMs`; a block this peer itself just fetched is passed on to every asker.
 */
import { describe, expect, it } from 'vitest'
import { SHARE_MIN_BYTES, UploadShare } from '../../src/net/upload-share.js'

const BIG = SHARE_MIN_BYTES

function share (connected = new Set(['x', 'y', 'z'])): { share: UploadShare, clock: { now: number } } {
  const clock = { now: 1000 }
  return { share: new UploadShare({ connected: p => connected.has(p), shareMs: 30_000, now: () => clock.now }), clock }
}

describe('the upload share', () => {
  it('leaves a block sent to one peer to it: another asker is told once, then served', () => {
    const { share: s } = share()
    expect(s.leaveToOthers('b', 'x', BIG)).toBe(false)
    s.sent('b', 'x', BIG)
    expect(s.leaveToOthers('b', 'y', BIG)).toBe(true)
    expect(s.leaveToOthers('b', 'y', BIG)).toBe(false)
    // the peer it went to is served again, and small blocks are never left to others
    expect(s.leaveToOthers('b', 'x', BIG)).toBe(false)
    s.sent('s', 'x', BIG - 1)
    expect(s.leaveToOthers('s', 'z', BIG - 1)).toBe(false)
  })

  it('serves once the share is over, or when the peer it went to has left', () => {
    const connected = new Set(['x', 'y', 'z'])
    const { share: s, clock } = share(connected)
    s.sent('b', 'x', BIG)
    clock.now += 30_000
    expect(s.leaveToOthers('b', 'y', BIG)).toBe(false)
    s.sent('c', 'x', BIG)
    connected.delete('x')
    expect(s.leaveToOthers('c', 'z', BIG)).toBe(false)
  })

  it('passes a block it just fetched on to every asker: only a seed leaves blocks to others', () => {
    const { share: s, clock } = share()
    s.fetched('b')
    s.sent('b', 'x', BIG)
    expect(s.leaveToOthers('b', 'y', BIG)).toBe(false)
    expect(s.leaveToOthers('b', 'z', BIG)).toBe(false)
    // long after it came, this peer holds it as a seed does
    clock.now += 30_000
    s.sent('b', 'x', BIG)
    expect(s.leaveToOthers('b', 'y', BIG)).toBe(true)
  })
})
