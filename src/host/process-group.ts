/**
 * Process groups recorded in the data directory. What the daemon starts that has no
 * channel to it which closes when it dies (a process app, a transform command, whatever
 * a transform started) runs in a process group of its own, recorded in a file while it
 * runs; a daemon that starts kills a group its predecessor left running.
 *
 * A record names the group's leader by pid *and* by what tells it from a later process
 * given the same pid (the boot, the leader's start time: see `process-identity.ts`), so a
 * stale record never kills an unrelated process.
 *
 * @example
 * ```ts
 * recordGroup(dataDir.appGroup, child.pid)               // `4242 98765 3f0c…` in app.pgid
 * forgetGroup(dataDir.appGroup, child.pid)               // it ended
 * const pgid = await killLeftoverGroup(dataDir.appGroup)  // at start: a group left running, killed
 * ```
 */
import fs from 'node:fs'
import { UpgossipError } from '../errors.js'
import { bootTimeMs, currentBootId, groupMembers, processIdentity, readProcessStat } from './process-identity.js'
import type { ProcOptions, ProcessIdentity } from './process-identity.js'

/** The file naming a process group could not be written (so a daemon that died could not end the group). */
export class GroupUnrecordedError extends UpgossipError {
  static override name = 'GroupUnrecordedError'
}

/** A process group as recorded. */
export interface GroupRecord {
  /** The group's id: the pid of its leader, the process the daemon started. */
  pgid: number
  /** The leader's identity when it was recorded; absent without /proc and in records of older daemons. */
  identity?: ProcessIdentity
}

const SETTLE_POLL_MS = 20

/** How {@link killLeftoverGroup} reads /proc, and how long it waits for the group to be gone. */
export interface LeftoverOptions extends ProcOptions {
  settleMs?: number
}

/** Signal a whole process group (the leader and whatever it started); false if the group is gone already. */
export function signalGroup (pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * Record the process group `pid` (a process started `detached`: it leads its own group).
 * Called right after the spawn, before the event loop turns: a daemon that dies from then
 * on leaves no group unrecorded. A plain write is enough: the record only has to survive
 * the daemon, not the machine, and a reboot ends the group anyway.
 * Throws {@link GroupUnrecordedError}.
 */
export function recordGroup (file: string, pid: number, options: ProcOptions = {}): void {
  const identity = processIdentity(pid, options)
  // the pid first, alone on the line for older readers' parseInt
  const line = identity == null ? `${pid}\n` : `${pid} ${identity.startTicks} ${identity.bootId}\n`
  try {
    fs.writeFileSync(file, line, { mode: 0o600 })
  } catch (err) {
    throw new GroupUnrecordedError(`could not record process group ${pid} in ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/** The group ended: forget it (only if the file still names it: another may have been recorded since). */
export function forgetGroup (file: string, pid?: number): void {
  if (pid != null) {
    try {
      if (Number.parseInt(fs.readFileSync(file, 'utf8'), 10) !== pid) return
    } catch {
      return
    }
  }
  fs.rmSync(file, { force: true })
}

/** The record in `file` and when it was written, or undefined (no file, or not a record). */
export function readGroupRecord (file: string): { record: GroupRecord, writtenMs: number } | undefined {
  let text: string
  let writtenMs: number
  try {
    text = fs.readFileSync(file, 'utf8')
    writtenMs = fs.statSync(file).mtimeMs
  } catch {
    return undefined
  }
  const [pid = '', startTicks, bootId] = text.trim().split(' ')
  const pgid = Number(pid)
  if (!/^\d+$/.test(pid) || pgid <= 1) return undefined
  const identity = startTicks != null && bootId != null ? { startTicks, bootId } : undefined
  return { record: { pgid, identity }, writtenMs }
}

/**
 * Whether the recorded group may still be the one that was recorded, rather than another
 * that was given the same id since.
 */
function mayStillRun ({ record, writtenMs }: { record: GroupRecord, writtenMs: number }, options: ProcOptions = {}): boolean {
  const bootId = currentBootId(options)
  // no /proc (not Linux): nothing to check against, so killed unguarded, as before
  if (bootId == null) return true
  if (record.identity == null) {
    // an older daemon's record (the pid alone): only whether it was written in this boot can be told
    const boot = bootTimeMs(options)
    return boot == null || writtenMs >= boot
  }
  // after a reboot nothing the record named still runs, and the pid may be anybody's now
  if (record.identity.bootId !== bootId) return false
  const leader = readProcessStat(record.pgid, options)
  // a leader that runs (or waits to be reaped) is the recorded one only if it started when that one did
  if (leader != null) return leader.startTicks === record.identity.startTicks
  // the leader is gone, but what it started may run on in its group; Linux hands a pid out
  // again only once no process is left in a group of that id, so a member found now is one
  // of the recorded group (short of the id being reused by a process that made a group of
  // its own and exited, all while no daemon ran)
  return true
}

/**
 * Kill (SIGKILL) a group left by a daemon that died, and wait a little for it to be gone,
 * so that what runs next does not race its last writes. Returns its id if it was killed;
 * the record is forgotten either way.
 */
export async function killLeftoverGroup (file: string, options: LeftoverOptions = {}): Promise<number | undefined> {
  const found = readGroupRecord(file)
  fs.rmSync(file, { force: true })
  if (found == null || !mayStillRun(found, options)) return undefined
  const { pgid } = found.record
  if (!signalGroup(pgid, 'SIGKILL')) return undefined
  // SIGKILL takes effect as each process is next scheduled: on a loaded machine, some ms
  for (let waited = 0; waited < (options.settleMs ?? 2000) && groupMembers(pgid, options).length > 0; waited += SETTLE_POLL_MS) {
    await new Promise(resolve => setTimeout(resolve, SETTLE_POLL_MS))
  }
  return pgid
}
