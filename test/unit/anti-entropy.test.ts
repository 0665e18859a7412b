/**
 * Anti-entropy's count of peers that answered a sync in full, which a peer that joined
 * with no code waits on before its first install (`joinPeers`): an answer with a forged
 * frame, or a sync that failed, does not count, and a peer counts once.
 */
import { describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.js'
import { AntiEntropy } from '../../src/daemon/anti-entropy.js'
import type { AntiEntropyComponents } from '../../src/daemon/anti-entropy.js'
import type { IntakeVerdict } from '../../src/daemon/admission.js'
import { UpgossipError } from '../../src/errors.js'
import { peerIdFromString } from '../../src/net/index.js'
import { TrustPolicy } from '../../src/release/index.js'

const PEERS = [
  '12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8',
  '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq',
  '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
].map(id => peerIdFromString(id))

/** Frames are named for the verdict admission gives them; `fail` makes the sync itself fail. */
function antiEntropy (answers: Map<string, string[] | 'fail'>): AntiEntropy {
  const components: AntiEntropyComponents = {
    node: { getPeers: () => [], addEventListener: () => {}, removeEventListener: () => {} },
    sync: {
      sync: async peer => {
        const answer = answers.get(peer.toString()) ?? []
        if (answer === 'fail') throw new Error('stream reset')
        return answer.map(kind => new TextEncoder().encode(kind))
      }
    },
    admission: {
      take: async bytes => {
        const kind = new TextDecoder().decode(bytes)
        const verdict: IntakeVerdict = kind === 'rejected' || kind === 'ignored'
          ? { kind, reason: kind, error: new UpgossipError(kind) }
          : { kind: 'new', id: kind }
        return { verdict, rotated: false, retry: false }
      }
    },
    book: { get: () => undefined, revocations: () => [], atOrAbove: () => [] },
    trustStore: { policy: TrustPolicy.parse({ apps: { kv: { publishers: ['z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'], threshold: 1 } } }), rotations: () => [] },
    nodeState: { floor: () => undefined },
    turnedDown: { has: () => false },
    events: { info: () => {} },
    metrics: { sync: () => {} },
    clock: fixedClock(0)
  }
  return new AntiEntropy(components)
}

describe('anti-entropy: peers that answered', () => {
  it('counts each peer whose answer was taken in whole (ignored frames and empty answers too), once; not a forged answer nor a failed sync', async () => {
    const [honest, empty, liar] = PEERS as [typeof PEERS[0], typeof PEERS[0], typeof PEERS[0]]
    const answers = new Map<string, string[] | 'fail'>([
      [honest.toString(), ['revocation', 'ignored', 'release']],
      [empty.toString(), []],
      [liar.toString(), ['release', 'rejected', 'release']]
    ])
    const ae = antiEntropy(answers)
    expect(ae.answered()).toBe(0)
    await ae.syncWith(liar)
    expect(ae.answered()).toBe(0)
    await ae.syncWith(honest)
    await ae.syncWith(honest)
    expect(ae.answered()).toBe(1)
    answers.set(empty.toString(), 'fail')
    await ae.syncWith(empty)
    expect(ae.answered()).toBe(1)
    answers.set(empty.toString(), [])
    await ae.syncWith(empty)
    expect(ae.answered()).toBe(2)
  })
})
