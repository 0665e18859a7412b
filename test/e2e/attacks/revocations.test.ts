/**
 * Hostile revocations over gossip against real daemons: a peer written for the test
 * publishes, on the releases topic, a forged revocation of the release the network runs
 * (a signature that claims a trusted key and does not verify) and one signed by fewer than
 * the threshold of publishers. Each is refused by name and not forwarded; the release keeps
 * running. A valid one sent the same way spreads, so the path was open all along.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerNode, releasesTopic } from '../../../src/net/index.js'
import type { BasePeerNode } from '../../../src/net/index.js'
import { encodeReleasesTopicMessage, generatePublisherKey, parseReleaseId, signRevocation } from '../../../src/release/index.js'
import { kvVersion } from '../support/kv-app.js'
import { TestNet, runCli, waitFor } from '../support/testnet.js'
import type { Peer } from '../support/testnet.js'

let net: TestNet | undefined
let hostile: BasePeerNode | undefined

afterEach(async () => {
  await hostile?.stop()
  hostile = undefined
  await net?.close()
  net = undefined
})

/** The lines of one event type in a peer's event log. */
async function events (p: Peer, type: string): Promise<Array<{ message: string, level?: string }>> {
  const lines = (await fs.readFile(path.join(p.dataDir, 'events.jsonl'), 'utf8')).split('\n').filter(l => l.includes(`"type":"${type}"`))
  return lines.map(l => JSON.parse(l) as { message: string, level?: string })
}

describe('hostile revocations', () => {
  it('over gossip, a forged revocation is rejected and one under the threshold ignored, both named and never forwarded; the release keeps running', async () => {
    net = await TestNet.create({ minConnections: 1 })
    const second = await generatePublisherKey()
    await fs.writeFile(net.trustFile, JSON.stringify({ apps: { kv: { publishers: [net.key.id, second.id], threshold: 2 } } }))
    const keys = [net.key, second]
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'), keys)
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2'), keys)
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b]) await p.waitVersion('2.0.0')

    hostile = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    const topic = releasesTopic('default')
    hostile.services.pubsub.subscribe(topic)
    await hostile.dial(multiaddr(a.addr))
    await waitFor('the hostile peer to see a on the releases topic', () => hostile?.services.pubsub.getSubscribers(topic).some(p => p.toString() === a.peerId))
    const send = async (bytes: Uint8Array): Promise<void> => { await hostile?.services.pubsub.publish(topic, bytes) }
    const count = async (p: Peer, result: string): Promise<number> => await p.metric('upgossip_gossip_messages_total', { topic: 'releases', result })
    const record = { app: 'kv', release: parseReleaseId(v2.id), issued: new Date().toISOString(), reason: 'from the hostile peer' }
    const one = await signRevocation(record, [net.key])

    // forged: the second signature claims the other trusted key and does not verify
    const rejectedBefore = await count(a, 'reject')
    await send(encodeReleasesTopicMessage({ type: 'revocation', revocation: { record, signatures: [...one.signatures, { key: second.id, sig: randomBytes(64) }] } }))
    await waitFor('a to reject the forged revocation', async () => await count(a, 'reject') > rejectedBefore)
    // under the threshold: one valid signature of the two required
    const ignoredBefore = await count(a, 'ignore')
    await send(encodeReleasesTopicMessage({ type: 'revocation', revocation: one }))
    await waitFor('a to ignore the revocation under the threshold', async () => await count(a, 'ignore') > ignoredBefore)

    // both named: the refusal metric and a revocation-refused event each, saying why
    expect(await a.metric('upgossip_refusals_total', { error: 'ThresholdNotMetError' })).toBe(2)
    const refused = (await events(a, 'revocation-refused')).map(e => e.message)
    expect(refused).toHaveLength(2)
    expect(refused[0]).toMatch(/^refused a revocation via gossip from 12D3\w+: .*1 valid signature.*2 required.*1 invalid/)
    expect(refused[1]).toMatch(/1 valid signature.*2 required/)
    expect(refused[1]).not.toMatch(/invalid/)
    // nothing was revoked: both peers still run 2.0.0, and it is still their active release
    for (const p of [a, b]) {
      const status = await p.status()
      expect(status.version).toBe('2.0.0')
      expect(status.releases.find(r => r.id === v2.id)?.state).toBe('active')
    }
    expect(await events(a, 'release-revoked')).toEqual([])

    // a valid revocation sent the same way is taken and passed on to b: the path a → b was open
    await send(encodeReleasesTopicMessage({ type: 'revocation', revocation: await signRevocation(record, keys) }))
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    await waitFor('b to log the revocation', async () => (await events(b, 'release-revoked')).length === 1)
    expect((await events(b, 'release-revoked'))[0]?.message).toContain(`via gossip from ${hostile.peerId.toString()}`)
    // … and of the two refused ones, b saw nothing
    expect(await count(b, 'reject')).toBe(0)
    expect(await b.metric('upgossip_refusals_total', { error: 'ThresholdNotMetError' })).toBe(0)
    expect(await events(b, 'revocation-refused')).toEqual([])
    expect(a.exited).toBeUndefined()
    expect(b.exited).toBeUndefined()
  }, 120_000)
})
