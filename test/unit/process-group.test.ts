/**
 * Process groups recorded in the data directory (`app.pgid`, `transform.pgid`): a record
 * names the group's leader with its start time and the boot, a leftover group is killed
 * with everything in it, and a record whose pid now belongs to another process (the pid
 * was reused, the machine rebooted) kills nothing.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { forgetGroup, killLeftoverGroup, readGroupRecord, readProcessStat, recordGroup } from '../../src/host/index.js'
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
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return stat !== '' && !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))
}

/** Wait until `check` holds (SIGKILL is sent at once; on a loaded machine death takes a few ms). */
async function eventually (check: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms
  while (!(await check()) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 25))
  return await check()
}

/**
 * A shell leading a group of its own, as the daemon starts a transform or an app, which
 * started a `sleep` in the background; returns both pids once the sleep runs.
 */
async function group (root: string, script = 'sleep 60 & echo $! > "$1"; wait'): Promise<{ leader: number, member: number }> {
  const pidFile = path.join(root, `member-${started.length}`)
  const child = spawn('sh', ['-c', script, 'sh', pidFile], { detached: true, stdio: 'ignore' })
  const leader = child.pid as number
  started.push(leader)
  let member = 0
  await eventually(async () => {
    member = Number(await fs.readFile(pidFile, 'utf8').catch(() => '0'))
    return member > 0
  })
  return { leader, member }
}

async function recordFile (): Promise<{ root: string, file: string }> {
  const root = await tempDir()
  return { root, file: path.join(root, 'transform.pgid') }
}

describe('a recorded process group', () => {
  it('is recorded as the leader\'s pid, its start time and the boot, the pid first for older readers', async () => {
    const { root, file } = await recordFile()
    const { leader } = await group(root)
    recordGroup(file, leader)
    const text = await fs.readFile(file, 'utf8')
    const bootId = (await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
    expect(text).toBe(`${leader} ${readProcessStat(leader)?.startTicks ?? '?'} ${bootId}\n`)
    expect(Number.parseInt(text, 10)).toBe(leader)
    expect(((await fs.stat(file)).mode & 0o777).toString(8)).toBe('600')
    // forgotten only by the group it names: another may have been recorded since
    forgetGroup(file, leader + 1)
    expect(readGroupRecord(file)?.record.pgid).toBe(leader)
    forgetGroup(file, leader)
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/)
  })

  it('left running by a daemon that died is killed at the next start, with what it started, and forgotten', async () => {
    const { root, file } = await recordFile()
    const { leader, member } = await group(root)
    recordGroup(file, leader)
    expect(await killLeftoverGroup(file)).toBe(leader)
    // killLeftoverGroup waits for the group to be gone: nothing is left to race what runs next
    expect(await alive(member)).toBe(false)
    expect(await eventually(async () => !(await alive(leader)))).toBe(true)
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/)
    // nothing recorded: nothing killed
    expect(await killLeftoverGroup(file)).toBeUndefined()
  })

  it('whose leader has exited still has what the leader started killed', async () => {
    const { root, file } = await recordFile()
    const { leader, member } = await group(root, 'sleep 60 & echo $! > "$1"')
    recordGroup(file, leader)
    await eventually(async () => !(await alive(leader)))
    expect(await alive(member)).toBe(true)
    expect(await killLeftoverGroup(file)).toBe(leader)
    expect(await alive(member)).toBe(false)
  })

  it('is not killed when its pid now names another process: another start time, or another boot', async () => {
    const { root, file } = await recordFile()
    const { leader, member } = await group(root)
    recordGroup(file, leader)
    const [pid, ticks, boot] = (await fs.readFile(file, 'utf8')).trim().split(' ')
    // as if the recorded leader had ended and the pid had been handed to this process since
    await fs.writeFile(file, `${pid ?? ''} ${Number(ticks) - 1} ${boot ?? ''}\n`)
    expect(await killLeftoverGroup(file)).toBeUndefined()
    // and as if the machine had rebooted since the record was written
    await fs.writeFile(file, `${pid ?? ''} ${ticks ?? ''} 00000000-0000-4000-8000-000000000000\n`)
    expect(await killLeftoverGroup(file)).toBeUndefined()
    expect(await alive(leader)).toBe(true)
    expect(await alive(member)).toBe(true)
    // either way the stale record is forgotten
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/)
  })

  it('recorded by an older daemon (the pid alone) is killed only if it was recorded since this boot', async () => {
    const { root, file } = await recordFile()
    const { leader, member } = await group(root)
    await fs.writeFile(file, `${leader}\n`)
    await fs.utimes(file, new Date('2000-01-01'), new Date('2000-01-01'))
    expect(await killLeftoverGroup(file)).toBeUndefined()
    expect(await alive(member)).toBe(true)
    await fs.writeFile(file, `${leader}\n`)
    expect(await killLeftoverGroup(file)).toBe(leader)
    expect(await alive(member)).toBe(false)
  })

  it('that is not a record is forgotten, and kills nothing', async () => {
    const { file } = await recordFile()
    for (const text of ['', 'x\n', '1\n', '0 12 boot\n', '-5 1 2\n']) {
      await fs.writeFile(file, text)
      expect(await killLeftoverGroup(file), JSON.stringify(text)).toBeUndefined()
      await expect(fs.stat(file)).rejects.toThrow(/ENOENT/)
    }
  })

  it('cannot be recorded where the file cannot be written: a named error', async () => {
    const { root } = await recordFile()
    expect(() => { recordGroup(path.join(root, 'missing', 'transform.pgid'), process.pid) }).toThrow(expect.objectContaining({ name: 'GroupUnrecordedError', message: expect.stringMatching(/could not record process group \d+ in .*transform\.pgid: ENOENT/) }))
  })
})

describe('/proc/<pid>/stat', () => {
  it('is read after the last ")": a command name may hold spaces and parens', async () => {
    const proc = await tempDir()
    const rest = ['S', '1', '4242', '4242', ...Array.from({ length: 15 }, (_, i) => String(i)), '987654', '0']
    await writeTree(proc, { '4243/stat': `4243 (a (b) c) ${rest.join(' ')}\n` })
    expect(readProcessStat(4243, { proc })).toEqual({ pid: 4243, state: 'S', pgrp: 4242, startTicks: '987654' })
    expect(readProcessStat(4244, { proc })).toBeUndefined()
  })

  it('gives this process\'s own group and a start time that stays the same', () => {
    const me = readProcessStat(process.pid)
    expect(me?.state).toMatch(/^[RS]$/)
    expect(me?.startTicks).toMatch(/^\d+$/)
    expect(readProcessStat(process.pid)?.startTicks).toBe(me?.startTicks)
  })
})
