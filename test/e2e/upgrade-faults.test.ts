/**
 * Faults during upgrades, on real daemons: a crash (fault injection) at every step,
 * a real kill -9 at a random moment, transforms that throw, hang or write nothing, and
 * new versions that crash, never get ready, report themselves unhealthy or die while
 * being verified. Every case ends with a version running and its state intact.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { UPGRADE_STEPS } from '../../src/upgrade/index.js'
import { capable, rootUnavailable } from './support/capabilities.js'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

/** One peer running kv 1.0.0 with k=1 written. */
async function peerOnV1 (env: Record<string, string> = {}): Promise<{ net: TestNet, a: Peer }> {
  const n = await TestNet.create({ transformLimit: '2s' })
  net = n
  const v1 = await n.releaseFiles(kvVersion('1.0.0', 'v1'))
  const a = await n.start('a', ['--install', v1.file], env)
  await a.waitVersion('1.0.0')
  expect(await a.call({ op: 'put', key: 'k', value: 1 })).toMatchObject({ ok: true })
  return { net: n, a }
}

async function exited (p: Peer): Promise<void> {
  await waitFor(`${p.name} to die`, () => p.exited !== undefined, 60_000)
}

describe('a crash at every step of an upgrade', () => {
  for (const step of UPGRADE_STEPS.filter(s => s !== 'rollback')) {
    it(`crash at ${step}: after a restart the upgrade completes with the state intact`, async () => {
      const { net: n, a } = await peerOnV1({ UPGOSSIP_FAULT: `crash-at:${step}` })
      const v2 = await n.releaseFiles(kvVersion('2.0.0', 'v2'))
      expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
      await exited(a)
      const again = await n.start('a')
      await again.waitVersion('2.0.0')
      expect(await again.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '2.0.0' })
      const history = JSON.parse((await runCli(['history', '--data', again.dataDir, '--json'])).stdout) as Array<{ type: string }>
      expect(history.map(e => e.type)).toContain(step === 'commit' ? 'upgrade-recovered' : 'upgrade-interrupted')
    })
  }

  it('crash at rollback: after a restart the old version runs and the release has failed', async () => {
    const { net: n, a } = await peerOnV1({ UPGOSSIP_FAULT: 'crash-at:rollback' })
    const bad = await n.releaseFiles(kvVersion('2.0.0', 'crash-at-start'))
    expect((await runCli(['publish', bad.file, '--data', a.dataDir])).code).toBe(0)
    await exited(a)
    const again = await n.start('a')
    await again.waitVersion('1.0.0')
    expect(await again.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '1.0.0' })
    await waitFor('the release to be failed', async () => (await again.status()).releases.find(r => r.id === bad.id)?.state === 'failed')
  })

  it('a switch interrupted three times: the release is marked failed, the old version runs and it is not tried again', async () => {
    // every start crashes at the first step of the switch, as a release that kills its host would
    const fault = { UPGOSSIP_FAULT: 'crash-at:buffer' }
    const { net: n, a } = await peerOnV1(fault)
    const v2 = await n.releaseFiles(kvVersion('2.0.0', 'v2'))
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await exited(a)
    // the first two restarts undo the switch, which goes back to waiting and is tried again
    for (let i = 0; i < 2; i++) await exited(await n.start('a', [], fault))
    // the third undo marks it failed: the daemon stays up on 1.0.0, with the fault still armed
    const last = await n.start('a', [], fault)
    await waitFor('2.0.0 to be failed', async () => (await last.status()).releases.find(r => r.id === v2.id)?.state === 'failed')
    await last.waitVersion('1.0.0')
    expect(await last.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '1.0.0' })
    const history = JSON.parse((await runCli(['history', '--data', last.dataDir, '--json'])).stdout) as Array<{ type: string, message: string }>
    const interrupted = history.filter(e => e.type === 'upgrade-interrupted').map(e => e.message)
    expect(interrupted).toHaveLength(3)
    expect(interrupted[2]).toMatch(/interrupted at buffer \(3 times\); 1\.0\.0 runs; the release is marked failed/)
    expect(last.exited).toBeUndefined()
  })

  it('a real kill -9 at a random moment of an upgrade ends with a version running and the state intact', async () => {
    const { net: n, a } = await peerOnV1()
    const v2 = await n.releaseFiles(kvVersion('2.0.0', 'v2'))
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await new Promise(resolve => setTimeout(resolve, Math.floor(Math.random() * 1500)))
    a.proc.kill('SIGKILL')
    await exited(a)
    const again = await n.start('a')
    await again.waitVersion('2.0.0')
    expect(await again.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '2.0.0' })
  })
})

describe('a failing upgrade rolls back and the old version keeps serving', () => {
  const cases = [
    ['a transform that throws', 'transform-throws', /cannot migrate/],
    ['a transform that exits', 'transform-exits', /exited \(3\) before finishing/],
    ['a transform that hangs past its limit', 'transform-hangs', /limit/],
    ['a transform that writes nothing', 'transform-writes-nothing', /wrote nothing/],
    ['a version that crashes at start', 'crash-at-start', /exited/],
    ['a version that never calls ready()', 'never-ready', /did not call ready/],
    ['a version that reports itself unhealthy within stableFor', 'unhealthy', /self-test failed/],
    ['a version that dies within stableFor', 'dies-while-verified', /exited \(4\) within its stable period/]
  ] as const
  for (const [what, kind, reason] of cases) {
    it(what, async () => {
      const { net: n, a } = await peerOnV1()
      const bad = await n.releaseFiles(kvVersion('2.0.0', kind))
      expect((await runCli(['publish', bad.file, '--data', a.dataDir])).code).toBe(0)
      const failed = await waitFor('the upgrade to fail', async () => {
        const r = (await a.status()).releases.find(x => x.id === bad.id)
        return r?.state === 'failed' ? r : undefined
      }, 60_000)
      expect(failed.reason).toMatch(reason)
      // the release is marked failed as the rollback begins; the peer is running again once it ends
      await a.waitVersion('1.0.0')
      expect(await a.status()).toMatchObject({ version: '1.0.0', state: 'running' })
      expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '1.0.0' })
    })
  }
})

describe('a daemon that does not run as root', () => {
  // the daemon runs as nobody (uid 65534): only root can start it so
  it.skipIf(!capable('upgrade-faults.test.ts (a daemon that does not run as root)', rootUnavailable('to start a daemon as another user')))('carries state over without a transform and keeps it writable', async () => {
    const fs = await import('node:fs/promises')
    const n = await TestNet.create()
    net = n
    // the unprivileged daemon must be able to read the bundles and write its data directory
    await fs.chmod(n.root, 0o777)
    for (const f of await fs.readdir(n.root)) await fs.chmod(`${n.root}/${f}`, 0o644)
    const v1 = await n.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await n.releaseFiles(kvVersion('2.0.0', 'v1'))
    const v3 = await n.releaseFiles(kvVersion('3.0.0', 'v1'))
    for (const f of [v1.file, v2.file, v3.file]) await fs.chmod(f, 0o644)
    const a = await n.start('a', ['--install', v1.file], {}, 65534)
    await a.waitVersion('1.0.0')
    await a.call({ op: 'put', key: 'k', value: 1 })
    for (const v of [v2, v3]) {
      const r = await runCli(['publish', v.file, '--data', a.dataDir])
      expect(r.code, r.stderr).toBe(0)
    }
    await a.waitVersion('3.0.0')
    // written under 3.0.0 into state carried over twice, then read back
    expect(await a.call({ op: 'put', key: 'k2', value: 2 })).toMatchObject({ ok: true })
    expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '3.0.0' })
    expect(await a.call({ op: 'get', key: 'k2' })).toEqual({ value: 2, version: '3.0.0' })
  })
})
