/**
 * Processes as Linux's /proc shows them: what tells one process from a later one that
 * was given the same pid (the boot it runs in, and its start time), and which live
 * processes a process group holds. A pid recorded on disk outlives the process it named:
 * after a reboot, or once the pid wrapped round, it names somebody else.
 *
 * @example
 * ```ts
 * const me = processIdentity(process.pid)  // { bootId: '3f0c…', startTicks: '123456' }
 * groupMembers(pgid)                         // [pgid, 4242]: the group's live processes
 * ```
 */
import fs from 'node:fs'

/** What tells a process from a later one given the same pid. */
export interface ProcessIdentity {
  /** `/proc/sys/kernel/random/boot_id`: a fresh one at every boot. */
  bootId: string
  /** Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot. */
  startTicks: string
}

/** One process as `/proc/<pid>/stat` shows it. */
export interface ProcessStat {
  pid: number
  /** `R`, `S`, `D`, …; `Z` (zombie) and `X` (dead) have ended. */
  state: string
  /** Its process group. */
  pgrp: number
  startTicks: string
}

/** Where /proc is; tests give a directory of their own. */
export interface ProcOptions {
  proc?: string
}

/** The stat of a process, or undefined when it does not exist (or there is no /proc: not Linux). */
export function readProcessStat (pid: number, { proc = '/proc' }: ProcOptions = {}): ProcessStat | undefined {
  let text: string
  try {
    text = fs.readFileSync(`${proc}/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // `pid (comm) state ppid pgrp …`: comm may hold spaces and parens, so split after the last ')'
  const fields = text.slice(text.lastIndexOf(')') + 2).trim().split(' ')
  const [state, , pgrp] = fields
  // field 22 of the whole line is the 20th after comm (state is the 3rd)
  const startTicks = fields[19]
  if (state == null || pgrp == null || startTicks == null) return undefined
  return { pid, state, pgrp: Number(pgrp), startTicks }
}

/** This boot's id, or undefined without /proc. */
export function currentBootId ({ proc = '/proc' }: ProcOptions = {}): string | undefined {
  try {
    const id = fs.readFileSync(`${proc}/sys/kernel/random/boot_id`, 'utf8').trim()
    return id === '' ? undefined : id
  } catch {
    return undefined
  }
}

/** When this boot began (ms since the epoch, `btime` of `/proc/stat`), or undefined without /proc. */
export function bootTimeMs ({ proc = '/proc' }: ProcOptions = {}): number | undefined {
  try {
    const btime = /^btime (\d+)$/m.exec(fs.readFileSync(`${proc}/stat`, 'utf8'))?.[1]
    return btime == null ? undefined : Number(btime) * 1000
  } catch {
    return undefined
  }
}

/** The identity of a running process, or undefined (it is gone, or there is no /proc). */
export function processIdentity (pid: number, options: ProcOptions = {}): ProcessIdentity | undefined {
  const bootId = currentBootId(options)
  const stat = readProcessStat(pid, options)
  return bootId == null || stat == null ? undefined : { bootId, startTicks: stat.startTicks }
}

/** True for a process that has ended and only waits to be reaped. */
export function hasEnded (stat: ProcessStat): boolean {
  return stat.state === 'Z' || stat.state === 'X'
}

/** The pids of the live processes of a process group (none without /proc). */
export function groupMembers (pgid: number, options: ProcOptions = {}): number[] {
  const { proc = '/proc' } = options
  let names: string[]
  try {
    names = fs.readdirSync(proc)
  } catch {
    return []
  }
  const members: number[] = []
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue
    const stat = readProcessStat(Number(name), options)
    if (stat?.pgrp === pgid && !hasEnded(stat)) members.push(stat.pid)
  }
  return members
}
