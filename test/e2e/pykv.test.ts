/**
 * The Python demo app (testnet/apps/pykv) on real daemons, through a whole upgrade: 1.0.0
 * everywhere, then 2.0.0 (new wire format and state format: command transforms up.py and
 * down.py, HTTP simulation objects run by the daemons) on two peers while the third waits
 * for its operator; writes on either side reach the other translated; the third upgrades
 * with its state, and rolls back with what 2.0.0 wrote.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { hasPython, proxyOf, proxyPeers, requirePythonInCi, viaProxy } from './support/process-apps.js'
import type { Answer } from './support/process-apps.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

requirePythonInCi('pykv.test.ts')

const APPS = path.resolve(import.meta.dirname, '../../testnet/apps/pykv')

async function files (version: 'v1' | 'v2', manifest: Record<string, unknown> = {}): Promise<Record<string, string>> {
  const dir = path.join(APPS, version)
  const out: Record<string, string> = {}
  for (const name of await fs.readdir(dir)) out[name] = await fs.readFile(path.join(dir, name), 'utf8')
  // quicker health for a test network
  const m = JSON.parse(out['upgossip.json'] ?? '{}') as Record<string, unknown>
  out['upgossip.json'] = JSON.stringify({ ...m, health: { ...(m.health as object), readyWithin: '15s', stableFor: '1s' }, ...manifest })
  return out
}

/** A request to this peer's own app, as a client of it would make through its daemon's proxy. */
async function ask (peer: Peer, method: string, target: string, body?: string): Promise<Answer> {
  const { selfHost } = await proxyPeers(peer)
  return await viaProxy(proxyOf(peer), method, `http://${selfHost}${target}`, body, { headers: { 'content-type': 'application/json' } })
}

describe.skipIf(!hasPython)('pykv, the Python demo app', () => {
  it('upgrades 1.0.0 → 2.0.0 with a mixed network in between, translated both ways, and rolls back with the writes of 2.0.0', async () => {
    net = await TestNet.create()
    await fs.writeFile(net.trustFile, JSON.stringify({ apps: { pykv: { publishers: [net.key.id], threshold: 1 } } }))
    const policy = path.join(net.root, 'approve.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'approve' }] }))
    const v1 = await net.releaseFiles(await files('v1'))
    const v2 = await net.releaseFiles(await files('v2'))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'pykv', '--bootstrap', a.addr])
    const c = await net.start('c', ['--app', 'pykv', '--bootstrap', a.addr, '--policy', policy])
    for (const p of [a, b, c]) await p.waitVersion('1.0.0', 90_000)

    // 1.0.0 everywhere: a write on a is copied to b and c
    expect(await ask(a, 'PUT', '/kv/colour', 'blue')).toMatchObject({ status: 200 })
    for (const p of [b, c]) await waitFor(`${p.name} to hold colour`, async () => (await ask(p, 'GET', '/kv/colour')).body === 'blue')

    // 2.0.0 on a and b; c waits for its operator, with 2.0.0's future SO loaded
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b]) await p.waitVersion('2.0.0', 90_000)
    await waitFor('c to wait for approval', async () => (await c.status()).releases.find(r => r.id === v2.id)?.waitingOn === 'approve', 60_000)
    // up.py carried the state into 2.0.0's format
    expect(JSON.parse((await ask(b, 'GET', '/v2/kv/colour')).body)).toEqual({ value: 'blue', updated: 0 })

    // a 1.0.0 write reaches the 2.0.0 peers, and a 2.0.0 write the 1.0.0 peer
    expect(await ask(c, 'PUT', '/kv/shape', 'round')).toMatchObject({ status: 200 })
    for (const p of [a, b]) await waitFor(`${p.name} to hold shape`, async () => (JSON.parse((await ask(p, 'GET', '/v2/kv/shape')).body) as { value?: string }).value === 'round')
    expect(await ask(a, 'PUT', '/v2/kv/size', JSON.stringify({ value: 'large' }))).toMatchObject({ status: 200 })
    await waitFor('c to hold size', async () => (await ask(c, 'GET', '/kv/size')).body === 'large')

    // c upgrades when approved, with its state; then rolls back, keeping what 2.0.0 wrote
    expect((await runCli(['approve', 'pykv@2.0.0', '--data', c.dataDir])).code).toBe(0)
    await c.waitVersion('2.0.0', 90_000)
    expect(JSON.parse((await ask(c, 'GET', '/v2/kv/shape')).body)).toMatchObject({ value: 'round' })
    expect(await ask(c, 'PUT', '/v2/kv/late', JSON.stringify({ value: 'written by 2.0.0' }))).toMatchObject({ status: 200 })
    const back = await runCli(['rollback', '--data', c.dataDir])
    expect(back.code, back.stderr).toBe(0)
    await c.waitVersion('1.0.0', 90_000)
    expect((await ask(c, 'GET', '/kv/late')).body).toBe('written by 2.0.0')
    expect((await ask(c, 'GET', '/kv/colour')).body).toBe('blue')
  })
})
