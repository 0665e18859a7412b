/**
 * The CLI trusts a data directory's control.json only while the daemon that wrote it
 * holds the directory's lock: a copy of a directory in use, a lock from another host, a
 * lock whose process is gone, or another pid, and it says no daemon runs there.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { DaemonUnreachableError, resolveEndpoint } from '../../src/cli/control-client.js'
import { dataDirIdentity } from '../../src/store/index.js'
import { tempDir } from '../helpers.js'

async function dataDir (lock: Record<string, unknown> | null, control: Record<string, unknown>): Promise<string> {
  const data = await tempDir()
  if (lock != null) await fs.writeFile(path.join(data, 'lock'), JSON.stringify(lock))
  await fs.writeFile(path.join(data, 'control.json'), JSON.stringify({ url: 'http://127.0.0.1:1', token: 't', ...control }))
  return data
}

describe('control.json trust', () => {
  it('is trusted when the live lock holder of this very directory wrote it', async () => {
    const data = await dataDir(null, { pid: process.pid })
    await fs.writeFile(path.join(data, 'lock'), JSON.stringify({ pid: process.pid, host: os.hostname(), since: 'x', dir: await dataDirIdentity(data) }))
    expect(await resolveEndpoint({ data })).toEqual({ url: 'http://127.0.0.1:1', token: 't' })
    // a control.json of an older daemon, without its pid: the live lock is enough
    await fs.writeFile(path.join(data, 'control.json'), JSON.stringify({ url: 'http://127.0.0.1:1', token: 't' }))
    expect((await resolveEndpoint({ data })).token).toBe('t')
  })

  it('is stale without a lock, with a lock copied from another directory, from another host, of a process gone, or of another pid', async () => {
    const host = os.hostname()
    const cases: Array<[Record<string, unknown> | null, Record<string, unknown>, RegExp]> = [
      [null, { pid: process.pid }, /control.json is stale: the directory has no lock/],
      [{ pid: process.pid, host, dir: '1:2' }, { pid: process.pid }, /control.json is stale: it was copied in with the directory/],
      [{ pid: process.pid, host: 'another-host', dir: '1:2' }, { pid: process.pid }, /control.json is stale: the lock was written on another-host, not on this host/],
      [{ pid: 2 ** 30, host }, { pid: 2 ** 30 }, new RegExp(`control.json is stale: process ${2 ** 30}, which held the lock, no longer runs`)],
      [{ pid: process.ppid, host }, { pid: process.pid }, new RegExp(`control.json is stale: it was written by process ${process.pid}, but process ${process.ppid} holds the lock`)]
    ]
    for (const [lock, control, message] of cases) {
      const data = await dataDir(lock, control)
      const refusal = resolveEndpoint({ data })
      await expect(refusal).rejects.toThrow(DaemonUnreachableError)
      await expect(refusal).rejects.toThrow(message)
      await expect(refusal).rejects.toThrow(`no daemon runs on ${data} (`)
    }
  })
})
