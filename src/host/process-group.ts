/**
 * The process group of a running process app, recorded in the data directory: a process
 * app has no channel to its daemon that closes when the daemon dies, so a daemon that
 * starts kills a group its predecessor left running.
 */
import fs from 'node:fs'

/** Record the process group `pid` (the app's pid: it leads its own group). */
export function recordGroup (file: string, pid: number): void {
  try {
    fs.writeFileSync(file, `${pid}\n`, { mode: 0o600 })
  } catch {}
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

/** Kill a group left by a daemon that died (SIGKILL); returns its pid, if one was recorded and still ran. */
export function killLeftoverGroup (file: string): number | undefined {
  let pid: number
  try {
    pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10)
  } catch {
    return undefined
  }
  forgetGroup(file)
  if (!Number.isInteger(pid) || pid <= 1) return undefined
  try {
    process.kill(-pid, 'SIGKILL')
    return pid
  } catch {
    return undefined
  }
}
