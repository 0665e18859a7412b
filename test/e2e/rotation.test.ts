/**
 * Key rotation on real daemons: kv moves from key A to keys {B, C} with threshold 2, by a
 * rotation signed by A. Every peer adopts it — also one that had turned down a release
 * signed by the new keys before the rotation reached it, and one that was stopped during
 * the rotation and comes back with its original --trust file. From then on A alone counts
 * for nothing; rotations below threshold, and older ones replayed, are refused.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerNode, releasesTopic } from '../../src/net/index.js'
import type { BasePeerNode } from '../../src/net/index.js'
import { encodeReleasesTopicMessage, generatePublisherKey, shortKey, signRotation, writeKeyFile } from '../../src/release/index.js'
import type { PublisherKey } from '../../src/release/index.js'
import { manifest } from '../helpers.js'
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

/** A small kv package that is healthy after 1 s, so that switches are quick. */
function kvPackage (version: string, extra: Record<string, unknown> = {}): Record<string, string> {
  return {
    'upgossip.json': manifest(version, { health: { readyWithin: '15s', stableFor: '1s' }, ...extra }),
    'server.js': "import { connect } from 'upgossip/app'\nconst node = await connect()\nnode.serve(async request => ({ version: node.version, echo: request }))\nawait node.ready()\n"
  }
}

async function newKey (root: string, name: string): Promise<{ key: PublisherKey, file: string }> {
  const key = await generatePublisherKey()
  const file = path.join(root, `${name}.key`)
  await writeKeyFile(file, key)
  return { key, file }
}

async function trustOf (peer: Peer): Promise<{ publishers: string[], threshold: number, sequence: number } | undefined> {
  return (await peer.status()).trust.kv
}

describe('key rotation', () => {
  it('moves kv from key A to keys {B, C} on every peer; A alone no longer counts; a peer that was down catches up', async () => {
    net = await TestNet.create()
    const root = net.root
    const a = { key: net.key, file: net.keyFile }
    const b = await newKey(root, 'bob')
    const c = await newKey(root, 'carol')
    const m = await newKey(root, 'mallory')
    const v1 = await net.releaseFiles(kvPackage('1.0.0'), [a.key])
    const v3 = await net.releaseFiles(kvPackage('3.0.0'), [b.key, c.key])
    const v4 = await net.releaseFiles(kvPackage('4.0.0'), [a.key])
    // signed by A before the rotation, waiting for the operator's approval when it comes
    const v2 = await net.releaseFiles(kvPackage('2.0.0', { schedule: [{ rule: 'approve' }] }), [a.key])

    const p1 = await net.start('p1', ['--install', v1.file])
    const p2 = await net.start('p2', ['--app', 'kv', '--bootstrap', p1.addr])
    const p3 = await net.start('p3', ['--app', 'kv', '--bootstrap', p1.addr])
    for (const p of [p1, p2, p3]) await p.waitVersion('1.0.0')
    expect(await trustOf(p1)).toEqual({ publishers: [a.key.id], threshold: 1, sequence: 0 })

    // a rotation without a signature by a current key is refused and changes nothing
    const unsigned = await runCli(['rotate', 'kv', '--publisher', b.key.id, '--threshold', '1', '--key', b.file, '--data', p1.dataDir])
    expect(unsigned.code).toBe(1)
    expect(unsigned.stderr).toContain(`0 valid signatures by current publishers, 1 required (1 by a key not trusted for kv: ${shortKey(b.key.id)}) [ThresholdNotMetError]`)
    expect((await trustOf(p1))?.sequence).toBe(0)

    // p3 is down while the keys change
    await p3.stop()
    expect((await runCli(['publish', v2.file, '--data', p1.dataDir])).code).toBe(0)
    for (const p of [p1, p2]) await waitFor(`${p.name} to wait on approval for 2.0.0`, async () => (await p.status()).releases.find(r => r.id === v2.id)?.state === 'waiting')

    // a new peer set up with the new policy publishes 3.0.0, signed by B and C, before the
    // rotation is out: the others turn it down for now (keys they do not trust yet)
    const newTrust = path.join(root, 'trust-rotated.json')
    await fs.writeFile(newTrust, JSON.stringify({ apps: { kv: { publishers: [b.key.id, c.key.id], threshold: 2, sequence: 1 } } }))
    const p4 = await net.start('p4', ['--trust', newTrust, '--app', 'kv', '--bootstrap', p1.addr])
    const untrusted = async (p: Peer): Promise<number> => await p.metric('upgossip_refusals_total', { error: 'ThresholdNotMetError' })
    const before = new Map([[p1, await untrusted(p1)], [p2, await untrusted(p2)]])
    const early = await runCli(['publish', v3.file, '--data', p4.dataDir])
    expect(early.code, early.stderr).toBe(0)
    await p4.waitVersion('3.0.0')
    // each hears of it by gossip or by the sync a beat of p4 (naming 3.0.0 as its head)
    // starts, and refuses it: its keys are not trusted there yet …
    for (const p of [p1, p2]) await waitFor(`${p.name} to refuse 3.0.0`, async () => await untrusted(p) > (before.get(p) ?? 0))
    // … and keeps nothing of it
    for (const p of [p1, p2]) expect((await p.status()).releases.some(r => r.id === v3.id)).toBe(false)

    // the rotation, signed offline by A (--out) and handed to p1 (--in)
    const rotationFile = path.join(root, 'kv-rotation.cbor')
    const made = await runCli(['rotate', 'kv', '--publisher', b.key.id, '--publisher-key', c.file, '--threshold', '2', '--key', a.file, '--reason', 'A leaves', '--out', rotationFile, '--data', p1.dataDir])
    expect(made.code, made.stderr).toBe(0)
    const rotationId = made.stdout.trim()
    expect(rotationId).toMatch(/^bafyrei/)
    const rotated = await runCli(['rotate', 'kv', '--in', rotationFile, '--data', p1.dataDir])
    expect(rotated.code, rotated.stderr).toBe(0)
    expect(rotated.stdout).toBe(`rotated kv to sequence 1: 2 of 2 keys ${b.key.id}, ${c.key.id} (${rotationId})\n`)

    // every running peer adopts it, and takes in the 3.0.0 it had turned down
    const rotatedPolicy = { publishers: [b.key.id, c.key.id], threshold: 2, sequence: 1 }
    for (const p of [p1, p2, p4]) await waitFor(`${p.name} to adopt the rotation`, async () => JSON.stringify(await trustOf(p)) === JSON.stringify(rotatedPolicy))
    await Promise.all([p1, p2].map(async p => { await p.waitVersion('3.0.0') }))
    // the 2.0.0 signed by A alone, not started yet, is dropped: it never runs
    for (const p of [p1, p2]) {
      expect((await p.status()).releases.some(r => r.id === v2.id)).toBe(false)
      expect(await fs.readFile(path.join(p.dataDir, 'events.jsonl'), 'utf8')).toContain('"type":"release-dropped"')
    }
    const event = (await fs.readFile(path.join(p2.dataDir, 'events.jsonl'), 'utf8')).split('\n').filter(l => l.includes('"trust-rotated"')).map(l => JSON.parse(l) as Record<string, unknown>)
    expect(event).toHaveLength(1)
    expect(event[0]).toMatchObject({ app: 'kv', sequence: 1, threshold: 2, id: rotationId, publishers: [b.key.id, c.key.id] })

    // the same rotation again is known; an older one (made with A for sequence 1) is refused
    const again = await runCli(['rotate', 'kv', '--in', rotationFile, '--data', p2.dataDir, '--json'])
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'known', id: rotationId, sequence: 1 })
    const evilFile = path.join(root, 'evil.cbor')
    const evil = await runCli(['rotate', 'kv', '--publisher', m.key.id, '--threshold', '1', '--key', a.file, '--sequence', '1', '--out', evilFile])
    expect(evil.code, evil.stderr).toBe(0)
    const replayed = await runCli(['rotate', 'kv', '--in', evilFile, '--data', p2.dataDir])
    expect(replayed.code).toBe(1)
    expect(replayed.stderr).toContain('[RotationOutdatedError]')
    // below the new threshold: B alone cannot rotate
    const below = await runCli(['rotate', 'kv', '--publisher', m.key.id, '--threshold', '1', '--key', b.file, '--data', p1.dataDir])
    expect(below.code).toBe(1)
    expect(below.stderr).toMatch(/1 valid signature by current publishers, 2 required \[ThresholdNotMetError\]/)
    // POST /rotate: malformed bodies get a 4xx naming the problem
    const garbage = await p1.api('/rotate', { method: 'POST', body: new Uint8Array([1, 2, 3]), headers: { 'content-type': 'application/cbor' } })
    expect(garbage.status).toBe(422)
    expect(((await garbage.json()) as { error: { code: string } }).error.code).toBe('MalformedRotationError')
    expect((await p1.api('/rotate', { method: 'POST' })).status).toBe(400)
    // A alone counts for nothing now: neither a release nor a revocation
    for (const p of [p1, p2]) {
      const refused = await runCli(['publish', v4.file, '--data', p.dataDir])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/kv@4\.0\.0 has 0 valid signatures by trusted keys, 2 required .*\[ThresholdNotMetError\]/)
    }
    const revokeByA = await runCli(['revoke', 'kv@3.0.0', '--key', a.file, '--data', p1.dataDir])
    expect(revokeByA.code).toBe(1)
    expect(revokeByA.stderr).toContain('[ThresholdNotMetError]')
    for (const p of [p1, p2, p4]) expect(await trustOf(p)).toEqual(rotatedPolicy)
    expect(await p1.metric('upgossip_trust_rotations_total', { result: 'adopted' })).toBe(1)
    expect(await p1.metric('upgossip_trust_rotations_total', { result: 'refused', error: 'ThresholdNotMetError' })).toBe(2)
    expect(await p2.metric('upgossip_trust_rotations_total', { result: 'refused', error: 'RotationOutdatedError' })).toBe(1)

    // p3 comes back with its original --trust file: it syncs, adopts the rotation, and upgrades
    const back = await net.start('p3', ['--app', 'kv', '--bootstrap', p1.addr])
    await waitFor('p3 to adopt the rotation', async () => JSON.stringify(await trustOf(back)) === JSON.stringify(rotatedPolicy))
    await back.waitVersion('3.0.0')
    for (const never of [v2.id, v4.id]) expect((await back.status()).releases.some(r => r.id === never)).toBe(false)

    // a restart with the original --trust file does not undo the rotation
    await p2.stop()
    const p2again = await net.start('p2', ['--app', 'kv', '--bootstrap', p1.addr])
    expect(await trustOf(p2again)).toEqual(rotatedPolicy)
    const stillRefused = await runCli(['publish', v4.file, '--data', p2again.dataDir])
    expect(stillRefused.code).toBe(1)
    expect(JSON.parse(await fs.readFile(path.join(p2.dataDir, 'trust.json'), 'utf8'))).toEqual({ apps: { kv: rotatedPolicy } })
  })

  it('rotate: usage errors exit 2 and name the problem; --out without a daemon needs --sequence', async () => {
    net = await TestNet.create()
    const b = await newKey(net.root, 'bob')
    const out = path.join(net.root, 'r.cbor')
    const usage: Array<[string[], RegExp]> = [
      [['rotate', 'kv', '--publisher', b.key.id, '--key', net.keyFile, '--out', out, '--sequence', '1'], /--threshold N is needed/],
      [['rotate', 'kv', '--publisher', b.key.id, '--threshold', '2', '--key', net.keyFile, '--out', out, '--sequence', '1'], /--threshold 2 is more than the 1 new publisher/],
      [['rotate', 'kv', '--publisher', b.key.id, '--publisher', b.key.id, '--threshold', '1', '--key', net.keyFile, '--out', out, '--sequence', '1'], /named twice/],
      [['rotate', 'kv', '--publisher', '12D3KooWnope', '--threshold', '1', '--key', net.keyFile, '--out', out, '--sequence', '1'], /not a publisher key/],
      [['rotate', 'kv', '--threshold', '1', '--key', net.keyFile, '--out', out, '--sequence', '1'], /name the new publishers/],
      [['rotate', 'kv', '--publisher', b.key.id, '--threshold', '1', '--out', out, '--sequence', '1'], /--key FILE is needed/],
      [['rotate', 'kv', '--publisher', b.key.id, '--threshold', '0', '--key', net.keyFile], /not a whole number of at least 1/],
      [['rotate', 'kv', '--in', out, '--threshold', '1'], /leave out --publisher/]
    ]
    for (const [args, message] of usage) {
      const r = await runCli(args)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toMatch(message)
      expect(r.stdout).toBe('')
    }
    await expect(fs.stat(out)).rejects.toThrow()
    const noDaemon = await runCli(['rotate', 'kv', '--publisher', b.key.id, '--threshold', '1', '--key', net.keyFile, '--out', out, '--data', path.join(net.root, 'none')])
    expect(noDaemon.code).toBe(1)
    expect(noDaemon.stderr).toContain('[DaemonUnreachableError]')
    const offline = await runCli(['rotate', 'kv', '--publisher', b.key.id, '--threshold', '1', '--key', net.keyFile, '--out', out, '--sequence', '1', '--json'])
    expect(offline.code, offline.stderr).toBe(0)
    expect(JSON.parse(offline.stdout)).toMatchObject({ app: 'kv', sequence: 1, threshold: 1, publishers: [b.key.id], signers: [net.key.id], out })
    const other = await runCli(['rotate', 'other', '--in', out, '--out', out])
    expect(other.code).toBe(2)
    expect(other.stderr).toMatch(/rotates the trust of kv, not other/)
  })

  it('gossip: malformed and forged rotations are rejected, unsigned-by-current and known ones ignored, a valid one adopted', async () => {
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
    const count = async (result: string): Promise<number> => await a.metric('upgossip_gossip_messages_total', { topic: 'releases', result })
    const send = async (bytes: Uint8Array): Promise<void> => { await hostile?.services.pubsub.publish(topic, bytes) }
    const bob = await generatePublisherKey()
    const record = { app: 'kv', publishers: [bob.id], threshold: 1, sequence: 1, issued: new Date().toISOString(), reason: '' }

    // malformed: not a rotation inside a rotation envelope
    await send(dagCbor.encode({ type: 'rotation', rotation: randomBytes(200) }))
    // forged: claims the current key with a signature that does not verify
    const good = await signRotation(record, [net.key])
    await send(encodeReleasesTopicMessage({ type: 'rotation', rotation: { record, signatures: [{ key: net.key.id, sig: randomBytes(64) }] } }))
    await waitFor('a to reject both', async () => await count('reject') >= 2)
    // signed by a key a does not trust: ignored, not held against the sender
    await send(encodeReleasesTopicMessage({ type: 'rotation', rotation: await signRotation(record, [bob]) }))
    await waitFor('a to ignore it', async () => await count('ignore') >= 1)
    expect((await a.status()).trust.kv?.sequence).toBe(0)
    expect(await a.metric('upgossip_trust_rotations_total', { result: 'refused', error: 'ThresholdNotMetError' })).toBe(2)

    // a valid rotation is adopted and passed on; the same one again is known
    await send(encodeReleasesTopicMessage({ type: 'rotation', rotation: good }))
    await waitFor('a to accept it', async () => await count('accept') >= 1)
    for (const p of [a, b]) await waitFor(`${p.name} to adopt it`, async () => (await p.status()).trust.kv?.sequence === 1)
    const ignoredBefore = await count('ignore')
    await send(encodeReleasesTopicMessage({ type: 'rotation', rotation: good }))
    await waitFor('a to ignore the known one', async () => await count('ignore') > ignoredBefore)
    expect(await count('reject')).toBe(2)
    // nothing invalid reached b
    expect(await b.metric('upgossip_gossip_messages_total', { topic: 'releases', result: 'reject' })).toBe(0)
    expect(await a.metric('upgossip_trust_rotations_total', { result: 'adopted' })).toBe(1)
  })
})
