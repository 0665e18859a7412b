/**
 * A split view: two different releases, both validly signed, for one version, published
 * on two halves of a network that are not yet connected (what a stolen key, or a
 * publisher's mistake, could do). When the halves meet, no peer switches from one twin to
 * the other; every peer names the conflict (EquivocationError, an `equivocation` event);
 * revoking the wrong twin settles it, and the peers that ran it move to the right one.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { TestNet, runCli, waitFor } from '../support/testnet.js'
import type { Peer } from '../support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

async function equivocations (p: Peer): Promise<string[]> {
  const text = await fs.readFile(path.join(p.dataDir, 'events.jsonl'), 'utf8')
  return text.split('\n').filter(l => l.includes('"type":"equivocation"'))
}

describe('split view', () => {
  it('twin releases of one version: each half keeps the first it saw, both name the conflict, a revocation settles it', { timeout: 200_000 }, async () => {
    net = await TestNet.create({ minConnections: 2 })
    const v1 = await net.release('1.0.0')
    const x = await net.release('2.0.0', { 'build.txt': 'the real 2.0.0' })
    const y = await net.release('2.0.0', { 'build.txt': randomBytes(16).toString('hex') })
    // two halves, not connected to each other
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--install', v1.file])
    expect((await runCli(['publish', x.file, '--data', a.dataDir])).code).toBe(0)
    expect((await runCli(['publish', y.file, '--data', b.dataDir])).code).toBe(0)
    await a.waitVersion('2.0.0')
    await b.waitVersion('2.0.0')
    // publishing the other twin on a is refused with the reason
    const refused = await runCli(['publish', y.file, '--data', a.dataDir])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`already known as ${x.id}`)

    // the halves meet through a bridge peer that ran 1.0.0 (a peer whose only version is
    // the revoked twin has nothing to roll back to, and keeps running it: a known limit)
    const c = await net.start('c', ['--install', v1.file, '--bootstrap', a.addr, '--bootstrap', b.addr])
    await waitFor('both halves to name the conflict', async () => (await equivocations(a)).some(l => l.includes(y.id)) && (await equivocations(b)).some(l => l.includes(x.id)), 60_000)
    await c.waitVersion('2.0.0')
    expect((await a.status()).releases.map(r => r.id)).not.toContain(y.id)
    expect((await b.status()).releases.map(r => r.id)).not.toContain(x.id)
    expect(await a.metric('upgossip_refusals_total', { error: 'EquivocationError' })).toBeGreaterThanOrEqual(1)
    for (const p of [a, b]) expect((await p.status()).version).toBe('2.0.0')

    // the publisher revokes the twin that is not theirs: its peers roll back and take the other
    expect((await runCli(['revoke', y.id, '--key', net.keyFile, '--data', b.dataDir, '--reason', 'not our build'])).code).toBe(0)
    for (const p of [a, b, c]) {
      await waitFor(`${p.name} to run ${x.id.slice(-6)}`, async () => {
        const s = await p.status()
        return s.version === '2.0.0' && s.state === 'running' && s.releases.find(r => r.id === x.id)?.state === 'active'
      }, 90_000)
    }
  })
})
