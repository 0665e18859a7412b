/**
 * A transform never outlives its daemon into the next one's crash recovery, on real
 * daemons: a transform (a shell command, or a module) that started a background writer
 * is running when its daemon is killed with SIGKILL; the writer goes on writing — until
 * the daemon starts again, kills the transform's recorded process group before recovery
 * undoes the interrupted step (event `transform-leftover`), and the retried upgrade
 * completes. And a module transform past its time limit is killed with what it started.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { kvVersion } from './support/kv-app.js'
import { events, gone } from './support/process-apps.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet | undefined
/** Processes a test's transforms started, killed after it whatever happened. */
const pidFiles: string[] = []

afterEach(async () => {
  for (const file of pidFiles.splice(0)) {
    const pid = Number(await fs.readFile(file, 'utf8').catch(() => '0'))
    try {
      if (pid > 1) process.kill(pid, 'SIGKILL')
    } catch {}
  }
  await net?.close()
  net = undefined
})

/**
 * While `$MARKER_DIR/hang` exists the transform notes its pid in `leader`, starts a
 * writer that rewrites `tick` every 50 ms (its pid in `writer`), and never ends; without
 * it, it moves the state as kv 2.0.0 wants it (`{"k":1}` into `{"entries":[["k",1]]}`).
 */
const UP_SH = `if [ -e "$MARKER_DIR/hang" ]; then
  echo $$ > "$MARKER_DIR/leader"
  (while :; do date +%s%N > "$MARKER_DIR/tick"; sleep 0.05; done) &
  echo $! > "$MARKER_DIR/writer"
  wait
fi
sed 's/^{"\\(.*\\)":\\(.*\\)}$/{"entries":[["\\1",\\2]]}/' "$UPGOSSIP_FROM/data.json" > "$UPGOSSIP_TO/store.json"
`

/** The same as a module: it waits forever, so the daemon's death ends it (its IPC channel closes), but not its writer. */
const UP_JS = `import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
export default async function up ({ from, to }) {
  const dir = process.env.MARKER_DIR
  if (fs.existsSync(path.join(dir, 'hang'))) {
    fs.writeFileSync(path.join(dir, 'leader'), String(process.pid))
    const writer = spawn('sh', ['-c', 'while :; do date +%s%N > "$0/tick"; sleep 0.05; done', dir], { stdio: 'ignore' })
    fs.writeFileSync(path.join(dir, 'writer'), String(writer.pid))
    await new Promise(() => {})
  }
  const data = JSON.parse(fs.readFileSync(path.join(from, 'data.json'), 'utf8'))
  fs.writeFileSync(path.join(to, 'store.json'), JSON.stringify({ entries: Object.entries(data) }))
}
`

/** kv 2.0.0 (store.json) with the given `up` transform and files. */
function kvWithUp (up: unknown, files: Record<string, string>): Record<string, string> {
  const v2 = kvVersion('2.0.0', 'v2', { upgrades: '^1.0.0' })
  const manifest = { ...JSON.parse(v2['upgossip.json'] as string), transform: { up } }
  return { 'server.js': v2['server.js'] as string, ...files, 'upgossip.json': JSON.stringify(manifest) }
}

async function readNumber (file: string): Promise<number> {
  return Number(await fs.readFile(file, 'utf8').catch(() => '0'))
}

/** The tick file, read twice `ms` apart: whether somebody still writes it. */
async function stillTicking (file: string, ms = 500): Promise<boolean> {
  const before = await fs.readFile(file, 'utf8')
  await new Promise(resolve => setTimeout(resolve, ms))
  return await fs.readFile(file, 'utf8') !== before
}

async function publish (a: Peer, file: string): Promise<void> {
  const r = await runCli(['publish', file, '--data', a.dataDir])
  expect(r.code, r.stderr).toBe(0)
}

describe('a daemon killed with SIGKILL while a transform runs', () => {
  const kinds = [
    ['a shell command', kvWithUp({ command: ['sh', 'migrate/up.sh'] }, { 'migrate/up.sh': UP_SH })],
    ['a module', kvWithUp('migrate/up.js', { 'migrate/up.js': UP_JS })]
  ] as const
  for (const [kind, files] of kinds) {
    it(`(${kind}): the next start kills the transform's group before recovery, says so once, and the retried upgrade completes`, async () => {
      const n = await TestNet.create({ transformLimit: '60s' })
      net = n
      const marker = path.join(n.root, 'marker')
      await fs.mkdir(marker)
      await fs.writeFile(path.join(marker, 'hang'), '')
      pidFiles.push(path.join(marker, 'leader'), path.join(marker, 'writer'))
      const env = { MARKER_DIR: marker }
      const v1 = await n.releaseFiles(kvVersion('1.0.0', 'v1'))
      const a = await n.start('a', ['--install', v1.file], env)
      await a.waitVersion('1.0.0')
      await a.call({ op: 'put', key: 'k', value: 1 })
      const v2 = await n.releaseFiles(files)
      await publish(a, v2.file)

      // the transform runs, and its group is recorded in the data directory
      await waitFor('the transform\'s writer to tick', async () => await readNumber(path.join(marker, 'writer')) > 0 && await fs.stat(path.join(marker, 'tick')).then(() => true, () => false), 60_000, 50)
      const leader = await readNumber(path.join(marker, 'leader'))
      const writer = await readNumber(path.join(marker, 'writer'))
      const record = await fs.readFile(path.join(a.dataDir, 'transform.pgid'), 'utf8')
      expect(record).toMatch(new RegExp(`^${leader} \\d+ [0-9a-f-]{36}\n$`))
      expect(JSON.parse(await fs.readFile(path.join(a.dataDir, 'journal.json'), 'utf8')).attempt.step).toBe('transform')

      a.proc.kill('SIGKILL')
      await waitFor('a to die', () => a.exited !== undefined)
      // nothing ends it now: the writer goes on writing with no daemon
      expect(await stillTicking(path.join(marker, 'tick'))).toBe(true)
      expect(await gone(writer)).toBe(false)

      // the retried transform moves the state and ends
      await fs.rm(path.join(marker, 'hang'))
      const again = await n.start('a', [], env)
      // killed before the start went on: nobody writes any more
      expect(await gone(writer)).toBe(true)
      expect(await gone(leader)).toBe(true)
      expect(await stillTicking(path.join(marker, 'tick'))).toBe(false)
      await again.waitVersion('2.0.0')
      expect(await again.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '2.0.0' })

      const seen = await events(again)
      const killed = seen.filter(e => e.type === 'transform-leftover')
      expect(killed).toEqual([expect.objectContaining({ level: 'warn', pgid: leader, message: `killed the process group ${leader} of a transform that a previous daemon left running` })])
      // before the recovery undid the step the journal named; then the upgrade was tried again
      const types = seen.map(e => e.type)
      const interrupted = seen.find(e => e.type === 'upgrade-interrupted')
      expect(interrupted).toMatchObject({ step: 'transform', count: 1 })
      expect(types.indexOf('transform-leftover')).toBeLessThan(types.indexOf('upgrade-interrupted'))
      expect(types.lastIndexOf('upgrade-committed')).toBeGreaterThan(types.indexOf('upgrade-interrupted'))
      await expect(fs.stat(path.join(again.dataDir, 'transform.pgid'))).rejects.toThrow(/ENOENT/)
    })
  }
})

describe('a module transform past its time limit', () => {
  it('is killed with what it started; the switch rolls back and nothing is left running', async () => {
    const n = await TestNet.create({ transformLimit: '2s' })
    net = n
    const marker = path.join(n.root, 'marker')
    await fs.mkdir(marker)
    await fs.writeFile(path.join(marker, 'hang'), '')
    pidFiles.push(path.join(marker, 'leader'), path.join(marker, 'writer'))
    const v1 = await n.releaseFiles(kvVersion('1.0.0', 'v1'))
    const a = await n.start('a', ['--install', v1.file], { MARKER_DIR: marker })
    await a.waitVersion('1.0.0')
    await a.call({ op: 'put', key: 'k', value: 1 })
    const v2 = await n.releaseFiles(kvWithUp('migrate/up.js', { 'migrate/up.js': UP_JS }))
    await publish(a, v2.file)
    const failed = await waitFor('the upgrade to fail', async () => {
      const r = (await a.status()).releases.find(x => x.id === v2.id)
      return r?.state === 'failed' ? r : undefined
    }, 60_000)
    expect(failed.reason).toMatch(/^failed at transform: transform 1\.0\.0 → 2\.0\.0 failed: ran past its 2000 ms limit and was killed$/)
    for (const name of ['leader', 'writer']) {
      const pid = await readNumber(path.join(marker, name))
      expect(pid, name).toBeGreaterThan(0)
      await waitFor(`the transform's ${name} (${pid}) to be gone`, async () => await gone(pid), 5_000, 50)
    }
    await expect(fs.stat(path.join(a.dataDir, 'transform.pgid'))).rejects.toThrow(/ENOENT/)
    await a.waitVersion('1.0.0')
    expect(await a.call({ op: 'get', key: 'k' })).toEqual({ value: 1, version: '1.0.0' })
  })
})
