/**
 * Crashes during a switch of a process app, on real daemons: a Python service (standard
 * library only) whose 2.0.0 moves its state to a new format with command transforms, and
 * a daemon that kills itself (`UPGOSSIP_FAULT=crash-at:<step>`) at every journal step of
 * the switch, then is started again. Each case ends with one version running, its state
 * intact (the old state untouched; the new one as up.py wrote it), no app process left
 * over (none that the recorded process group misses at the crash, none but the one the
 * status names after the restart), and the peer serving.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { UPGRADE_STEPS } from '../../src/upgrade/index.js'
import { appProcesses, gone, hasPython, killAppProcesses, recordedGroup, requirePythonInCi } from './support/process-apps.js'
import type { AppProcessInfo } from './support/process-apps.js'
import { pyKv } from './support/py-kv.js'
import { TestNet, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

requirePythonInCi('process-app-faults.test.ts')

let net: TestNet | undefined

afterEach(async () => {
  const root = net?.root
  await net?.close()
  net = undefined
  if (root == null) return
  // a daemon stopped with SIGTERM leaves no app process behind (a failed case may: ended here)
  const left = await killAppProcesses(root)
  expect(left.map(p => `${p.pid} ${p.cmdline}`), 'app processes left after the daemons stopped').toEqual([])
})

/** Publish a bundle through the daemon's control API (as `upgossip publish` does). */
async function publish (p: Peer, file: string): Promise<void> {
  const res = await p.api('/publish', { method: 'POST', body: await fs.readFile(file) })
  expect(res.status, await res.text()).toBe(200)
}

/** One peer running the Python kv 1.0.0 with k=hello written; the daemon started with `env`. */
async function peerOnV1 (env: Record<string, string> = {}): Promise<{ n: TestNet, a: Peer, v1: { id: string }, before: string }> {
  const n = await TestNet.create({ transformLimit: '5s' })
  net = n
  const v1 = await n.releaseFiles(pyKv('1.0.0', 1))
  const a = await n.start('a', ['--install', v1.file], env)
  await a.waitVersion('1.0.0')
  expect(await a.call({ method: 'PUT', path: '/kv/k', body: 'hello' })).toMatchObject({ status: 200 })
  const before = await fs.readFile(path.join(a.dataDir, 'state', v1.id, 'data.json'), 'utf8')
  expect(JSON.parse(before)).toEqual({ k: 'hello' })
  return { n, a, v1, before }
}

/** `GET /kv/<key>` on the peer's own app, parsed. */
async function read (p: Peer, key: string): Promise<{ status: number, value: unknown }> {
  const answer = await p.call({ method: 'GET', path: `/kv/${key}` }) as { status: number, body: string }
  return { status: answer.status, value: JSON.parse(answer.body) }
}

/**
 * Wait for the daemon to die of its fault; every app process it leaves running must be in
 * the process group recorded in the data directory, or the next start cannot end it.
 */
async function crashed (a: Peer): Promise<AppProcessInfo[]> {
  await waitFor(`${a.name} to crash`, () => a.exited !== undefined, 60_000, 100)
  const left = await appProcesses(a.dataDir)
  const group = await recordedGroup(a.dataDir)
  for (const p of left) expect(p.pgid, `app process ${p.pid} (${p.cmdline}) left by the crash is not in the recorded group ${String(group)}`).toBe(group)
  return left
}

/** After a restart: exactly one app process (the one the status names, and the recorded group's leader); those left by the crash are gone. */
async function oneAppProcess (a: Peer, left: AppProcessInfo[]): Promise<void> {
  const pid = await waitFor('one app process, the one the status names', async () => {
    const running = (await a.status()).process?.pid
    const procs = await appProcesses(a.dataDir)
    return running != null && procs.length === 1 && procs[0]?.pid === running ? running : undefined
  }, 15_000)
  expect(await recordedGroup(a.dataDir)).toBe(pid)
  // the restart killed them (SIGKILL to the recorded group): gone within moments
  for (const p of left) await waitFor(`app process ${p.pid} (${p.cmdline}), left by the crash, to be gone`, async () => await gone(p.pid), 5_000, 100)
}

async function historyTypes (a: Peer): Promise<string[]> {
  return (await a.history()).map(e => e.type)
}

describe.skipIf(!hasPython)('a process app\'s switch with the daemon crashing at every step', () => {
  for (const step of UPGRADE_STEPS.filter(s => s !== 'rollback')) {
    it(`crash at ${step}: after a restart one version runs, 2.0.0 with up.py's state, nothing left over`, async () => {
      const { n, a, v1, before } = await peerOnV1({ UPGOSSIP_FAULT: `crash-at:${step}` })
      const v2 = await n.releaseFiles(pyKv('2.0.0', 2))
      await publish(a, v2.file)
      const left = await crashed(a)

      const again = await n.start('a')
      await again.waitVersion('2.0.0')
      await oneAppProcess(again, left)
      expect(await read(again, 'k')).toEqual({ status: 200, value: { key: 'k', value: 'hello', version: '2.0.0' } })
      // the old state as it was; the new one as up.py wrote it
      expect(await fs.readFile(path.join(again.dataDir, 'state', v1.id, 'data.json'), 'utf8')).toBe(before)
      expect(await fs.readdir(path.join(again.dataDir, 'state', v2.id))).toEqual(['store.json'])
      expect(JSON.parse(await fs.readFile(path.join(again.dataDir, 'state', v2.id, 'store.json'), 'utf8'))).toEqual({ entries: [['k', 'hello']] })
      // and the peer serves: a write after the restart is read back
      expect(await again.call({ method: 'PUT', path: '/kv/after', body: 'restart' })).toMatchObject({ status: 200 })
      expect(await read(again, 'after')).toEqual({ status: 200, value: { key: 'after', value: 'restart', version: '2.0.0' } })
      expect(await historyTypes(again)).toContain(step === 'commit' ? 'upgrade-recovered' : 'upgrade-interrupted')
    })
  }

  const rollbacks = [
    ['a 2.0.0 that never answers its health check', (): Record<string, string> => pyKv('2.0.0', 2,
      { health: { http: '/healthz', readyWithin: '2s', stableFor: '1s' } },
      { 'server.py': 'import time\nprint("never listening", flush=True)\nwhile True:\n    time.sleep(1)\n' })],
    ['a 2.0.0 whose up command fails', (): Record<string, string> => pyKv('2.0.0', 2, {}, { 'up.py': 'import sys\nprint("up.py: cannot migrate", file=sys.stderr)\nsys.exit(3)\n' })]
  ] as const
  for (const [what, files] of rollbacks) {
    it(`crash at rollback (${what}): after a restart 1.0.0 runs with its state, 2.0.0 has failed, nothing left over`, async () => {
      const { n, a, v1, before } = await peerOnV1({ UPGOSSIP_FAULT: 'crash-at:rollback' })
      const bad = await n.releaseFiles(files())
      await publish(a, bad.file)
      const left = await crashed(a)

      const again = await n.start('a')
      await again.waitVersion('1.0.0')
      await waitFor('2.0.0 to be failed', async () => (await again.status()).releases.find(r => r.id === bad.id)?.state === 'failed')
      await oneAppProcess(again, left)
      expect(await read(again, 'k')).toEqual({ status: 200, value: { key: 'k', value: 'hello', version: '1.0.0' } })
      expect(await fs.readFile(path.join(again.dataDir, 'state', v1.id, 'data.json'), 'utf8')).toBe(before)
      await expect(fs.stat(path.join(again.dataDir, 'state', bad.id))).rejects.toThrow(/ENOENT/)
      expect(await again.call({ method: 'PUT', path: '/kv/after', body: 'restart' })).toMatchObject({ status: 200 })
      expect(await read(again, 'after')).toEqual({ status: 200, value: { key: 'after', value: 'restart', version: '1.0.0' } })
      expect(await historyTypes(again)).toContain('upgrade-interrupted')
    })
  }
})
