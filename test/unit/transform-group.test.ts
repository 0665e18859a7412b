/**
 * A transform runs in a process group of its own, recorded in the data directory while it
 * runs and forgotten once it has ended; a transform whose group cannot be recorded does
 * not run; crash recovery first kills a group a daemon that died left running, so that it
 * cannot go on writing while its step is undone. (Module transforms run the compiled
 * `transform-child.js`, so theirs are tested on real daemons: test/e2e/transform-leftover.test.ts.)
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { AppHost } from '../../src/host/index.js'
import { readProcessStat, recordGroup } from '../../src/host/index.js'
import { DataDir } from '../../src/store/index.js'
import { TransformFailedError, UpgradeEngine, runTransform, writeJournal } from '../../src/upgrade/index.js'
import type { TransformRun } from '../../src/upgrade/index.js'
import { tempDir, writeTree } from '../helpers.js'

const started: number[] = []

afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  }
})

/** Whether a process runs (a zombie waiting for its reaper does not). */
async function alive (pid: number): Promise<boolean> {
  const stat = readProcessStat(pid)
  return stat != null && !/^[ZX]$/.test(stat.state)
}

/** Whether `pid` is gone after a moment: SIGKILL is sent at once, but death may take a few ms on a loaded machine. */
async function goneSoon (pid: number): Promise<boolean> {
  for (let i = 0; i < 60 && await alive(pid); i++) await new Promise(resolve => setTimeout(resolve, 50))
  return !(await alive(pid))
}

/** A package with `files`, an old state, a target, and a data directory whose `transform.pgid` records the group. */
async function setUp (files: Record<string, string> = {}): Promise<{ root: string, dataDir: DataDir, run: Omit<TransformRun, 'entry'> }> {
  const root = await tempDir()
  const dataDir = new DataDir(path.join(root, 'data'))
  const packageDir = path.join(root, 'package')
  await writeTree(packageDir, { 'upgossip.json': '{}', ...files })
  const from = path.join(root, 'from')
  await writeTree(from, { 'data.json': '{"a":1}' })
  await fs.mkdir(dataDir.root, { recursive: true })
  return { root, dataDir, run: { packageDir, from, to: dataDir.stateDir('r2'), fromVersion: '1.0.0', toVersion: '2.0.0', logFile: dataDir.appLog, groupFile: dataDir.transformGroup, limitMs: 20_000 } }
}

/** A command transform that notes, in the new state, its pid, its process group and the record the daemon wrote of it; it waits for the record (written just after the spawn returns, while the shell already runs). */
const COMMAND_SEES_ITS_GROUP = 'while [ ! -s "$GROUP_FILE" ]; do sleep 0.01; done; ' +
  'printf \'{"pid":%s,"pgrp":%s,"record":"%s"}\' $$ "$(cut -d" " -f5 /proc/$$/stat)" "$(cat "$GROUP_FILE")" > "$UPGOSSIP_TO/seen.json"'

describe('a transform\'s process group', () => {
  it('of a command is its own, recorded in the data directory while it runs, and forgotten once it has ended', async () => {
    const { dataDir, run } = await setUp()
    process.env.GROUP_FILE = dataDir.transformGroup
    try {
      await runTransform({ ...run, entry: { command: ['sh', '-c', COMMAND_SEES_ITS_GROUP] } })
    } finally {
      delete process.env.GROUP_FILE
    }
    const seen = JSON.parse(await fs.readFile(path.join(run.to, 'seen.json'), 'utf8')) as { pid: number, pgrp: number, record: string }
    // it leads a group of its own, not the daemon's
    expect(seen.pgrp).toBe(seen.pid)
    expect(seen.pgrp).not.toBe(readProcessStat(process.pid)?.pgrp)
    expect(seen.record.trim()).toMatch(new RegExp(`^${seen.pid} \\d+ [0-9a-f-]{36}$`))
    await expect(fs.stat(dataDir.transformGroup)).rejects.toThrow(/ENOENT/)
  })

  it('that cannot be recorded stops the transform before it writes anything: a named failure, nothing left running', async () => {
    const { root, run } = await setUp()
    const pidFile = path.join(root, 'pid')
    const unrecordable = { ...run, groupFile: path.join(root, 'no-such-dir', 'transform.pgid') }
    const failing = runTransform({ ...unrecordable, entry: { command: ['sh', '-c', `echo $$ > ${pidFile}; sleep 1; echo late > "$UPGOSSIP_TO/store.json"`] } })
    await expect(failing).rejects.toThrow(TransformFailedError)
    await expect(failing).rejects.toThrow(/^transform command sh -c .* \(1\.0\.0 → 2\.0\.0\) was stopped before it began: could not record process group \d+ in .*transform\.pgid: ENOENT$/)
    const pid = Number(await fs.readFile(pidFile, 'utf8').catch(() => '0'))
    if (pid > 0) expect(await goneSoon(pid)).toBe(true)
    await expect(fs.stat(run.to)).rejects.toThrow(/ENOENT/)
  })
})

describe('crash recovery', () => {
  /** A host whose app processes are stand-ins. */
  function host (): AppHost {
    const proc = { drain: async () => {}, waitReady: async () => {}, stayHealthy: async () => {} }
    return { current: proc, hold: () => {}, unhold: () => {}, stopCurrent: async () => {}, launch: () => proc, supervise: () => {} } as unknown as AppHost
  }

  it('kills the transform group a daemon killed mid-transform left running, before it undoes the step, and says so once', async () => {
    const { root, dataDir } = await setUp()
    // what a daemon killed at the transform step leaves: the journal, the snapshot, the
    // transform's group still writing into its target, and the record of that group
    await writeJournal(dataDir.journal, { attempt: { kind: 'upgrade', from: { id: 'r1', version: '1.0.0' }, to: { id: 'r2', version: '2.0.0' }, step: 'transform', started: new Date().toISOString() }, interrupted: {} })
    await writeTree(dataDir.stateDir('r1'), { 'data.json': '{"a":1}' })
    await writeTree(dataDir.snapshotDir('r2'), { 'data.json': '{"a":1}' })
    const marker = path.join(root, 'marker')
    const transform = spawn('sh', ['-c', `(while :; do date +%s%N > ${marker}; sleep 0.02; done) & wait`], { detached: true, stdio: 'ignore' })
    const pgid = transform.pid as number
    started.push(pgid)
    recordGroup(dataDir.transformGroup, pgid)
    await expect.poll(async () => await fs.readFile(marker, 'utf8').catch(() => ''), { timeout: 5000 }).not.toBe('')

    const events: Array<{ type: string, message: string, fields?: Record<string, unknown> }> = []
    const log = { info: () => {}, warn: (type: string, message: string, fields?: Record<string, unknown>) => { events.push({ type, message, fields }) } }
    const engine = new UpgradeEngine({ dataDir, host: host(), installed: async () => undefined, simulations: async () => [], onCommit: async () => {}, onFailed: async () => {}, log })
    expect(await engine.recover()).toMatchObject({ kind: 'undone', to: 'r2', step: 'transform', failed: false })

    expect(events.map(e => e.type)).toEqual(['transform-leftover', 'upgrade-interrupted'])
    expect(events[0]).toEqual({ type: 'transform-leftover', message: `killed the process group ${pgid} of a transform that a previous daemon left running`, fields: { pgid } })
    // nobody writes any more: the marker stays as it was
    const last = await fs.readFile(marker, 'utf8')
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(await fs.readFile(marker, 'utf8')).toBe(last)
    expect(await goneSoon(pgid)).toBe(true)
    await expect(fs.stat(dataDir.transformGroup)).rejects.toThrow(/ENOENT/)
    await expect(fs.stat(dataDir.snapshotDir('r2'))).rejects.toThrow(/ENOENT/)
    expect(await fs.readFile(path.join(dataDir.stateDir('r1'), 'data.json'), 'utf8')).toBe('{"a":1}')

    // the next start finds nothing left: no event
    events.length = 0
    expect(await engine.recover()).toEqual({ kind: 'none' })
    expect(events).toEqual([])
  })
})
