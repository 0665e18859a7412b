/**
 * Revocation on real daemons: signed by a threshold of the app's publishers, gossiped;
 * peers running the release roll back (the down transform carries their writes back),
 * a peer joining later never runs it, and a revocation below threshold is refused.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { generatePublisherKey, shortKey, writeKeyFile } from '../../src/release/index.js'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

describe('revocation', () => {
  it('a threshold of publishers revokes a release: the network rolls back, newcomers never run it', async () => {
    net = await TestNet.create()
    const second = await generatePublisherKey()
    const secondFile = path.join(net.root, 'second.key')
    await writeKeyFile(secondFile, second)
    await fs.writeFile(net.trustFile, JSON.stringify({ apps: { kv: { publishers: [net.key.id, second.id], threshold: 2 } } }))
    const keys = [net.key, second]
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'), keys)
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2'), keys)
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b]) await p.waitVersion('2.0.0')
    await b.call({ op: 'put', key: 'k', value: 'written under 2.0.0' })

    const below = await runCli(['revoke', 'kv@2.0.0', '--key', net.keyFile, '--data', a.dataDir])
    expect(below.code).toBe(1)
    expect(below.stderr).toContain('[ThresholdNotMetError]')
    // a key missing from the trust file is named
    const stranger = await generatePublisherKey()
    const strangerFile = path.join(net.root, 'stranger.key')
    await writeKeyFile(strangerFile, stranger)
    const untrusted = await runCli(['revoke', 'kv@2.0.0', '--key', net.keyFile, '--key', strangerFile, '--data', a.dataDir])
    expect(untrusted.code).toBe(1)
    expect(untrusted.stderr).toContain(`1 valid signature by trusted keys, 2 required (1 by a key not trusted for kv: ${shortKey(stranger.id)};`)
    expect((await a.status()).version).toBe('2.0.0')

    const revoked = await runCli(['revoke', 'kv@2.0.0', '--key', net.keyFile, '--key', secondFile, '--reason', 'corrupts data', '--data', a.dataDir])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.stdout).toContain(`revoked kv@2.0.0 ${v2.id}`)
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    await waitFor('v2 to show as revoked on b', async () => (await b.status()).releases.find(r => r.id === v2.id)?.state === 'revoked')
    // on the peers that ran it and rolled it back, status says why it was revoked (docs/cli.md, "revoke")
    for (const p of [a, b]) {
      await waitFor(`v2 revoked with its reason on ${p.name}`, async () => (await p.status()).releases.find(r => r.id === v2.id)?.state === 'revoked')
      expect((await p.status()).releases.find(r => r.id === v2.id)?.reason).toBe('revoked: corrupts data')
    }
    expect((await runCli(['status', '--data', b.dataDir])).stdout).toMatch(/kv 2\.0\.0 +revoked .* — revoked: corrupts data/)
    // b's write under 2.0.0 was carried back by down()
    expect(await b.call({ op: 'get', key: 'k' })).toEqual({ value: 'written under 2.0.0', version: '1.0.0' })
    const again = await runCli(['revoke', v2.id, '--key', net.keyFile, '--key', secondFile, '--data', b.dataDir])
    expect(again.stdout).toContain('already revoked')

    // a newcomer learns the revocation with the releases, and installs 1.0.0
    const c = await net.start('c', ['--app', 'kv', '--bootstrap', b.addr])
    await c.waitVersion('1.0.0')
    // it took the revocation in (a sync answer carries revocations before releases) …
    await waitFor('c to hold the revocation of 2.0.0', async () => (await fs.readFile(path.join(c.dataDir, 'events.jsonl'), 'utf8'))
      .split('\n').some(l => l.includes('"type":"release-revoked"') && l.includes(`"id":"${v2.id}"`)))
    // … and nothing else happened: it runs 1.0.0, never switched, and 2.0.0 got nowhere on it
    expect((await c.status()).version).toBe('1.0.0')
    expect((await c.history()).map(h => h.type)).toEqual(['installed'])
    expect((await c.status()).releases.find(r => r.id === v2.id)?.state ?? 'never admitted').not.toMatch(/staged|waiting|active|upgrading/)
  })
})
