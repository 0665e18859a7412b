/**
 * Planned stops (SIGTERM), on real daemons: a switch in progress finishes before the daemon
 * goes, the others hear that the peer stopped (its rolling slot frees at once), and a
 * switch that outlives the stop timeout is undone on the next start without counting as an
 * interruption, however often it happens.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { kvVersion } from './support/kv-app.js'
import { TestNet, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

/** kv 2.0.0 whose up transform takes `ms` before it moves the state. */
function slowV2 (ms: number, manifest: Record<string, unknown> = {}): Record<string, string> {
  const files = kvVersion('2.0.0', 'v2', manifest)
  return {
    ...files,
    'migrate/real-up.js': files['migrate/up.js'] as string,
    'migrate/up.js': `import up from './real-up.js'\nexport default async (args) => { await new Promise(resolve => setTimeout(resolve, ${ms})); return await up(args) }\n`
  }
}

async function waitSwitching (p: Peer): Promise<void> {
  await waitFor(`${p.name} to start switching`, async () => (await p.status()).state === 'upgrading', 60_000, 50)
}

describe('a planned stop', () => {
  it('lets the switch in progress commit, is not an interruption, and tells the others at once (the rolling slot frees)', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await net.releaseFiles(slowV2(4000, { schedule: [{ rule: 'rolling', max: 1 }] }))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    expect(await a.call({ op: 'put', key: 'k', value: 1 })).toMatchObject({ ok: true })
    expect(await b.call({ op: 'put', key: 'k', value: 2 })).toMatchObject({ ok: true })
    expect((await a.api('/publish', { method: 'POST', body: await fs.readFile(v2.file) })).status).toBe(200)
    // one of them takes the slot; the other waits on it
    const first = await waitFor('one peer to switch', async () => {
      for (const p of [a, b]) if ((await p.status()).state === 'upgrading') return p
      return undefined
    }, 60_000, 50)
    const other = first === a ? b : a
    await first.stop()
    expect(first.exited).toBe(0)
    // the other heard the farewell: the peer shows stopped (only a planned stop's last beat says so)
    await waitFor(`${other.name} to see ${first.name} stopped`, async () => (await other.status()).network.find(q => q.peerId === first.peerId)?.state === 'stopped')
    // and, the slot free, it switches
    await other.waitVersion('2.0.0')
    // the stopped peer finished its switch before it went: 2.0.0 committed, nothing interrupted
    const events = (await fs.readFile(path.join(first.dataDir, 'events.jsonl'), 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { type: string })
    expect(events.map(e => e.type)).toContain('stopping')
    expect(events.map(e => e.type)).toContain('upgrade-committed')
    expect(events.map(e => e.type)).not.toContain('upgrade-interrupted')
    const again = await net.start(first.name)
    await again.waitVersion('2.0.0')
    expect((await again.call({ op: 'get', key: 'k' })).version).toBe('2.0.0')
    expect((await again.history()).map(e => e.type)).not.toContain('upgrade-interrupted')
  }, 180_000)

  it('past the stop timeout, cuts the switch short; the next start undoes it without counting it, so a fourth try still commits', async () => {
    net = await TestNet.create({ stopTimeout: '1s' })
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await net.releaseFiles(slowV2(6000))
    let a = await net.start('a', ['--install', v1.file])
    await a.waitVersion('1.0.0')
    expect(await a.call({ op: 'put', key: 'k', value: 7 })).toMatchObject({ ok: true })
    expect((await a.api('/publish', { method: 'POST', body: await fs.readFile(v2.file) })).status).toBe(200)
    // three planned stops mid-switch: three crashes would have marked 2.0.0 failed
    for (let i = 0; i < 3; i++) {
      await waitSwitching(a)
      await a.stop()
      expect(a.exited).toBe(0)
      a = await net.start('a')
    }
    await a.waitVersion('2.0.0', 60_000)
    expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 7, version: '2.0.0' })
    const events = await a.history()
    const interrupted = events.filter(e => e.type === 'upgrade-interrupted')
    expect(interrupted).toHaveLength(3)
    for (const e of interrupted) expect(e.message).toMatch(/by a planned stop of the daemon .*not counted as an interruption/)
    expect((await a.status()).releases.find(r => r.id === v2.id)?.state).toBe('active')
  }, 240_000)
})
