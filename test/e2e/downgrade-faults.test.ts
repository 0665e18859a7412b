/**
 * A crash at every step of a downgrade (`upgossip rollback`: 2.0.0 back to 1.0.0, whose
 * `down` transform carries the writes made under 2.0.0 back). One peer, restarted with
 * `UPGOSSIP_FAULT=crash-at:<step>` before each rollback: a crash before the commit step is
 * undone on the next start (2.0.0 runs with its state, and can be rolled back again); a
 * crash at the commit step is finished (1.0.0 runs with the state carried back).
 * The same steps during an upgrade are in upgrade-faults.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UPGRADE_STEPS } from '../../src/upgrade/index.js'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet
let a: Peer

beforeAll(async () => {
  net = await TestNet.create({ transformLimit: '5s' })
  const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
  const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2'))
  a = await net.start('a', ['--install', v1.file])
  await a.waitVersion('1.0.0')
  await a.call({ op: 'put', key: 'k', value: 1 })
  expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
  await a.waitVersion('2.0.0')
  // written under 2.0.0: only the down transform carries it back
  await a.call({ op: 'put', key: 'k2', value: 2 })
})

afterAll(async () => {
  await net?.close()
})

/** Restart the peer with a fault, ask for a rollback, and wait for the crash; then start it again without the fault. */
async function rollbackCrashingAt (step: string): Promise<void> {
  await a.stop()
  const faulty = await net.start('a', [], { UPGOSSIP_FAULT: `crash-at:${step}` })
  await faulty.waitVersion('2.0.0')
  const r = await runCli(['rollback', '--data', faulty.dataDir])
  // the daemon died in the middle of the request
  expect(r.code).not.toBe(0)
  await waitFor('the daemon to die', () => faulty.exited !== undefined, 30_000)
  a = await net.start('a')
}

async function lastInterruption (): Promise<Record<string, unknown> | undefined> {
  const history = JSON.parse((await runCli(['history', '--data', a.dataDir, '--json'])).stdout) as Array<Record<string, unknown>>
  return history.filter(e => e.type === 'upgrade-interrupted' || e.type === 'upgrade-recovered').at(-1)
}

describe('a crash at every step of a downgrade', () => {
  // every step but commit (below) and rollback, which only a failed switch reaches (upgrade-faults.test.ts)
  const undone = UPGRADE_STEPS.filter(s => s !== 'commit' && s !== 'rollback')

  for (const step of undone) {
    it(`crash at ${step}: the rollback is undone on restart, 2.0.0 runs with its state`, async () => {
      await rollbackCrashingAt(step)
      await a.waitVersion('2.0.0')
      expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '2.0.0' })
      expect(await a.call({ op: 'get', key: 'k2' })).toEqual({ value: 2, version: '2.0.0' })
      const interrupted = await lastInterruption()
      expect(interrupted).toMatchObject({ type: 'upgrade-interrupted', step })
      // a downgrade has no release to mark failed, however often it was interrupted
      expect(interrupted?.message).toMatch(/^the downgrade to 1\.0\.0 was interrupted at \w+ \(\d+ times?\); 2\.0\.0 runs$/)
    })
  }

  it('crash at commit: the rollback is finished on restart, 1.0.0 runs with the writes made under 2.0.0 carried back', async () => {
    await rollbackCrashingAt('commit')
    await a.waitVersion('1.0.0')
    expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '1.0.0' })
    expect(await a.call({ op: 'get', key: 'k2' })).toEqual({ value: 2, version: '1.0.0' })
    expect(await lastInterruption()).toMatchObject({ type: 'upgrade-recovered' })
    // and the peer works on: a write under 1.0.0
    expect(await a.call({ op: 'put', key: 'k3', value: 3 })).toMatchObject({ ok: true, version: '1.0.0' })
  })
})
