/**
 * One daemon per data directory: a lock file created exclusively, holding the owner's
 * pid. A lock left by a process that no longer runs is stale and is taken over. A lock
 * taken on a directory that did not exist or was empty can be released with `undo`, so a
 * daemon that refuses to start leaves such a directory as it found it.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { UpgossipError } from '../errors.js'

/** Another live process holds the data directory. */
export class DataDirLockedError extends UpgossipError {
  static override name = 'DataDirLockedError'
}

/** The lock file's name inside a data directory. */
export const LOCK_FILE = 'lock'

interface LockContent {
  pid: number
  host: string
  since: string
}

/** How the directory was when the lock was taken: `absent` (created for it), `empty`, or `used`. */
export type DataDirBefore = 'absent' | 'empty' | 'used'

/** A held lock; call `release()` when the owner stops. */
export interface DataDirLock {
  readonly file: string
  /** How the directory was before this lock created it or its lock file. */
  readonly before: DataDirBefore
  /**
   * Give the lock up. With `undo` (a start that was refused), a directory that was absent
   * or empty before is put back so: what was written in it is removed, and so is the
   * directory if this lock created it. A directory that was in use is never touched.
   */
  release: (options?: { undo?: boolean }) => Promise<void>
}

async function dirBefore (dataDir: string): Promise<DataDirBefore> {
  try {
    return (await fs.readdir(dataDir)).length === 0 ? 'empty' : 'used'
  } catch (err) {
    // not a directory, unreadable…: mkdir or the lock says what is wrong; nothing is ever removed
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'used'
  }
}

/** rmdir DATA and its parents up to `created`, each only while empty. */
async function removeCreated (dataDir: string, created: string): Promise<void> {
  const top = path.resolve(created)
  for (let dir = path.resolve(dataDir); dir.startsWith(top); dir = path.dirname(dir)) {
    try {
      await fs.rmdir(dir)
    } catch {
      return
    }
    if (dir === top) return
  }
}

async function undoFresh (dataDir: string, before: DataDirBefore): Promise<void> {
  if (before === 'used') return
  for (const name of await fs.readdir(dataDir).catch(() => [])) {
    if (name !== LOCK_FILE) await fs.rm(path.join(dataDir, name), { recursive: true, force: true })
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function readLock (file: string): Promise<LockContent | undefined> {
  try {
    const parsed: unknown = JSON.parse(await fs.readFile(file, 'utf8'))
    // a daemon always writes both; anything else is a damaged lock (and a host that is not text broke the refusal's message)
    if (parsed != null && typeof parsed === 'object' && typeof (parsed as LockContent).pid === 'number' && typeof (parsed as LockContent).host === 'string') return parsed as LockContent
  } catch {}
  return undefined
}

/**
 * Take the lock of `dataDir`, creating the directory if needed.
 * Throws {@link DataDirLockedError} when a live process holds it.
 */
export async function lockDataDir (dataDir: string): Promise<DataDirLock> {
  const seen = await dirBefore(dataDir)
  // the first directory mkdir created (DATA itself, or a parent of it), for an undo
  const created = await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
  const file = path.join(dataDir, LOCK_FILE)
  const content: LockContent = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await fs.open(file, 'wx', 0o600)
      await handle.writeFile(JSON.stringify(content) + '\n')
      await handle.sync()
      await handle.close()
      // something else may have come into the directory between the look and the lock
      const before = seen === 'used' || (await fs.readdir(dataDir)).some(name => name !== LOCK_FILE) ? 'used' : seen
      let released = false
      return {
        file,
        before,
        release: async (options = {}) => {
          if (released) return
          released = true
          const current = await readLock(file)
          if (current?.pid !== process.pid) return
          if (options.undo === true) await undoFresh(dataDir, before)
          await fs.rm(file, { force: true })
          if (options.undo === true && before === 'absent' && created != null) await removeCreated(dataDir, created)
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = await readLock(file)
      const sameHost = owner == null || owner.host === os.hostname()
      if (owner != null && (isAlive(owner.pid) || !sameHost) && owner.pid !== process.pid) {
        throw new DataDirLockedError(`data directory ${dataDir} is in use by process ${owner.pid}${sameHost ? '' : ` on ${owner.host}`}; stop that daemon or use another --data directory`)
      }
      if (owner?.pid === process.pid) {
        throw new DataDirLockedError(`data directory ${dataDir} is already locked by this process`)
      }
      // stale (owner gone, or an unreadable half-written lock): take it over
      await fs.rm(file, { force: true })
    }
  }
  throw new DataDirLockedError(`could not lock data directory ${dataDir}; another process keeps taking it`)
}
