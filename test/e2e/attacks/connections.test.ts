/**
 * The 64-connection cap on a real daemon: 70 peers written for the test dial it, one after
 * another (under libp2p's 5 inbound connections per second per host). It keeps 64 in all —
 * its honest peer's among them — refuses the rest, and keeps serving; and while the attacker
 * holds the slots, an honest newcomer cannot get in (the eclipse limit SECURITY.md names).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerNode } from '../../../src/net/index.js'
import type { BasePeerNode } from '../../../src/net/index.js'
import { TestNet, waitFor } from '../support/testnet.js'
import type { Peer } from '../support/testnet.js'

let net: TestNet | undefined
let hostile: BasePeerNode[] = []

afterEach(async () => {
  await Promise.all(hostile.map(async h => { await h.stop() }))
  hostile = []
  await net?.close()
  net = undefined
})

/** What libp2p's connection manager logs (DEBUG=libp2p:connection-manager) for each connection refused at the cap. */
const REFUSED_AT_CAP = /connection from \S+ refused - maxConnections exceeded/g

function refusedAtCap (p: Peer): number {
  return [...p.log.matchAll(REFUSED_AT_CAP)].length
}

describe('the connection cap', () => {
  it('70 peers dial a daemon: it keeps 64 connections, its honest peer\'s among them, refuses the rest and keeps serving; an honest newcomer cannot get in (not defended)', async () => {
    net = await TestNet.create({ minConnections: 1 })
    const v1 = await net.release('1.0.0')
    const a = await net.start('a', ['--install', v1.file], { DEBUG: 'libp2p:connection-manager' })
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    await waitFor('a and b to connect', async () => (await a.status()).connections === 1 && (await b.status()).network.some(p => p.peerId === a.peerId))

    hostile = await Promise.all(Array.from({ length: 70 }, async () => await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: [] })))
    const outcomes: string[] = []
    for (const h of hostile) {
      // one dial every 250 ms stays under the inbound rate limit of 5 a second per host, so a
      // refusal here is the cap's
      const started = Date.now()
      outcomes.push(await h.dial(multiaddr(a.addr), { signal: AbortSignal.timeout(10_000) }).then(() => 'connected', (err: Error) => err.name))
      await new Promise(resolve => setTimeout(resolve, Math.max(0, 250 - (Date.now() - started))))
    }
    // 63 attackers joined b in a's 64 slots; the other 7 were refused, each logged by a as over the cap
    expect(outcomes.filter(o => o === 'connected')).toHaveLength(63)
    await waitFor('a to log each refusal at the cap', () => refusedAtCap(a) >= 7)
    expect(refusedAtCap(a)).toBe(7)
    expect((await a.status()).connections).toBe(64)
    expect(hostile.filter(h => h.getConnections().length > 0)).toHaveLength(63)

    // a keeps its honest peer and serves: its control API answers, and b's call reaches a's app
    expect((await a.status()).network.map(p => p.peerId)).toContain(b.peerId)
    expect(await b.callPeer(a.peerId, { op: 'ping' })).toEqual({ version: '1.0.0', echo: { op: 'ping' } })
    expect(await a.callPeer(b.peerId, { op: 'ping' })).toEqual({ version: '1.0.0', echo: { op: 'ping' } })

    // the limit: an honest newcomer bootstrapping from a finds no slot while the attacker holds them
    const c = await net.start('c', ['--install', v1.file, '--bootstrap', a.addr])
    await waitFor('c to say its bootstrap peer is unreachable', async () => (await fs.readFile(path.join(c.dataDir, 'events.jsonl'), 'utf8')).includes('"type":"bootstrap-unreachable"'), 60_000)
    expect((await c.status()).connections).toBe(0)
    expect(refusedAtCap(a)).toBeGreaterThan(7)
    expect((await a.status()).connections).toBe(64)
    expect(a.exited).toBeUndefined()
  }, 240_000)
})
