/**
 * The process group of a running transform. Both kinds of transform — a command, and the
 * child process that runs a module — start `detached`, leading a process group of their
 * own, so that the time limit, the transform's end and the daemon's exit kill them with
 * everything they started. While one runs, its group is recorded in the data directory
 * (`DataDir.transformGroup`): a daemon killed mid-transform cannot end it, and left
 * running it would go on writing while the next start's crash recovery undoes or redoes
 * its step, so that start kills it first (`UpgradeEngine.recover`).
 *
 * @example
 * ```ts
 * const group = TransformGroup.adopt(child.pid, dataDir.transformGroup) // before it touches any state
 * setTimeout(() => { group.kill() }, limitMs)
 * child.on('exit', () => { group.end() })
 * ```
 */
import { forgetGroup, recordGroup, signalGroup } from '../host/index.js'

/** The process group of one transform, from its spawn to its end. */
export class TransformGroup {
  /** Groups of transforms still running in this process, killed if it exits first. */
  private static readonly running = new Set<TransformGroup>()
  private static exitHooked = false

  /** The group's id: the pid of the transform's process. */
  readonly pgid: number
  private readonly file: string | undefined

  private constructor (pgid: number, file: string | undefined) {
    this.pgid = pgid
    this.file = file
  }

  /**
   * Take charge of the group of a transform just spawned: recorded in `file` (when given)
   * and killed if the daemon exits first. A group that cannot be recorded is killed and
   * `GroupUnrecordedError` thrown: a transform the next start could not end must not run.
   */
  static adopt (pgid: number, file?: string): TransformGroup {
    const group = new TransformGroup(pgid, file)
    if (file != null) {
      try {
        recordGroup(file, pgid)
      } catch (err) {
        group.kill()
        throw err
      }
    }
    TransformGroup.running.add(group)
    TransformGroup.hookExit()
    return group
  }

  /** Kill the group (the transform ran past its limit): the transform and everything it started. */
  kill (): void {
    signalGroup(this.pgid, 'SIGKILL')
  }

  /**
   * The transform's process has exited: what it left running in the background must not
   * write into the new state once that is in place, so the group is killed, then forgotten.
   */
  end (): void {
    this.kill()
    TransformGroup.running.delete(this)
    if (this.file == null) return
    try {
      forgetGroup(this.file, this.pgid)
    } catch {
      // a record left behind names a group that is gone: the next start finds nobody in it
    }
  }

  private static hookExit (): void {
    if (TransformGroup.exitHooked) return
    TransformGroup.exitHooked = true
    process.on('exit', () => { for (const group of TransformGroup.running) group.end() })
  }
}
