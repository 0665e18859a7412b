/**
 * Hostile gossip against real daemons: a peer written for the test speaks real
 * gossipsub (strictly signed messages) and publishes random bytes, a release signed by
 * an untrusted key, and an old signed release. None of it is forwarded: a third peer
 * never sees it, and every daemon stays up.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerNode, releasesTopic } from '../../../src/net/index.js'
import type { BasePeerNode } from '../../../src/net/index.js'
import { encodeReleasesTopicMessage, generatePublisherKey, readBundle } from '../../../src/release/index.js'
import { TestNet, runCli, waitFor } from '../support/testnet.js'

let net: TestNet | undefined
let hostile: BasePeerNode | undefined

afterEach(async () => {
  await hostile?.stop()
  hostile = undefined
  await net?.close()
  net = undefined
})

describe('hostile gossip', () => {
  it('random bytes, untrusted signatures and replayed old releases are never forwarded', async () => {
    net = await TestNet.create({ minConnections: 1 })
    const v1 = await net.release('1.0.0')
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    await waitFor('a and b to connect', async () => (await a.status()).connections >= 1 && (await b.status()).connections >= 1)

    hostile = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    const topic = releasesTopic('default')
    hostile.services.pubsub.subscribe(topic)
    await hostile.dial(multiaddr(a.addr))
    await waitFor('the hostile peer to see a on the releases topic', () => hostile?.services.pubsub.getSubscribers(topic).some(p => p.toString() === a.peerId))
    // let b's mesh settle so that anything a forwarded would reach it
    await waitFor('b to see a on the releases topic', async () => (await b.status()).network.some(p => p.peerId === a.peerId))

    const bSeenBefore = await b.metric('upgossip_gossip_messages_total', { topic: 'releases' })
    // the four messages are made first and sent back to back: a's first reject costs the
    // sender -1000 of score (src/net/node.ts), and once a's scores are refreshed (every
    // heartbeat, 1 s) it drops everything else the sender says unread — so a slow gap
    // between them would leave the rest unjudged
    // 1. garbage
    const garbage = randomBytes(300)
    // 2. a well-formed release signed by a key nobody trusts
    const mallory = await generatePublisherKey()
    const forged = await net.release('9.0.0', {}, [mallory])
    const untrusted = encodeReleasesTopicMessage({ type: 'release', signed: (await readBundle(await fs.readFile(forged.file))).signed })
    // 3. the old, validly signed v1 replayed: not newer than what a runs
    const replayed = encodeReleasesTopicMessage({ type: 'release', signed: (await readBundle(await fs.readFile(v1.file))).signed })
    // 4. a forgery: a release that claims the trusted publisher's signature, with bytes that do not verify
    const v3 = (await readBundle(await fs.readFile((await net.release('3.0.0')).file))).signed
    const forgedSig = encodeReleasesTopicMessage({ type: 'release', signed: { record: v3.record, signatures: v3.signatures.map(s => ({ key: s.key, sig: randomBytes(64) })) } })
    // the two that are only ignored go first, then the two rejects
    for (const message of [untrusted, replayed, garbage, forgedSig]) await hostile.services.pubsub.publish(topic, message)

    // garbage and forgeries are rejected (the sender loses score); keys a does not trust and
    // old releases are ignored (others may trust those keys); nothing of it is forwarded
    await waitFor('a to judge all four', async () =>
      (await a.metric('upgossip_gossip_messages_total', { topic: 'releases', result: 'reject' })) >= 2 &&
      (await a.metric('upgossip_gossip_messages_total', { topic: 'releases', result: 'ignore' })) >= 2)
    expect(await a.metric('upgossip_refusals_total', { error: 'ThresholdNotMetError' })).toBeGreaterThanOrEqual(1)
    expect(await a.metric('upgossip_refusals_total', { error: 'MalformedReleaseError' })).toBeGreaterThanOrEqual(1)
    expect((await a.status()).releases.map(r => r.version)).toEqual(['1.0.0'])

    // the path a → b works: a real release published now reaches b …
    const v2 = await net.release('2.0.0')
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await b.waitStaged(v2.id)
    // … but of the hostile messages, b's validator saw none: only the real v2 arrived by gossip
    const bSeenAfter = await b.metric('upgossip_gossip_messages_total', { topic: 'releases' })
    expect(bSeenAfter - bSeenBefore).toBeLessThanOrEqual(1)
    expect(await b.metric('upgossip_gossip_messages_total', { topic: 'releases', result: 'reject' })).toBe(0)
    expect((await b.status()).releases.map(r => r.version)).toEqual(['1.0.0', '2.0.0'])
    expect(a.exited).toBeUndefined()
    expect(b.exited).toBeUndefined()
  })
})
