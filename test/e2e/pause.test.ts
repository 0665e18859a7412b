/**
 * Network-wide rollout pause and resume on real daemons: records signed by a threshold of
 * the app's publishers, gossiped, and brought by sync to a peer that was down when the
 * pause was made and to one started later; kept across a restart; refused over gossip
 * (forged: rejected; under the threshold: ignored) and never forwarded. And a release that
 * failed and halted does not block a fix published under a lower version.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerNode, releasesTopic } from '../../src/net/index.js'
import type { BasePeerNode } from '../../src/net/index.js'
import { encodeReleasesTopicMessage, generatePublisherKey, parseReleaseId, signPause, writeKeyFile } from '../../src/release/index.js'
import type { PublisherKey } from '../../src/release/index.js'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet | undefined
let hostile: BasePeerNode | undefined

afterEach(async () => {
  await hostile?.stop()
  hostile = undefined
  await net?.close()
  net = undefined
})

/** A second publisher, and kv trusted with a threshold of 2 of the two keys. */
async function twoPublishers (n: TestNet): Promise<{ second: PublisherKey, secondFile: string }> {
  const second = await generatePublisherKey()
  const secondFile = path.join(n.root, 'second.key')
  await writeKeyFile(secondFile, second)
  await fs.writeFile(n.trustFile, JSON.stringify({ apps: { kv: { publishers: [n.key.id, second.id], threshold: 2 } } }))
  return { second, secondFile }
}

async function release (p: Peer, id: string): Promise<{ state: string, waitingOn?: string, reason?: string, pause?: { action: string, sequence: number } } | undefined> {
  return (await p.status()).releases.find(r => r.id === id)
}

async function waitsOn (p: Peer, id: string, rule: string, timeoutMs = 30_000): Promise<{ reason?: string }> {
  return await waitFor(`${p.name} to show ${id} waiting on ${rule}`, async () => {
    const r = await release(p, id)
    return r?.waitingOn === rule ? r : undefined
  }, timeoutMs)
}

/** The `rollout-paused` events in a peer's event log. */
async function pausedEvents (p: Peer): Promise<Array<{ via: string, sequence: number }>> {
  const lines = (await fs.readFile(path.join(p.dataDir, 'events.jsonl'), 'utf8')).split('\n').filter(l => l.includes('"rollout-paused"'))
  return lines.map(l => JSON.parse(l) as { via: string, sequence: number })
}

describe('rollout pause and resume', () => {
  it('a pause stops a rollout mid-way on every peer (also one that was down, one restarted, one started later); resume lets it go on', async () => {
    net = await TestNet.create()
    const { second, secondFile } = await twoPublishers(net)
    const keys = [net.key, second]
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'), keys)
    // each peer switches when its operator approves: the rollout goes peer by peer
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { upgrades: '^1.0.0', schedule: [{ rule: 'approve' }] }), keys)
    const a = await net.start('a', ['--install', v1.file])
    const joined = ['--app', 'kv', '--bootstrap', a.addr]
    const b = await net.start('b', joined)
    let c = await net.start('c', joined)
    for (const p of [a, b, c]) await p.waitVersion('1.0.0')
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b, c]) await waitsOn(p, v2.id, 'approve', 60_000)
    expect((await runCli(['approve', 'kv@2.0.0', '--data', a.dataDir])).code).toBe(0)
    await a.waitVersion('2.0.0')
    // c goes down (a host cut off) before the pause
    await c.stop()

    const under = await runCli(['rollout', 'pause', 'kv@2.0.0', '--key', net.keyFile, '--data', b.dataDir])
    expect(under.code).toBe(1)
    expect(under.stderr).toContain('[ThresholdNotMetError]')
    const notPaused = await runCli(['rollout', 'resume', 'kv@2.0.0', '--key', net.keyFile, '--key', secondFile, '--data', b.dataDir])
    expect(notPaused.code).toBe(1)
    expect(notPaused.stderr).toContain('[RolloutNotPausedError]')
    const paused = await runCli(['rollout', 'pause', 'kv@2.0.0', '--key', net.keyFile, '--key', secondFile, '--reason', 'p99 doubled on a', '--data', b.dataDir])
    expect(paused.code, paused.stderr).toBe(0)
    expect(paused.stdout).toBe(`paused kv@2.0.0 ${v2.id} (signed by 2 publishers)\n`)
    const reason = (await waitsOn(b, v2.id, 'paused')).reason ?? ''
    expect(reason).toContain('p99 doubled on a')
    expect(reason).toContain(net.key.id.slice(0, 12))
    // the peer already on it stays
    await waitFor('a to hear of the pause', async () => (await release(a, v2.id))?.pause?.action === 'pause')
    expect(await a.status()).toMatchObject({ version: '2.0.0', state: 'running' })
    // approved while paused: still no switch
    expect((await runCli(['approve', 'kv@2.0.0', '--data', b.dataDir])).code).toBe(0)
    await new Promise(resolve => setTimeout(resolve, 3000))
    expect((await b.status()).version).toBe('1.0.0')
    expect((await release(b, v2.id))?.waitingOn).toBe('paused')

    // c comes back: it learns the pause by sync
    c = await net.start('c', joined)
    await waitsOn(c, v2.id, 'paused')
    expect((await pausedEvents(c)).map(e => e.via)).toEqual([expect.stringMatching(/^sync with /)])

    // b restarts: the pause is kept, and not taken in again
    await b.stop()
    const b2 = await net.start('b', joined)
    await waitsOn(b2, v2.id, 'paused')
    // a sync answer taken in after the restart carries the pause record again: it is known, and not taken in twice
    await waitFor('b to sync with a peer after its restart', async () => await b2.metric('upgossip_syncs_total', { result: 'ok' }) >= 1)
    expect(await pausedEvents(b2)).toHaveLength(1)

    // d starts later: it installs 1.0.0 and learns the pause by sync
    const d = await net.start('d', joined)
    await d.waitVersion('1.0.0')
    await waitsOn(d, v2.id, 'paused')
    expect((await pausedEvents(d))[0]?.via).toMatch(/^sync with /)

    // resumed from another peer: b (approved) goes on, c and d wait for their approval
    const pausedAt = (await release(c, v2.id))?.pause?.sequence ?? Infinity
    const resumed = await runCli(['rollout', 'resume', v2.id, '--key', net.keyFile, '--key', secondFile, '--data', c.dataDir, '--json'])
    expect(resumed.code, resumed.stderr).toBe(0)
    const resumedJson = JSON.parse(resumed.stdout)
    expect(resumedJson).toMatchObject({ status: 'resumed', app: 'kv', version: '2.0.0', release: v2.id })
    // the time of signing: above the pause's, which c learnt by sync
    expect(resumedJson.sequence).toBeGreaterThan(pausedAt)
    await b2.waitVersion('2.0.0')
    for (const p of [c, d]) await waitsOn(p, v2.id, 'approve')
    expect((await a.status()).version).toBe('2.0.0')
  }, 300_000)

  it('over gossip, a forged pause is rejected and one under the threshold ignored, both named and never forwarded; a valid one spreads', async () => {
    net = await TestNet.create({ minConnections: 1 })
    const { second } = await twoPublishers(net)
    const keys = [net.key, second]
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'), keys)
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { upgrades: '^1.0.0', schedule: [{ rule: 'approve' }] }), keys)
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b]) await waitsOn(p, v2.id, 'approve', 60_000)
    hostile = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    const topic = releasesTopic('default')
    hostile.services.pubsub.subscribe(topic)
    await hostile.dial(multiaddr(a.addr))
    await waitFor('the hostile peer to see a on the releases topic', () => hostile?.services.pubsub.getSubscribers(topic).some(p => p.toString() === a.peerId))
    const send = async (bytes: Uint8Array): Promise<void> => { await hostile?.services.pubsub.publish(topic, bytes) }
    const count = async (p: Peer, result: string): Promise<number> => await p.metric('upgossip_gossip_messages_total', { topic: 'releases', result })
    const record = { app: 'kv', release: parseReleaseId(v2.id), action: 'pause' as const, sequence: 1, issued: new Date().toISOString(), reason: 'from the hostile peer' }

    // forged: the second signature claims a trusted key and does not verify
    const one = await signPause(record, [net.key])
    await send(encodeReleasesTopicMessage({ type: 'pause', pause: { record, signatures: [...one.signatures, { key: second.id, sig: randomBytes(64) }] } }))
    await waitFor('a to reject the forged pause', async () => await count(a, 'reject') >= 1)
    // under the threshold: one valid signature of two
    const ignoredBefore = await count(a, 'ignore')
    await send(encodeReleasesTopicMessage({ type: 'pause', pause: one }))
    await waitFor('a to ignore the pause under the threshold', async () => await count(a, 'ignore') > ignoredBefore)
    expect(await a.metric('upgossip_refusals_total', { error: 'ThresholdNotMetError' })).toBe(2)
    const refusals = (await fs.readFile(path.join(a.dataDir, 'events.jsonl'), 'utf8')).split('\n').filter(l => l.includes('"pause-refused"'))
    expect(refusals).toHaveLength(2)
    expect(refusals.join('\n')).toContain('1 valid signature by trusted keys of kv, 2 required (1 invalid)')
    for (const p of [a, b]) expect((await release(p, v2.id))?.waitingOn).toBe('approve')

    // a valid one (a threshold of the publishers) is taken and passed on to b
    await send(encodeReleasesTopicMessage({ type: 'pause', pause: await signPause(record, keys) }))
    for (const p of [a, b]) await waitsOn(p, v2.id, 'paused')
    expect((await pausedEvents(b))[0]?.via).toMatch(/^gossip from /)
    // nothing invalid reached b
    expect(await count(b, 'reject')).toBe(0)
    expect(await b.metric('upgossip_refusals_total', { error: 'ThresholdNotMetError' })).toBe(0)
    // a replay of the valid one is known: ignored, not applied again
    const ignoredNow = await count(a, 'ignore')
    await send(encodeReleasesTopicMessage({ type: 'pause', pause: await signPause(record, keys) }))
    await waitFor('a to ignore the replay', async () => await count(a, 'ignore') > ignoredNow)
    expect(await pausedEvents(a)).toHaveLength(1)
  })

  it('a fix published under a lower version (2.0.1 after a failed 2.0.2) rolls out; the failed one keeps saying why', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    const c = await net.start('c', ['--app', 'kv', '--bootstrap', a.addr])
    for (const p of [a, b, c]) await p.waitVersion('1.0.0')
    // 2.0.2 crashes at start; one peer at a time may try it; it upgrades from any older version, 2.0.1 included
    const bad = await net.releaseFiles(kvVersion('2.0.2', 'crash-at-start', { schedule: [{ rule: 'rolling', max: 1 }] }))
    expect((await runCli(['publish', bad.file, '--data', a.dataDir])).code).toBe(0)
    const failedOn = await waitFor('a peer to fail 2.0.2', async () => {
      for (const p of [a, b, c]) if ((await release(p, bad.id))?.state === 'failed') return p
      return undefined
    }, 60_000)
    const others = [a, b, c].filter(p => p !== failedOn)
    for (const p of others) await waitsOn(p, bad.id, 'halt-on-failures')

    const fix = await net.releaseFiles(kvVersion('2.0.1', 'v2', { upgrades: '^1.0.0' }))
    expect((await runCli(['publish', fix.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b, c]) await p.waitVersion('2.0.1')
    expect((await release(failedOn, bad.id))).toMatchObject({ state: 'failed', reason: expect.stringMatching(/.+/) })
    for (const p of others) {
      const r = await release(p, bad.id)
      expect(r).toMatchObject({ state: 'waiting', waitingOn: 'halt-on-failures' })
      expect(r?.reason).toMatch(/reported this release failed/)
    }
  }, 180_000)
})
