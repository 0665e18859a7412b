import fs from 'node:fs/promises'
import { DataDir } from '../../src/store/index.js'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { AppHost } from '../../src/host/index.js'
import { parseManifest } from '../../src/package/index.js'
import { UpgradeEngine, runTransform } from '../../src/upgrade/index.js'
import type { InstalledRelease, UpgradeEngineInit } from '../../src/upgrade/index.js'
import { tempDir } from '../helpers.js'

/** A host whose app processes are stand-ins, ready and healthy unless their version is `failing`; it records what the engine asks. */
function fakeHost (failing?: string): { host: AppHost, calls: string[] } {
  const calls: string[] = []
  const proc = { drain: async () => {}, waitReady: async () => {}, stayHealthy: async () => {} }
  const broken = { ...proc, waitReady: async () => { throw new Error(`${failing ?? ''} did not start`) } }
  const host = {
    current: proc,
    hold: () => { calls.push('hold') },
    unhold: () => { calls.push('unhold') },
    stopCurrent: async () => { calls.push('stop') },
    launch: (spec: { version: string }) => { calls.push(`launch ${spec.version}`); return spec.version === failing ? broken : proc },
    supervise: () => { calls.push('supervise') }
  }
  return { host: host as unknown as AppHost, calls }
}

function release (id: string, version: string): InstalledRelease {
  return { id, app: 'kv', version, packageDir: `/nowhere/${id}`, manifest: parseManifest({ app: 'kv', version, main: 'server.js', protocol: 1, health: { readyWithin: '1s', stableFor: '10ms' } }) }
}

function engine (dataDir: string, host: AppHost, init: Partial<UpgradeEngineInit> = {}): UpgradeEngine {
  return new UpgradeEngine({
    dataDir: new DataDir(dataDir),
    host,
    installed: async () => undefined,
    simulations: async () => [],
    onCommit: async () => {},
    onFailed: async () => {},
    log: { info: () => {}, warn: () => {} },
    ...init
  })
}

describe('the upgrade engine', () => {
  it('never rolls back past the commit step: a failure to record the commit (a full disk) leaves the new version running, finished by the next start', async () => {
    const dataDir = await tempDir()
    const v1 = release('r1', '1.0.0')
    const v2 = release('r2', '2.0.0')
    await fs.mkdir(path.join(dataDir, 'state', 'r1'), { recursive: true })
    await fs.writeFile(path.join(dataDir, 'state', 'r1', 'data.json'), '{"k":1}')
    const { host, calls } = fakeHost()
    const warnings: string[] = []
    const failed: string[] = []
    const e = engine(dataDir, host, {
      onCommit: async () => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }) },
      onFailed: async (to) => { failed.push(to.version) },
      log: { info: () => {}, warn: (type) => { warnings.push(type) } }
    })
    expect(await e.switch(v1, v2, 'upgrade')).toEqual({ ok: true })
    // 2.0.0 was launched and never stopped for 1.0.0; its state is kept; held requests go to it
    expect(calls.filter(c => c.startsWith('launch'))).toEqual(['launch 2.0.0'])
    expect(calls.at(-1)).toBe('unhold')
    expect(failed).toEqual([])
    expect(warnings).toContain('commit-incomplete')
    expect(await fs.readFile(path.join(dataDir, 'state', 'r2', 'data.json'), 'utf8')).toBe('{"k":1}')
    // the journal still says commit: the next start finishes it
    const commits: string[] = []
    const again = engine(dataDir, fakeHost().host, { onCommit: async (to) => { commits.push(to.version) } })
    expect(await again.recover()).toEqual({ kind: 'finished-commit', to: 'r2' })
    expect(commits).toEqual(['2.0.0'])
  })

  it('reports a failed switch once the old version runs again, with no switch in progress any more', async () => {
    const dataDir = await tempDir()
    const { host, calls } = fakeHost('2.0.0')
    const seen: Array<{ inProgress: boolean, calls: string[] }> = []
    const e: UpgradeEngine = engine(dataDir, host, {
      onFailed: async () => { seen.push({ inProgress: e.inProgress != null, calls: [...calls] }) }
    })
    const outcome = await e.switch(release('r1', '1.0.0'), release('r2', '2.0.0'), 'upgrade')
    expect(outcome).toMatchObject({ ok: false, reason: 'failed at verify: 2.0.0 did not start' })
    // when the failure is reported, 1.0.0 runs again, requests go through, and the engine says no switch is running
    expect(seen).toEqual([{ inProgress: false, calls: expect.arrayContaining(['launch 1.0.0', 'unhold']) }])
  })

  it('a planned stop: settle() waits for the switch to end; one cut short past it is undone on the next start without counting', async () => {
    const dataDir = await tempDir()
    let release2: () => void = () => {}
    const slow = new Promise<void>(resolve => { release2 = resolve })
    const { host } = fakeHost()
    const stuck = { ...host, launch: () => ({ drain: async () => {}, waitReady: async () => { await slow; throw new Error('killed by the stop') }, stayHealthy: async () => {} }) } as unknown as AppHost
    const e = engine(dataDir, stuck)
    expect(await e.settle(10)).toBe(true)
    const switching = e.switch(release('r1', '1.0.0'), release('r2', '2.0.0'), 'upgrade')
    await new Promise(resolve => setTimeout(resolve, 20))
    // still at verify after the bound: not settled; the stop marks the attempt planned
    expect(await e.settle(30)).toBe(false)
    await e.stop(true)
    release2()
    expect(await switching).toEqual({ ok: false, reason: 'the daemon stopped' })
    expect(await e.settle(10)).toBe(true)
    const messages: string[] = []
    const failed: string[] = []
    for (let i = 0; i < 3; i++) {
      // the same planned cut three times over: never counted, never failed
      const journal = JSON.parse(await fs.readFile(path.join(dataDir, 'journal.json'), 'utf8'))
      expect(journal.attempt).toMatchObject({ step: 'verify', planned: true })
      const again = engine(dataDir, fakeHost().host, { onFailed: async (to) => { failed.push(to.version) }, log: { info: (_t, m) => { messages.push(m) }, warn: (_t, m) => { messages.push(m) } } })
      expect(await again.recover()).toEqual({ kind: 'undone', to: 'r2', step: 'verify', failed: false, switchKind: 'upgrade' })
      if (i < 2) await fs.writeFile(path.join(dataDir, 'journal.json'), JSON.stringify(journal))
    }
    expect(failed).toEqual([])
    expect(messages.every(m => m.includes('not counted as an interruption'))).toBe(true)
    expect(JSON.parse(await fs.readFile(path.join(dataDir, 'journal.json'), 'utf8'))).toEqual({ attempt: null, interrupted: {} })
  })
})

describe('running a transform', () => {
  it('fails with TransformFailedError when its process cannot be started, instead of waiting forever', async () => {
    const root = await tempDir()
    const from = path.join(root, 'from')
    await fs.mkdir(from)
    // the transform's process starts in its package directory; one that is gone makes the start fail
    const run = runTransform({ packageDir: path.join(root, 'gone'), entry: 'up.js', from, to: path.join(root, 'to'), fromVersion: '1.0.0', toVersion: '2.0.0', logFile: path.join(root, 'transform.log'), limitMs: 60_000 })
    await expect(run).rejects.toThrow(/transform 1\.0\.0 → 2\.0\.0 failed: could not be started: spawn .* ENOENT/)
    await expect(fs.stat(path.join(root, 'to'))).rejects.toThrow(/ENOENT/)
  })
})
