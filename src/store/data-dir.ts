/**
 * The layout of a peer's data directory, in one place: every other part asks a
 * {@link DataDir} for its paths and never spells a file name itself.
 *
 * @example
 * ```ts
 * const dir = new DataDir('/var/lib/upgossip')
 * await fs.readFile(dir.nodeState)       // node.json
 * dir.packageDir(releaseId)               // packages/<release id>/
 * ```
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { LOCK_FILE } from './data-dir-lock.js'

/** Top-level files that belong to the process running on the directory, never to a copy of it. */
const PROCESS_FILES = new Set([LOCK_FILE, 'control.json', 'app.pgid', 'transform.pgid'])

/** What {@link restrictDataDir} found and did. */
export interface DataDirModeChange {
  /** The directory's permission bits now. */
  mode: number
  /** The bits it had, when it was tightened. */
  from?: number
  /** Why it could not be tightened (not its owner, a read-only file system), when it could not. */
  error?: string
}

/**
 * Make a data directory private to its owner (0700) if its group or other users have any
 * permission on it. It holds the peer's key, the control API's token and the app's state:
 * with the directory closed, what is inside stays private whatever its own modes.
 */
export async function restrictDataDir (root: string): Promise<DataDirModeChange> {
  const mode = (await fs.stat(root)).mode & 0o777
  if ((mode & 0o077) === 0) return { mode }
  try {
    await fs.chmod(root, 0o700)
    return { mode: 0o700, from: mode }
  } catch (err) {
    return { mode, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message }
  }
}

/** Paths of one peer's data directory (docs/operator.md, "The data directory"). */
export class DataDir {
  /** The directory itself. */
  readonly root: string

  constructor (root: string) {
    this.root = root
  }

  /** The peer's libp2p private key. */
  get peerKey (): string { return this.file('peer.key') }
  /** The content-addressed block store. */
  get blocks (): string { return this.file('blocks') }
  /** Signed releases and their local state. */
  get releases (): string { return this.file('releases') }
  /** Rollout pause records, `pauses/<app>/<release id>.cbor`. */
  get pauses (): string { return this.file('pauses') }
  /** Unpacked packages, one directory per release id. */
  get packages (): string { return this.file('packages') }
  /** State directories, one per kept release id. */
  get states (): string { return this.file('state') }
  /** What the peer runs (`node.json`). */
  get nodeState (): string { return this.file('node.json') }
  /** The operator's approvals and holds. */
  get controls (): string { return this.file('controls.json') }
  /** The app's stdout and stderr, and its transforms'. */
  get appLog (): string { return this.file('app.log') }
  /** The structured event log. */
  get events (): string { return this.file('events.jsonl') }
  /** How to reach the control API (`control.json`, mode 0600). */
  get control (): string { return this.file('control.json') }
  /** The process group of a running process app (so a daemon that died does not leave it running). */
  get appGroup (): string { return this.file('app.pgid') }
  /** The process group of a running transform (so a daemon that died mid-switch does not leave it writing). */
  get transformGroup (): string { return this.file('transform.pgid') }
  /** What the retention policy saw peers run and fetch, and when (`retention.json`). */
  get retention (): string { return this.file('retention.json') }
  /** The upgrade journal. */
  get journal (): string { return this.file('journal.json') }

  /** The unpacked package of a release. */
  packageDir (id: string): string {
    return path.join(this.packages, id)
  }

  /** The state directory of a release. */
  stateDir (id: string): string {
    return path.join(this.states, id)
  }

  /** Where the old state is copied (read-only) during a switch to `id`. */
  snapshotDir (id: string): string {
    return path.join(this.states, `.snapshot-${id}`)
  }

  /**
   * Whether a path inside the directory (relative, `/`-separated) is left out of a backup
   * and refused in a restore: what belongs to the process running on it (the lock,
   * `control.json`, process groups) and half-written temporaries (of atomic writes and
   * of the block store, packages being unpacked, a transform's output). Inside a state
   * directory everything is the app's and kept.
   */
  static isTransient (rel: string): boolean {
    const parts = rel.split('/')
    const name = parts.at(-1) ?? ''
    if (parts.length === 1 && PROCESS_FILES.has(name)) return true
    if (parts[0] === 'packages' && parts.length === 2) return /\.unpacking-[0-9a-f]+$/.test(name)
    if (parts[0] === 'state') return parts.length === 2 && /\.tmp-[0-9a-f]+$/.test(name)
    // `.<name>.<hex>.tmp` (writeFileAtomic) and `.<name>.tmp` (the block store's writer)
    return /^\..+\.tmp$/.test(name)
  }

  /** The top-level entries a backup copies last, in this order: the records that name them are copied before them, so a copy never names what it lacks. */
  static readonly BACKUP_LAST: readonly string[] = ['state', 'packages', 'blocks']

  /** Files only ever appended to (`events.jsonl`, `app.log`): a copy takes them up to their last whole line. */
  static readonly APPENDED: readonly string[] = ['events.jsonl', 'app.log']

  private file (name: string): string {
    return path.join(this.root, name)
  }
}
