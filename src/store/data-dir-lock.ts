/**
 * One daemon per data directory: a lock file created exclusively, holding the owner's
 * pid. A lock left by a process that no longer runs is stale and is taken over.
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

/** A held lock; call `release()` when the owner stops. */
export interface DataDirLock {
  readonly file: string
  release: () => Promise<void>
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
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
  const file = path.join(dataDir, LOCK_FILE)
  const content: LockContent = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await fs.open(file, 'wx', 0o600)
      await handle.writeFile(JSON.stringify(content) + '\n')
      await handle.sync()
      await handle.close()
      let released = false
      return {
        file,
        release: async () => {
          if (released) return
          released = true
          const current = await readLock(file)
          if (current?.pid === process.pid) await fs.rm(file, { force: true })
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
