/**
 * Transforms written in another language, as commands (`{ "command": [argv] }`), on real
 * daemons: an SDK app whose 2.0.0 moves its state with a python3 script (standard library
 * only) and goes back with a `./` program of the package; commands that fail, hang past
 * their limit or cannot start roll the switch back with the old state untouched; a
 * daemon killed while one runs finishes the upgrade after a restart; `upgossip check`
 * runs them on sample state.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir, writeTree } from '../helpers.js'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

/** 1.0.0's `data.json` ({ key: value }) into 2.0.0's `store.json` ({ entries: [[key, value]] }). */
const UP_PY = `import json, os, time
src = os.path.join(os.environ["UPGOSSIP_FROM"], "data.json")
data = {}
if os.path.exists(src):
    with open(src) as f:
        data = json.load(f)
print("up started", flush=True)
time.sleep(float(os.environ.get("KV_UP_DELAY", "0")))
with open(os.path.join(os.environ["UPGOSSIP_TO"], "store.json"), "w") as f:
    json.dump({"entries": [[k, v] for k, v in data.items()]}, f, separators=(",", ":"))
print(f"up {os.environ['UPGOSSIP_FROM_VERSION']} -> {os.environ['UPGOSSIP_TO_VERSION']}: moved {len(data)} keys")
`

/** And back; run as `./migrate/down.py`, so the daemon must have made it executable. */
const DOWN_PY = `#!/usr/bin/env python3
import json, os
with open(os.path.join(os.environ["UPGOSSIP_FROM"], "store.json")) as f:
    entries = json.load(f)["entries"]
with open(os.path.join(os.environ["UPGOSSIP_TO"], "data.json"), "w") as f:
    # written as the JavaScript version writes it, so that down(up(state)) == state byte for byte
    json.dump(dict(entries), f, separators=(",", ":"))
`

/** kv 2.0.0 (store.json) whose transforms are the given commands and files instead of JS modules. */
function kvWithCommands (transform: Record<string, unknown>, files: Record<string, string>): Record<string, string> {
  const v2 = kvVersion('2.0.0', 'v2', { upgrades: '^1.0.0' })
  const manifest = { ...JSON.parse(v2['upgossip.json'] as string), transform }
  return { 'server.js': v2['server.js'] as string, ...files, 'upgossip.json': JSON.stringify(manifest) }
}

const PYTHON_KV = kvWithCommands(
  { up: { command: ['python3', 'migrate/up.py'] }, down: { command: ['./migrate/down.py'] } },
  { 'migrate/up.py': UP_PY, 'migrate/down.py': DOWN_PY }
)

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

async function appLog (p: Peer): Promise<string> {
  return await fs.readFile(path.join(p.dataDir, 'app.log'), 'utf8').catch(() => '')
}

describe('command transforms on real daemons', () => {
  it('a python3 up command carries each peer\'s state to 2.0.0, and a rollback runs the package\'s ./migrate/down.py', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    expect(await a.call({ op: 'put', key: 'k', value: 'on a' })).toEqual({ ok: true, version: '1.0.0' })
    expect(await b.call({ op: 'put', key: 'k', value: 'on b' })).toEqual({ ok: true, version: '1.0.0' })

    const v2 = await net.releaseFiles(PYTHON_KV)
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b]) await p.waitVersion('2.0.0')
    // 2.0.0 reads only store.json: the values are there because up.py wrote them
    expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 'on a', version: '2.0.0' })
    expect(await b.call({ op: 'get', key: 'k' })).toEqual({ value: 'on b', version: '2.0.0' })
    for (const p of [a, b]) expect(await appLog(p)).toContain('up 1.0.0 -> 2.0.0: moved 1 keys')
    expect(await fs.readdir(path.join(a.dataDir, 'state', v2.id))).toEqual(['store.json'])

    await a.call({ op: 'put', key: 'k', value: 'written by 2.0.0' })
    const back = await runCli(['rollback', '--data', a.dataDir])
    expect(back.code, back.stderr).toBe(0)
    await a.waitVersion('1.0.0')
    expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 'written by 2.0.0', version: '1.0.0' })
  })

  const failures = [
    ['exits with code 3 after writing half its state', kvWithCommands({ up: { command: ['python3', 'up.py'] } }, { 'up.py': 'import os, sys\nopen(os.path.join(os.environ["UPGOSSIP_TO"], "store.json"), "w").write("{")\nsys.exit(3)\n' }),
      /transform command python3 up\.py \(1\.0\.0 → 2\.0\.0\) exited with code 3/],
    ['runs past its time limit', kvWithCommands({ up: { command: ['python3', '-c', 'import time\nwhile True: time.sleep(1)'] } }, {}),
      /transform command python3 -c .* \(1\.0\.0 → 2\.0\.0\) was killed after 2s \(its time limit\)/],
    ['names a program that is not installed', kvWithCommands({ up: { command: ['python9-upgossip-test', 'up.py'] } }, {}),
      /could not start: ENOENT \(is python9-upgossip-test installed and on PATH\?\)/]
  ] as const
  for (const [what, files, reason] of failures) {
    it(`a command transform that ${what} rolls the switch back; 1.0.0 serves its untouched state`, async () => {
      const n = await TestNet.create({ transformLimit: '2s' })
      net = n
      const v1 = await n.releaseFiles(kvVersion('1.0.0', 'v1'))
      const a = await n.start('a', ['--install', v1.file])
      await a.waitVersion('1.0.0')
      await a.call({ op: 'put', key: 'k', value: 1 })
      const before = await fs.readFile(path.join(a.dataDir, 'state', v1.id, 'data.json'), 'utf8')
      const bad = await n.releaseFiles(files)
      expect((await runCli(['publish', bad.file, '--data', a.dataDir])).code).toBe(0)
      const failed = await waitFor('the upgrade to fail', async () => {
        const r = (await a.status()).releases.find(x => x.id === bad.id)
        return r?.state === 'failed' ? r : undefined
      }, 60_000)
      expect(failed.reason).toMatch(/^failed at transform: transform command /)
      expect(failed.reason).toMatch(reason)
      await a.waitVersion('1.0.0')
      expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '1.0.0' })
      expect(await fs.readFile(path.join(a.dataDir, 'state', v1.id, 'data.json'), 'utf8')).toBe(before)
      await expect(fs.stat(path.join(a.dataDir, 'state', bad.id))).rejects.toThrow(/ENOENT/)
      expect(await appLog(a)).toMatch(reason)
    })
  }

  it('a daemon killed while a command transform runs finishes the upgrade after a restart, with the state intact', async () => {
    const n = await TestNet.create()
    net = n
    const v1 = await n.releaseFiles(kvVersion('1.0.0', 'v1'))
    const env = { KV_UP_DELAY: '2' }
    const a = await n.start('a', ['--install', v1.file], env)
    await a.waitVersion('1.0.0')
    await a.call({ op: 'put', key: 'k', value: 1 })
    const v2 = await n.releaseFiles(PYTHON_KV)
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await waitFor('up.py to start', async () => (await appLog(a)).includes('up started'), 60_000, 50)
    a.proc.kill('SIGKILL')
    await waitFor('a to die', () => a.exited !== undefined)
    const again = await n.start('a', [], env)
    await again.waitVersion('2.0.0')
    expect(await again.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '2.0.0' })
    const history = await again.history()
    expect(history.map(e => e.type)).toContain('upgrade-interrupted')
  })
})

describe('upgossip check with command transforms', () => {
  it('runs the commands on the sample state and reports a down that loses data', async () => {
    const root = await tempDir('upgossip-check-cmd-')
    try {
      const v1 = path.join(root, 'v1')
      await writeTree(v1, kvVersion('1.0.0', 'v1'))
      const v2 = path.join(root, 'v2')
      await writeTree(v2, PYTHON_KV)
      // a publisher's own directory keeps its modes: the ./ program is executable there
      await fs.chmod(path.join(v2, 'migrate', 'down.py'), 0o755)
      const state = path.join(root, 'state')
      await writeTree(state, { 'data.json': JSON.stringify({ a: 1, b: 'two' }) })
      const ok = await runCli(['check', v2, '--previous', v1, '--state', state])
      expect(ok.code, ok.stderr).toBe(0)
      expect(ok.stdout).toContain('transform up: ok (1 files)')
      expect(ok.stdout).toContain('down(up(state)) == state: ok')

      const lossy = path.join(root, 'v2-lossy')
      await writeTree(lossy, kvWithCommands(
        { up: { command: ['python3', 'migrate/up.py'] }, down: { command: ['python3', '-c', 'import os\nopen(os.path.join(os.environ["UPGOSSIP_TO"], "data.json"), "w").write("{}")'] } },
        { 'migrate/up.py': UP_PY }
      ))
      const r = await runCli(['check', lossy, '--previous', v1, '--state', state])
      expect(r.code).toBe(1)
      expect(r.stdout).toContain('down(up(state)) == state: NO')
      expect(r.stdout).toContain('data.json: differs after the round trip')
    } finally {
      await fs.rm(root, { recursive: true, force: true })
    }
  })
})
