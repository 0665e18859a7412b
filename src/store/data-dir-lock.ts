/**
 * One daemon per data directory: a lock file created exclusively, naming the owner's pid,
 * host and the directory's identity (device and inode). A lock is taken over, and the
 * taker says why: its process no longer runs on this host, it was copied in with the
 * directory (it names another directory's identity), or it is damaged. A lock written on
 * another host is never taken over unless asked (`--take-over`): that host may still run a
 * daemon on a shared file system. A lock taken on a directory that did not exist or was
 * empty can be released with `undo`, so a daemon that refuses to start leaves such a
 * directory as it found it.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { UpgossipError } from '../errors.js'

/** Another live process holds the data directory, or another host does. */
export class DataDirLockedError extends UpgossipError {
  static override name = 'DataDirLockedError'
}

/** The lock file's name inside a data directory. */
export const LOCK_FILE = 'lock'

/** What a lock file says of its owner. */
export interface LockHolder {
  pid: number
  host: string
  since?: string
  /** The identity (`device:inode`) of the directory it was taken on; absent in locks of older daemons. */
  dir?: string
}

/** Why a lock was taken over: `gone` (its process no longer runs here), `copied` (it belongs to another directory), `other-host` (`--take-over`), `damaged`. */
export interface LockTakeOver {
  why: 'gone' | 'copied' | 'other-host' | 'damaged'
  holder?: LockHolder
}

/** How the directory was when the lock was taken: `absent` (created for it), `empty` (nothing, or only a lock), or `used`. */
export type DataDirBefore = 'absent' | 'empty' | 'used'

/** Options of {@link lockDataDir}. */
export interface LockOptions {
  /** Take over a lock written on another host (the operator says that host no longer uses the directory). */
  takeOver?: boolean
}

/** A held lock; call `release()` when the owner stops. */
export interface DataDirLock {
  readonly file: string
  /** How the directory was before this lock created it or its lock file. */
  readonly before: DataDirBefore
  /** The lock this one replaced, and why, if any: the owner says so in one line ({@link describeTakeOver}). */
  readonly tookOver?: LockTakeOver
  /**
   * Give the lock up. With `undo` (a start that was refused), a directory that was absent
   * or empty before is put back so: what was written in it is removed, and so is the
   * directory if this lock created it. A directory that was in use is never touched.
   */
  release: (options?: { undo?: boolean }) => Promise<void>
}

/** The identity of a directory, `device:inode`: a copy of it has another. */
export async function dataDirIdentity (dataDir: string): Promise<string | undefined> {
  const stat = await fs.stat(dataDir, { bigint: true }).catch(() => undefined)
  return stat == null ? undefined : `${stat.dev}:${stat.ino}`
}

/** The one-line account of a take-over, for the log. */
export function describeTakeOver (dataDir: string, t: LockTakeOver): string {
  const h = t.holder
  const since = h?.since == null ? '' : ` since ${h.since}`
  switch (t.why) {
    case 'gone': return `cleared a stale lock of ${dataDir}: process ${h?.pid ?? '?'}${since} no longer runs on this host`
    case 'copied': return `cleared a lock copied in with ${dataDir}: it belongs to another directory (process ${h?.pid ?? '?'} on this host holds the one it was copied from)`
    case 'other-host': return `took over the lock of ${dataDir} from process ${h?.pid ?? '?'} on ${h?.host ?? '?'}${since} (--take-over)`
    case 'damaged': return `cleared a damaged lock file in ${dataDir}`
  }
}

async function dirBefore (dataDir: string): Promise<DataDirBefore> {
  try {
    // a lock alone (left by a crash, or copied in) is no content: taking it over is the lock's business
    return (await fs.readdir(dataDir)).every(name => name === LOCK_FILE) ? 'empty' : 'used'
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

/** What the lock file of `dataDir` says, or undefined when there is none or it is damaged. */
export async function readDataDirLock (dataDir: string): Promise<LockHolder | undefined> {
  try {
    const parsed: unknown = JSON.parse(await fs.readFile(path.join(dataDir, LOCK_FILE), 'utf8'))
    // a daemon always writes both; anything else is a damaged lock (and a host that is not text broke the refusal's message)
    if (parsed == null || typeof parsed !== 'object') return undefined
    const { pid, host, since, dir } = parsed as Record<string, unknown>
    if (typeof pid !== 'number' || typeof host !== 'string') return undefined
    return { pid, host, ...(typeof since === 'string' ? { since } : {}), ...(typeof dir === 'string' ? { dir } : {}) }
  } catch {}
  return undefined
}

/**
 * Whether the process a lock names holds `dataDir` now: `live` (it runs on this host and
 * the lock is this directory's), `gone` (no such process here), `copied` (the lock names
 * another directory: this one is a copy), or `other-host` (nothing can be known from here).
 */
export async function lockHolderState (dataDir: string, holder: LockHolder): Promise<'live' | 'gone' | 'copied' | 'other-host'> {
  if (holder.host !== os.hostname()) return 'other-host'
  if (holder.dir != null && holder.dir !== await dataDirIdentity(dataDir)) return 'copied'
  return isAlive(holder.pid) ? 'live' : 'gone'
}

/** Whether the lock file of `dataDir` names this process (and this directory). */
async function heldHere (dataDir: string): Promise<boolean> {
  const holder = await readDataDirLock(dataDir)
  return holder?.pid === process.pid && holder.host === os.hostname() && (holder.dir == null || holder.dir === await dataDirIdentity(dataDir))
}

/** Why the lock in `file` may be taken over, or a refusal. */
async function takeOverReason (dataDir: string, options: LockOptions): Promise<LockTakeOver> {
  const holder = await readDataDirLock(dataDir)
  if (holder == null) return { why: 'damaged' }
  const state = await lockHolderState(dataDir, holder)
  if (state === 'other-host') {
    if (options.takeOver === true) return { why: 'other-host', holder }
    throw new DataDirLockedError(`data directory ${dataDir} is locked by process ${holder.pid} on ${holder.host}${holder.since == null ? '' : ` since ${holder.since}`}; if ${holder.host} no longer runs a daemon on it (the directory was copied, moved or restored from there), use --take-over`)
  }
  if (state === 'live') {
    if (holder.pid === process.pid) throw new DataDirLockedError(`data directory ${dataDir} is already locked by this process`)
    throw new DataDirLockedError(`data directory ${dataDir} is in use by process ${holder.pid}; stop that daemon or use another --data directory`)
  }
  return { why: state, holder }
}

/**
 * Take the lock of `dataDir`, creating the directory if needed. A stale lock is taken
 * over (`tookOver` says why). Throws {@link DataDirLockedError} when a live process on
 * this host holds it, or another host does and `takeOver` is not set.
 */
export async function lockDataDir (dataDir: string, options: LockOptions = {}): Promise<DataDirLock> {
  const seen = await dirBefore(dataDir)
  // the first directory mkdir created (DATA itself, or a parent of it), for an undo
  const created = await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
  const file = path.join(dataDir, LOCK_FILE)
  let tookOver: LockTakeOver | undefined
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await fs.open(file, 'wx', 0o600)
      const content: Required<LockHolder> = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), dir: await dataDirIdentity(dataDir) ?? '' }
      await handle.writeFile(JSON.stringify(content) + '\n')
      await handle.sync()
      await handle.close()
      // something else may have come into the directory between the look and the lock
      const before = seen === 'used' || (await fs.readdir(dataDir)).some(name => name !== LOCK_FILE) ? 'used' : seen
      let released = false
      return {
        file,
        before,
        ...(tookOver == null ? {} : { tookOver }),
        release: async (options = {}) => {
          if (released) return
          released = true
          if (!await heldHere(dataDir)) return
          if (options.undo === true) await undoFresh(dataDir, before)
          await fs.rm(file, { force: true })
          if (options.undo === true && before === 'absent' && created != null) await removeCreated(dataDir, created)
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      tookOver = await takeOverReason(dataDir, options)
      await fs.rm(file, { force: true })
    }
  }
  throw new DataDirLockedError(`could not lock data directory ${dataDir}; another process keeps taking it`)
}
