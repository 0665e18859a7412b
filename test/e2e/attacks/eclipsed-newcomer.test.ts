/**
 * An eclipsed newcomer offered a revoked release, on real daemons: `a` holds the network's
 * revocation of 2.0.0; `x`, the attacker, runs 2.0.0 and never passes the revocation on; a
 * peer joining with `--app` and only `x` to talk to takes 2.0.0 — unless it waits for sync
 * answers from more peers (`joinPeers`), and so hears the revocation before it chooses.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { kvVersion } from '../support/kv-app.js'
import { TestNet, runCli, waitFor } from '../support/testnet.js'
import type { Peer } from '../support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

async function release (p: Peer, id: string): Promise<{ state: string, waitingOn?: string, reason?: string } | undefined> {
  return (await p.status()).releases.find(r => r.id === id)
}

describe('an eclipsed newcomer', () => {
  it('joining through an attacker only, it installs a revoked release (joinPeers 1); with joinPeers 2 it waits, hears the revocation from an honest peer and installs 1.0.0', async () => {
    net = await TestNet.create({ minConnections: 1 })
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { schedule: [{ rule: 'approve' }] }))
    // the honest network: a has 2.0.0 revoked by its publisher
    let a = await net.start('a', ['--install', v1.file])
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    const revoked = await runCli(['revoke', v2.id, '--key', net.keyFile, '--reason', 'corrupts data', '--data', a.dataDir])
    expect(revoked.code, revoked.stderr).toBe(0)
    await waitFor('a to hold 2.0.0 revoked', async () => (await release(a, v2.id))?.state === 'revoked')
    // the attacker: a peer on 2.0.0 that never heard of (or passes on) the revocation
    const x = await net.start('x', ['--install', v2.file])
    expect((await x.status()).network).toEqual([])

    // the limit: with the default joinPeers (1), the first sync answer decides, and x's has only 2.0.0
    const eclipsed = await net.start('eclipsed', ['--app', 'kv', '--bootstrap', x.addr])
    await eclipsed.waitVersion('2.0.0')
    expect(await release(eclipsed, v2.id)).toMatchObject({ state: 'active' })
    await eclipsed.stop()

    // the defence: joinPeers 2 — one answer is not enough to choose
    const joinConfig = path.join(net.root, 'join.json')
    await fs.writeFile(joinConfig, JSON.stringify({ beatInterval: '1s', peerTimeout: '20s', minConnections: 1, joinPeers: 2 }))
    const n = await net.start('n', ['--app', 'kv', '--bootstrap', x.addr, '--config', joinConfig])
    const waiting = await waitFor('n to wait for a second peer before installing 2.0.0', async () => {
      const r = await release(n, v2.id)
      return r?.waitingOn === 'join' ? r : undefined
    })
    expect(waiting.reason).toBe('1 of the 2 peers whose sync answers a first install waits for (joinPeers) have answered')
    const before = await n.status()
    expect(before.version).toBeNull()
    expect(before.state).toBe('installing')
    expect(before.connections).toBe(1)

    // an honest peer reaches it (a, restarted with n to bootstrap from): its sync answer
    // brings the revocation, and n installs what is left, 1.0.0
    await a.stop()
    a = await net.start('a', ['--bootstrap', n.addr])
    await n.waitVersion('1.0.0')
    expect(await release(n, v2.id)).toMatchObject({ state: 'revoked' })
    expect((await n.history()).map(h => h.type)).toEqual(['installed'])
    const events = await fs.readFile(path.join(n.dataDir, 'events.jsonl'), 'utf8')
    expect(events.split('\n').filter(l => l.includes('"type":"release-revoked"')).join('\n')).toContain(`via sync with ${a.peerId}`)
    expect(events.split('\n').filter(l => l.includes('"type":"installed"'))).toHaveLength(1)
  }, 180_000)
})
