/**
 * Upgrades on real daemons running a small kv app: state carried through a transform,
 * a failing upgrade that rolls back and halts the rollout while every peer keeps serving,
 * a peer several versions behind catching up step by step, and operator controls.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

describe('upgrades', () => {
  it('three peers upgrade with their state carried by the transform; a bad release rolls back and halts the rollout', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    const c = await net.start('c', ['--app', 'kv', '--bootstrap', a.addr])
    for (const p of [a, b, c]) await p.waitVersion('1.0.0')
    for (const [i, p] of [a, b, c].entries()) expect(await p.call({ op: 'put', key: 'k', value: i })).toEqual({ ok: true, version: '1.0.0' })

    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { upgrades: '^1.0.0' }))
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b, c]) await p.waitVersion('2.0.0')
    // each peer's own data went through up(): v2 reads it from its new format
    for (const [i, p] of [a, b, c].entries()) expect(await p.call({ op: 'get', key: 'k' })).toEqual({ value: i, version: '2.0.0' })
    const status = await a.status()
    expect(status.releases.find(r => r.id === v1.id)?.state).toBe('superseded')
    expect(status.releases.find(r => r.id === v2.id)?.state).toBe('active')

    // v3 crashes at start; one peer at a time may try
    const v3 = await net.releaseFiles(kvVersion('3.0.0', 'crash-at-start', { upgrades: '^2.0.0', schedule: [{ rule: 'rolling', max: 1 }] }))
    expect((await runCli(['publish', v3.file, '--data', a.dataDir])).code).toBe(0)
    const failedOn = await waitFor('a peer to fail v3', async () => {
      for (const p of [a, b, c]) if ((await p.status()).releases.find(r => r.id === v3.id)?.state === 'failed') return p
      return undefined
    }, 60_000)
    // the others hear of the failure and never start
    for (const p of [a, b, c].filter(x => x !== failedOn)) {
      await waitFor(`${p.name} to halt on the failure`, async () => {
        const r = (await p.status()).releases.find(x => x.id === v3.id)
        return r?.state === 'waiting' && r.waitingOn === 'halt-on-failures'
      }, 30_000)
    }
    // every peer still serves, on 2.0.0, with its data
    for (const [i, p] of [a, b, c].entries()) {
      expect((await p.status())).toMatchObject({ version: '2.0.0', state: 'running' })
      expect(await p.call({ op: 'get', key: 'k' })).toEqual({ value: i, version: '2.0.0' })
    }
    const history = await runCli(['history', '--data', failedOn.dataDir])
    expect(history.stdout).toMatch(/upgrade-failed/)
    expect(history.stdout).toMatch(/3\.0\.0/)
  })

  it('a peer two versions behind goes step by step', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { upgrades: '^1.0.0' }))
    // same state format as 2.0.0: no transform, the state directory is carried over as is
    const v21 = await net.releaseFiles(kvVersion('2.1.0', 'v2', { upgrades: '^2.0.0', transform: undefined }))
    const a = await net.start('a', ['--install', v1.file])
    await a.waitVersion('1.0.0')
    await a.call({ op: 'put', key: 'carried', value: 'yes' })
    // both releases arrive together; 2.1.0 does not upgrade from 1.x, so 2.0.0 goes first
    expect((await runCli(['publish', v21.file, '--data', a.dataDir])).code).toBe(0)
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await a.waitVersion('2.1.0')
    expect(await a.call({ op: 'get', key: 'carried' })).toEqual({ value: 'yes', version: '2.1.0' })
    const h = JSON.parse((await runCli(['history', '--data', a.dataDir, '--json'])).stdout) as Array<{ type: string, to?: string }>
    expect(h.filter(e => e.type === 'upgrade-committed').map(e => e.to)).toEqual([v2.id, v21.id])
    // only the current and the previous version keep their state; packages, also the
    // keepReleases (default 2) newest left behind before them: 1.0.0
    const listed = async (dir: string): Promise<string[]> => (await fs.readdir(path.join(a.dataDir, dir))).filter(n => !n.startsWith('.')).sort()
    expect(await listed('state')).toEqual([v2.id, v21.id].sort())
    expect(await listed('packages')).toEqual([v1.id, v2.id, v21.id].sort())
  })

  it('approve, hold and resume gate a release; rollback goes back with the down transform', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { schedule: [{ rule: 'approve' }] }))
    const a = await net.start('a', ['--install', v1.file])
    await a.waitVersion('1.0.0')
    await a.call({ op: 'put', key: 'k', value: 'before' })
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await waitFor('v2 to wait for approval', async () => (await a.status()).releases.find(r => r.id === v2.id)?.waitingOn === 'approve')
    expect((await runCli(['hold', 'kv@2.0.0', '--data', a.dataDir])).code).toBe(0)
    expect((await runCli(['approve', v2.id, '--data', a.dataDir])).code).toBe(0)
    await waitFor('v2 to wait on the hold', async () => (await a.status()).releases.find(r => r.id === v2.id)?.waitingOn === 'hold')
    expect((await a.status()).version).toBe('1.0.0')
    expect((await runCli(['resume', 'kv@2.0.0', '--data', a.dataDir])).code).toBe(0)
    await a.waitVersion('2.0.0')
    await a.call({ op: 'put', key: 'k', value: 'written by 2.0.0' })
    const back = await runCli(['rollback', '--data', a.dataDir])
    expect(back.code, back.stderr).toBe(0)
    expect(back.stdout).toContain('2.0.0 → 1.0.0')
    await a.waitVersion('1.0.0')
    // down() carried the write made under 2.0.0 back to 1.0.0's format
    expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 'written by 2.0.0', version: '1.0.0' })
    expect((await a.status()).releases.find(r => r.id === v2.id)?.state).toBe('rolled-back')
    const unknown = await runCli(['approve', 'kv@9.9.9', '--data', a.dataDir])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('[UnknownReleaseError]')
    const noPrevious = await runCli(['rollback', '--data', a.dataDir])
    expect(noPrevious.code).toBe(1)
    expect(noPrevious.stderr).toContain('[RolloutRefusedError]')
  })
})
