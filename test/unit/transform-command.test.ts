/**
 * Transforms given as commands (`{ "command": [argv] }`): run in the package directory
 * with UPGOSSIP_FROM / UPGOSSIP_TO, exit 0 = the new state, anything else or the time
 * limit = a named failure with the target untouched, the whole process group killed.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { AppHost } from '../../src/host/index.js'
import { parseManifest } from '../../src/package/index.js'
import { DataDir } from '../../src/store/index.js'
import { TransformFailedError, UpgradeEngine, runTransform } from '../../src/upgrade/index.js'
import type { InstalledRelease, TransformRun } from '../../src/upgrade/index.js'
import { tempDir, writeTree } from '../helpers.js'

/** A package directory with `files`, an old state with `data.json`, and where the new state goes. */
async function setUp (files: Record<string, string> = {}): Promise<{ root: string, run: Omit<TransformRun, 'entry'> }> {
  const root = await tempDir()
  const packageDir = path.join(root, 'package')
  await writeTree(packageDir, { 'upgossip.json': '{}', ...files })
  const from = path.join(root, 'from')
  await writeTree(from, { 'data.json': '{"a":1}' })
  return { root, run: { packageDir, from, to: path.join(root, 'state', 'r2'), fromVersion: '1.0.0', toVersion: '2.0.0', logFile: path.join(root, 'app.log'), limitMs: 20_000 } }
}

/** Whether a process still runs (a zombie waiting for a reaper does not). */
async function alive (pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return stat !== '' && !/^\d+ \(.*\) Z/.test(stat)
}

/** Whether `pid` is still alive after a moment: SIGKILL is sent at once, but on a loaded machine the process may take a few ms to die. */
async function aliveAfterKill (pid: number): Promise<boolean> {
  for (let i = 0; i < 40 && await alive(pid); i++) await new Promise(resolve => setTimeout(resolve, 50))
  return await alive(pid)
}

/** What is left next to the target: no temporary directory survives a run. */
async function besideTarget (run: Omit<TransformRun, 'entry'>): Promise<string[]> {
  return await fs.readdir(path.dirname(run.to)).catch(() => [])
}

describe('a command transform', () => {
  it('runs in the package directory with the old state, the versions and an empty target; exit 0 puts the new state in place', async () => {
    const { run } = await setUp({ 'migrate/note.txt': 'from the package' })
    const script = [
      'set -e',
      'test -z "$(ls -A "$UPGOSSIP_TO")"',
      'cp "$UPGOSSIP_FROM/data.json" "$UPGOSSIP_TO/store.json"',
      'cp migrate/note.txt "$UPGOSSIP_TO/note.txt"',
      'echo "$UPGOSSIP_FROM_VERSION to $UPGOSSIP_TO_VERSION" > "$UPGOSSIP_TO/versions"',
      'echo "moved the state"',
      'echo "a warning" >&2'
    ].join('\n')
    await runTransform({ ...run, entry: { command: ['sh', '-c', script] } })
    expect(await fs.readFile(path.join(run.to, 'store.json'), 'utf8')).toBe('{"a":1}')
    expect(await fs.readFile(path.join(run.to, 'note.txt'), 'utf8')).toBe('from the package')
    expect(await fs.readFile(path.join(run.to, 'versions'), 'utf8')).toBe('1.0.0 to 2.0.0\n')
    expect(await besideTarget(run)).toEqual(['r2'])
    // its output goes to the log, after a line naming the transform
    const log = await fs.readFile(run.logFile, 'utf8')
    expect(log).toMatch(/^--- \S+ transform command sh -c "set -e\\n.*… \(1\.0\.0 → 2\.0\.0\)\nmoved the state\na warning\n$/)
  })

  it('runs a python3 script, and a "./" program of the package with its arguments', async () => {
    const { run } = await setUp({
      'up.py': 'import json, os, pathlib\nold = json.loads(pathlib.Path(os.environ["UPGOSSIP_FROM"], "data.json").read_text())\npathlib.Path(os.environ["UPGOSSIP_TO"], "store.json").write_text(json.dumps({"entries": sorted(old.items())}))\n',
      'bin/up.sh': '#!/bin/sh\necho "$1" > "$UPGOSSIP_TO/argv"\npwd -P > "$UPGOSSIP_TO/cwd"\necho "$PWD" >> "$UPGOSSIP_TO/cwd"\n'
    })
    await runTransform({ ...run, entry: { command: ['python3', 'up.py'] } })
    expect(JSON.parse(await fs.readFile(path.join(run.to, 'store.json'), 'utf8'))).toEqual({ entries: [['a', 1]] })
    // unpacking marks it executable; here, the test does
    await fs.chmod(path.join(run.packageDir, 'bin', 'up.sh'), 0o755)
    await runTransform({ ...run, entry: { command: ['./bin/up.sh', 'with space'] } })
    expect(await fs.readFile(path.join(run.to, 'argv'), 'utf8')).toBe('with space\n')
    const packageDir = await fs.realpath(run.packageDir)
    expect(await fs.readFile(path.join(run.to, 'cwd'), 'utf8')).toBe(`${packageDir}\n${packageDir}\n`)
  })

  it('fails on a non-zero exit, naming the command and the code; the target stays absent and the old state as it was', async () => {
    const { run } = await setUp()
    const failing = runTransform({ ...run, entry: { command: ['sh', '-c', 'echo half > "$UPGOSSIP_TO/store.json"; exit 3'] } })
    await expect(failing).rejects.toThrow(TransformFailedError)
    await expect(failing).rejects.toThrow('transform command sh -c "echo half > \\"$UPGOSSIP_TO/store.json\\"; exit 3" (1.0.0 → 2.0.0) exited with code 3')
    await expect(fs.stat(run.to)).rejects.toThrow(/ENOENT/)
    expect(await besideTarget(run)).toEqual([])
    expect(await fs.readdir(run.from)).toEqual(['data.json'])
    expect(await fs.readFile(run.logFile, 'utf8')).toMatch(/--- transform command .* exited with code 3\n$/)
    // an earlier state at the target is not touched by a failed run
    await writeTree(run.to, { 'kept.json': '1' })
    await expect(runTransform({ ...run, entry: { command: ['python3', '-c', 'import sys; sys.exit(2)'] } })).rejects.toThrow(/exited with code 2$/)
    expect(await fs.readdir(run.to)).toEqual(['kept.json'])
  })

  it('fails when it writes nothing from a non-empty state, as a module transform does', async () => {
    const { run } = await setUp()
    await expect(runTransform({ ...run, entry: { command: ['true'] } })).rejects.toThrow('transform command true (1.0.0 → 2.0.0) wrote nothing, though the old state was not empty')
    await expect(fs.stat(run.to)).rejects.toThrow(/ENOENT/)
  })

  it('is killed with everything it started at its time limit', async () => {
    const { root, run } = await setUp()
    const pids = path.join(root, 'pids')
    // the shell starts a child that would write into the new state later, and hangs
    const script = `(sleep 30; echo late > "$UPGOSSIP_TO/late") & echo $! > ${pids}; echo $$ >> ${pids}; wait`
    const started = Date.now()
    const hung = runTransform({ ...run, limitMs: 700, entry: { command: ['sh', '-c', script] } })
    await expect(hung).rejects.toThrow(/^transform command sh -c .* \(1\.0\.0 → 2\.0\.0\) was killed after 700ms \(its time limit\)$/)
    expect(Date.now() - started).toBeLessThan(10_000)
    const [child, shell] = (await fs.readFile(pids, 'utf8')).trim().split('\n').map(Number)
    for (const pid of [child, shell]) expect(await aliveAfterKill(pid as number), `process ${String(pid)}`).toBe(false)
    await expect(fs.stat(run.to)).rejects.toThrow(/ENOENT/)
    expect(await besideTarget(run)).toEqual([])
  })

  it('leaves nothing running once it has exited: what it started in the background is killed before the state is put in place', async () => {
    const { root, run } = await setUp()
    const pidFile = path.join(root, 'pid')
    await runTransform({ ...run, entry: { command: ['sh', '-c', `echo new > "$UPGOSSIP_TO/store.json"; sleep 30 & echo $! > ${pidFile}`] } })
    expect(await aliveAfterKill(Number(await fs.readFile(pidFile, 'utf8')))).toBe(false)
    expect(await fs.readdir(run.to)).toEqual(['store.json'])
  })

  it('names a program that is missing, or a package program that cannot be run', async () => {
    const { run } = await setUp({ 'up.sh': 'echo no #! line and no x bit\n' })
    await expect(runTransform({ ...run, entry: { command: ['upgossip-no-such-program', 'up.py'] } }))
      .rejects.toThrow('transform command upgossip-no-such-program up.py (1.0.0 → 2.0.0) could not start: ENOENT (is upgossip-no-such-program installed and on PATH?)')
    await expect(runTransform({ ...run, entry: { command: ['./up.sh'] } })).rejects.toThrow(/could not start: EACCES \(\.\/up\.sh needs a #! line and the executable bit: chmod \+x it/)
    await expect(fs.stat(run.to)).rejects.toThrow(/ENOENT/)
    expect(await besideTarget(run)).toEqual([])
  })
})

describe('the upgrade engine with command transforms', () => {
  /** A host whose app processes are stand-ins, always ready and healthy. */
  function host (): AppHost {
    const proc = { drain: async () => {}, waitReady: async () => {}, stayHealthy: async () => {} }
    return { current: proc, hold: () => {}, unhold: () => {}, stopCurrent: async () => {}, launch: () => proc, supervise: () => {} } as unknown as AppHost
  }

  async function release (root: string, id: string, version: string, manifest: Record<string, unknown>): Promise<InstalledRelease> {
    const packageDir = path.join(root, 'packages', id)
    await writeTree(packageDir, { 'server.js': '', 'upgossip.json': '{}' })
    return { id, app: 'kv', version, packageDir, manifest: parseManifest({ app: 'kv', version, main: 'server.js', protocol: 1, health: { readyWithin: '1s', stableFor: '10ms' }, ...manifest }) }
  }

  it('transforms the state with up on an upgrade and with down on a rollback; a failing up rolls back with the old state untouched', async () => {
    const root = await tempDir()
    const dataDir = new DataDir(root)
    await writeTree(dataDir.stateDir('r1'), { 'data.json': '{"k":1}' })
    const failures: string[] = []
    const engine = new UpgradeEngine({
      dataDir,
      host: host(),
      installed: async () => undefined,
      simulations: async () => [],
      onCommit: async () => {},
      onFailed: async (_to, _from, reason) => { failures.push(reason) },
      log: { info: () => {}, warn: () => {} }
    })
    const v1 = await release(root, 'r1', '1.0.0', {})
    const transform = {
      up: { command: ['sh', '-c', 'sed "s/k/key/" "$UPGOSSIP_FROM/data.json" > "$UPGOSSIP_TO/store.json"'] },
      down: { command: ['python3', '-c', 'import os, shutil; shutil.copy(os.path.join(os.environ["UPGOSSIP_FROM"], "store.json"), os.path.join(os.environ["UPGOSSIP_TO"], "data.json"))'] }
    }
    const v2 = await release(root, 'r2', '2.0.0', { transform })
    expect(await engine.switch(v1, v2, 'upgrade')).toEqual({ ok: true })
    expect(await fs.readFile(path.join(dataDir.stateDir('r2'), 'store.json'), 'utf8')).toBe('{"key":1}')
    // the rollback runs 2.0.0's down command
    await fs.rm(dataDir.stateDir('r1'), { recursive: true })
    expect(await engine.switch(v2, v1, 'downgrade')).toEqual({ ok: true })
    expect(await fs.readFile(path.join(dataDir.stateDir('r1'), 'data.json'), 'utf8')).toBe('{"key":1}')

    const v3 = await release(root, 'r3', '3.0.0', { transform: { up: { command: ['sh', '-c', 'exit 5'] } } })
    const outcome = await engine.switch(v1, v3, 'upgrade')
    expect(outcome).toEqual({ ok: false, reason: 'failed at transform: transform command sh -c "exit 5" (1.0.0 → 3.0.0) exited with code 5' })
    expect(failures).toEqual([outcome.ok ? '' : outcome.reason])
    expect(await fs.readFile(path.join(dataDir.stateDir('r1'), 'data.json'), 'utf8')).toBe('{"key":1}')
    expect((await fs.readdir(dataDir.states)).sort()).toEqual(['r1', 'r2'])
  })
})
