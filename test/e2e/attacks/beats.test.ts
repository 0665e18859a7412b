/**
 * Hostile status beats against real daemons: a flood of beats (valid, malformed and
 * oversized) from a peer written for the test, a Sybil set of peers reporting that a
 * release failed so as to halt its rollout, a Sybil claiming the one slot of a rolling
 * rollout or running a version it does not, and an eclipse that leaves a daemon connected
 * only to a peer that relays nothing (or beats as if it were a network).
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_BEAT_BYTES, createPeerNode, encodeBeat, statusTopic } from '../../../src/net/index.js'
import type { BasePeerNode, StatusBeat } from '../../../src/net/index.js'
import { kvVersion } from '../support/kv-app.js'
import { TestNet, runCli, waitFor } from '../support/testnet.js'

let net: TestNet | undefined
let hostile: BasePeerNode[] = []

afterEach(async () => {
  await Promise.all(hostile.map(async h => { await h.stop() }))
  hostile = []
  await net?.close()
  net = undefined
})

async function hostileNode (): Promise<BasePeerNode> {
  const node = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  hostile.push(node)
  return node
}

function beat (seq: number, fields: Partial<StatusBeat> = {}): Uint8Array {
  return encodeBeat({ v: 1, seq, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [], ...fields })
}

/**
 * How a dial from `node` (no network key) to the private network's peer at `addr` ends:
 * `connected`, or the error's name (with its code, as `Error ECONNREFUSED`).
 */
async function dialOutcome (node: BasePeerNode, addr: string): Promise<string> {
  const failure = await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(5000) }).then(() => undefined, (err: Error & { code?: unknown }) => err)
  // a system error's code names it (ECONNREFUSED); a DOMException's is a number
  return failure == null ? 'connected' : typeof failure.code === 'string' ? `${failure.name} ${failure.code}` : failure.name
}

/**
 * The ways a network key makes a dial without it fail: the TCP connection is made and the
 * handshake behind it does not decrypt — an `EncryptionFailedError`, or, when the bytes
 * the other side sent happen to read as the start of a frame still to come, a handshake
 * that never ends (the dial's deadline). A dial that fails for another reason (nothing
 * listening: `Error ECONNREFUSED`) is not one of them.
 */
const REFUSED_BY_PSK = ['EncryptionFailedError', 'TimeoutError']

async function pskFile (dir: string): Promise<string> {
  const file = path.join(dir, 'swarm.key')
  await fs.writeFile(file, `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`, { mode: 0o600 })
  return file
}

describe('hostile status beats', () => {
  it('a flood of valid, malformed and oversized beats: refused or folded into one view entry; the daemons keep serving', async () => {
    net = await TestNet.create({ minConnections: 1 })
    const v1 = await net.release('1.0.0')
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    const h = await hostileNode()
    const topic = statusTopic('default')
    h.services.pubsub.subscribe(topic)
    await h.dial(multiaddr(a.addr))
    await waitFor('the hostile peer to see a on the status topic', () => h.services.pubsub.getSubscribers(topic).some(p => p.toString() === a.peerId))

    const rejectedBefore = await a.metric('upgossip_gossip_messages_total', { topic: 'status', result: 'reject' })
    // a flood of valid beats: one view entry, whatever their number
    for (let i = 0; i < 300; i++) await h.services.pubsub.publish(topic, beat(1000 + i))
    await waitFor('a to hear the hostile peer', async () => (await a.status()).network.some(p => p.peerId === h.peerId.toString()))
    // a beat announcing an app a does not trust: not taken in (the view keeps what it had), counted by name
    await h.services.pubsub.publish(topic, beat(5000, { app: 'intruder', version: '9.9.9' }))
    await waitFor('a to refuse a beat of an untrusted app', async () => (await a.metric('upgossip_refusals_total', { error: 'UntrustedAppError' })) >= 1)
    expect((await a.status()).network.find(p => p.peerId === h.peerId.toString())).toMatchObject({ app: 'kv', version: '1.0.0' })
    // oversized: a beat of 20 KiB (over the 16 KiB limit: refused before it is decoded)
    const oversized = encodeBeat({ v: 1, seq: 9000, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [], pad: 'x'.repeat(20 * 1024) } as unknown as StatusBeat)
    expect(oversized.byteLength).toBeGreaterThan(MAX_BEAT_BYTES)
    await h.services.pubsub.publish(topic, oversized)
    // first on its own, so that the refusal counted is the size limit's, before the garbage costs the sender its score
    await waitFor('a to refuse the oversized beat', async () => (await a.metric('upgossip_gossip_messages_total', { topic: 'status', result: 'reject' })) > rejectedBefore)
    for (let i = 0; i < 40; i++) await h.services.pubsub.publish(topic, randomBytes(64 + i))

    // each refusal costs the sender gossipsub score, so the garbage after it may be dropped
    // before it is even validated
    expect(await a.metric('upgossip_refusals_total', { error: 'MalformedBeatError' })).toBeGreaterThanOrEqual(1)
    const view = (await a.status()).network
    expect(view.filter(p => p.peerId === h.peerId.toString())).toHaveLength(1)
    // the honest peers still hear each other and serve
    await waitFor('b to still see a', async () => (await b.status()).network.some(p => p.peerId === a.peerId))
    // … and serve each other: b's call reaches a's app and comes back with its answer
    expect(await b.callPeer(a.peerId, { op: 'ping' })).toEqual({ version: '1.0.0', echo: { op: 'ping' } })
    expect(a.exited).toBeUndefined()
    expect(b.exited).toBeUndefined()
  })

  it('Sybil failure reports halt an open network\'s rollout (fail-safe, and named), but cannot reach a private one (--psk)', async () => {
    net = await TestNet.create({ minConnections: 1, beatInterval: '500ms' })
    const v1 = await net.release('1.0.0')
    const v2 = await net.release('2.0.0')
    const topic = statusTopic('default')

    // open network: three fake peers report 2.0.0 failed before it is even published
    const a = await net.start('a', ['--install', v1.file])
    const sybils = [await hostileNode(), await hostileNode(), await hostileNode()]
    for (const s of sybils) {
      s.services.pubsub.subscribe(topic)
      await s.dial(multiaddr(a.addr))
    }
    await waitFor('the Sybils to see a on the status topic', () => sybils.every(s => s.services.pubsub.getSubscribers(topic).some(p => p.toString() === a.peerId)))
    let seq = 1
    const report = setInterval(() => {
      seq++
      for (const s of sybils) void s.services.pubsub.publish(topic, beat(seq, { failed: [v2.id] })).catch(() => {})
    }, 300)
    try {
      await waitFor('a to hear the Sybils', async () => (await a.status()).network.length >= 3)
      expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
      await waitFor('a to halt 2.0.0', async () => (await a.status()).releases.find(r => r.id === v2.id)?.waitingOn === 'halt-on-failures')
      const status = await a.status()
      expect(status.version).toBe('1.0.0')
      // the status names who reported the failure, so an operator can see it is not real peers
      const reporters = status.network.filter(p => p.failed?.includes(v2.id) === true).map(p => p.peerId).sort()
      expect(reporters).toEqual(sybils.map(s => s.peerId.toString()).sort())
    } finally {
      clearInterval(report)
    }

    // private network: the same Sybils cannot connect, so their reports never arrive
    const psk = await pskFile(net.root)
    const p = await net.start('p', ['--install', v1.file, '--psk', psk])
    const q = await net.start('q', ['--install', v1.file, '--psk', psk, '--bootstrap', p.addr])
    for (const s of sybils) expect(REFUSED_BY_PSK).toContain(await dialOutcome(s, p.addr))
    expect((await runCli(['publish', v2.file, '--data', p.dataDir])).code).toBe(0)
    await p.waitVersion('2.0.0')
    await q.waitVersion('2.0.0')
    expect((await p.status()).network.map(x => x.peerId)).toEqual([q.peerId])
  })

  it('a Sybil that says it is switching takes the one slot of a rolling rollout on an open network (not defended), but cannot reach a private one (--psk)', async () => {
    net = await TestNet.create({ minConnections: 1, beatInterval: '500ms' })
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { schedule: [{ rule: 'rolling', max: 1 }] }))
    const topic = statusTopic('default')

    // open network: one fake peer sends valid, signed beats saying it is switching to 2.0.0 now
    const a = await net.start('a', ['--install', v1.file])
    const sybil = await hostileNode()
    sybil.services.pubsub.subscribe(topic)
    await sybil.dial(multiaddr(a.addr))
    await waitFor('the Sybil to see a on the status topic', () => sybil.services.pubsub.getSubscribers(topic).some(p => p.toString() === a.peerId))
    let seq = 1
    const claim = setInterval(() => {
      seq++
      void sybil.services.pubsub.publish(topic, beat(seq, { state: 'upgrading', upgrading: v2.id })).catch(() => {})
    }, 300)
    try {
      await waitFor('a to see the Sybil switching', async () => (await a.status()).network.some(p => p.peerId === sybil.peerId.toString() && p.upgrading === v2.id))
      expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
      await waitFor('a to wait on rolling', async () => (await a.status()).releases.find(r => r.id === v2.id)?.waitingOn === 'rolling')
      const status = await a.status()
      expect(status.version).toBe('1.0.0')
      expect(status.releases.find(r => r.id === v2.id)?.reason).toMatch(/^1 peer\(s\) switching now, at most 1 at once/)
      // the only peer it knows is the Sybil: the slot is held by a peer that does not exist
      expect(status.network.map(p => p.peerId)).toEqual([sybil.peerId.toString()])
    } finally {
      clearInterval(claim)
    }

    // private network: the Sybil cannot connect, so the same release rolls out
    const p = await net.start('p', ['--install', v1.file, '--psk', await pskFile(net.root)])
    expect(REFUSED_BY_PSK).toContain(await dialOutcome(sybil, p.addr))
    expect((await runCli(['publish', v2.file, '--data', p.dataDir])).code).toBe(0)
    await p.waitVersion('2.0.0')
    expect((await p.status()).network).toEqual([])
  })

  it('a Sybil that says it already runs the new version lets an after rule start early on an open network (not defended)', async () => {
    net = await TestNet.create({ minConnections: 1, beatInterval: '500ms' })
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { schedule: [{ rule: 'after', fraction: 0.5 }] }))
    const topic = statusTopic('default')
    // b's operator has not approved 2.0.0: it stays on 1.0.0, so a's after rule waits for it
    const policy = path.join(net.root, 'approve.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'approve' }] }))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr, '--policy', policy])
    await waitFor('a to see b', async () => (await a.status()).network.some(p => p.peerId === b.peerId))
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await waitFor('a to wait on after', async () => (await a.status()).releases.find(r => r.id === v2.id)?.waitingOn === 'after')
    expect((await a.status()).releases.find(r => r.id === v2.id)?.reason).toMatch(/^0 of 1 other peers run 2\.0\.0/)

    // a fake peer says it already runs 2.0.0: half of a's other peers now "run" it
    const sybil = await hostileNode()
    sybil.services.pubsub.subscribe(topic)
    await sybil.dial(multiaddr(a.addr))
    await waitFor('the Sybil to see a on the status topic', () => sybil.services.pubsub.getSubscribers(topic).some(p => p.toString() === a.peerId))
    let seq = 1
    const done = setInterval(() => {
      seq++
      void sybil.services.pubsub.publish(topic, beat(seq, { version: '2.0.0', since: Date.now() - 60_000 })).catch(() => {})
    }, 300)
    try {
      await a.waitVersion('2.0.0')
      // the only other peer on 2.0.0 is the one that does not exist; the real one still runs 1.0.0
      expect((await b.status()).version).toBe('1.0.0')
      expect((await a.status()).network.filter(p => p.version === '2.0.0').map(p => p.peerId)).toEqual([sybil.peerId.toString()])
    } finally {
      clearInterval(done)
    }
  })

  it('an eclipse: a daemon connected only to a peer that relays nothing says it may be cut off, and clears once it hears an honest peer', async () => {
    net = await TestNet.create({ minConnections: 1, freezeAfter: '3s' })
    const v1 = await net.release('1.0.0')
    const h = await hostileNode()
    for (const t of ['releases', 'status']) h.services.pubsub.subscribe(`upgossip/default/${t}`)
    const a = await net.start('a', ['--install', v1.file, '--bootstrap', `${h.getMultiaddrs()[0]?.toString() ?? ''}`])
    await waitFor('a to be connected to the eclipsing peer only', async () => (await a.status()).connections === 1)
    // status computes it when asked; the metric and the event follow at the next beat
    await waitFor('a to say it may be cut off', async () => (await a.status()).freshness.frozen && (await a.metric('upgossip_frozen')) === 1)
    const frozen = await a.status()
    expect(frozen.connections).toBe(1)
    expect(frozen.freshness.reason).toMatch(/no other peer heard since the start/)
    const events = await fs.readFile(path.join(a.dataDir, 'events.jsonl'), 'utf8')
    expect(events).toContain('"type":"freeze-suspected"')

    // an honest peer reaches it: it hears beats again
    await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    await waitFor('a to hear the network again', async () => !(await a.status()).freshness.frozen && (await a.metric('upgossip_frozen')) === 0)
    expect((await a.status()).freshness.lastStatus).not.toBeNull()
    expect(await fs.readFile(path.join(a.dataDir, 'events.jsonl'), 'utf8')).toContain('"type":"freeze-cleared"')
  })
})

describe('what freshness cannot see', () => {
  it('an eclipsing peer that sends beats of its own clears its victim\'s freeze warning, with no honest peer in sight (not defended)', async () => {
    net = await TestNet.create({ minConnections: 1, freezeAfter: '3s' })
    const v1 = await net.release('1.0.0')
    const h = await hostileNode()
    const topic = statusTopic('default')
    for (const t of ['releases', 'status']) h.services.pubsub.subscribe(`upgossip/default/${t}`)
    const a = await net.start('a', ['--install', v1.file, '--bootstrap', `${h.getMultiaddrs()[0]?.toString() ?? ''}`])
    await waitFor('a to be connected to the eclipsing peer only', async () => (await a.status()).connections === 1)
    // status computes freshness when asked; the daemon's own state (the metric, the events)
    // follows at its next tick — wait for that, or the warning clears before it was ever raised
    await waitFor('a to say it may be cut off', async () => (await a.status()).freshness.frozen && (await a.metric('upgossip_frozen')) === 1)
    // the eclipser now beats, as a network of one would: valid beats, no release, no other peer
    let seq = 1
    const beating = setInterval(() => {
      seq++
      void h.services.pubsub.publish(topic, beat(seq)).catch(() => {})
    }, 300)
    try {
      await waitFor('a to stop saying it may be cut off', async () => !(await a.status()).freshness.frozen && (await a.metric('upgossip_frozen')) === 0)
      const status = await a.status()
      expect(status.connections).toBe(1)
      expect(status.network.map(p => p.peerId)).toEqual([h.peerId.toString()])
      expect(status.freshness.lastRelease).toBeNull()
      // the event log is appended to after the state changes: wait for the line, not for a moment
      await waitFor('a to log freeze-cleared', async () => (await fs.readFile(path.join(a.dataDir, 'events.jsonl'), 'utf8')).includes('"type":"freeze-cleared"'))
    } finally {
      clearInterval(beating)
    }
  })
})
