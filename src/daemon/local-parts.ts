/**
 * The parts of a daemon that need no network: its data directory and lock, event log,
 * metrics, trust store, node state, release book, block store, operator controls, trust
 * updates and rollout pauses. They are opened first, so that files named on the command line are
 * checked, and a first version installed, before the peer joins the network.
 */
import fs from 'node:fs/promises'
import type { Clock } from '../clock.js'
import { killLeftoverGroup } from '../host/index.js'
import { readPsk } from '../net/index.js'
import { PauseBook, ReleaseBook, TrustStore } from '../release/index.js'
import type { ScheduleRule } from '../package/index.js'
import { readPolicy } from '../schedule/index.js'
import { readJsonFile } from '../schema.js'
import { DataDir, FsBlockStore, describeTakeOver, lockDataDir, restrictDataDir } from '../store/index.js'
import type { DataDirLock } from '../store/index.js'
import { StatusChanges } from './changes.js'
import { OperatorControls } from './controls.js'
import { Downloads } from './downloads.js'
import { AppConfigInvalidError, AppMismatchError } from './errors.js'
import { EventLog } from './event-log.js'
import { Freshness } from './freshness.js'
import { DaemonMetrics } from './metrics.js'
import { NodeStateStore } from './node-state.js'
import type { DaemonOptions } from './options.js'
import { installBundle } from './publishing.js'
import { RolloutPauses } from './rollout-pauses.js'
import { TrustUpdates } from './trust-updates.js'
import { TurnedDown } from './turned-down.js'

/** The parts of a daemon that need no network. */
export interface LocalParts {
  options: DaemonOptions
  clock: Clock
  dataDir: DataDir
  lock: DataDirLock
  events: EventLog
  metrics: DaemonMetrics
  trustStore: TrustStore
  nodeState: NodeStateStore
  book: ReleaseBook
  blocks: FsBlockStore
  controls: OperatorControls
  changes: StatusChanges
  turnedDown: TurnedDown
  downloads: Downloads
  freshness: Freshness
  trustUpdates: TrustUpdates
  /** Signed pause and resume records of rollouts. */
  pauseBook: PauseBook
  pauses: RolloutPauses
  /** The operator's `--policy` rules. */
  policy: ScheduleRule[]
  /** The `--app-config` settings handed to the app. */
  appConfig: unknown
  /** The `--psk` key file's contents. */
  psk?: Uint8Array
  /** The data directory's mode before it was tightened to 0700 at this start, if it was looser. */
  loosenedMode?: number
}

/**
 * Open the local parts on a locked data directory, and prepare it: files named on the
 * command line are read, the release book loaded, what a rotation no longer admits
 * dropped, the app checked, and `--install` done. Releases the lock if it throws, leaving
 * a data directory that was absent or empty before as it was.
 */
export async function openLocalParts (options: DaemonOptions, clock: Clock): Promise<LocalParts> {
  // files named on the command line are checked before anything is written in the data directory
  const named = await readNamedFiles(options)
  const lock = await lockDataDir(options.data, { takeOver: options.takeOver })
  let events: EventLog | undefined
  let loosenedMode: number | undefined
  try {
    // before anything is written in it: a directory other users could read would show them the peer's key and state
    const tightened = await restrictDataDir(options.data)
    loosenedMode = tightened.from
    const dataDir = new DataDir(options.data)
    events = new EventLog(dataDir.events, { clock, limit: options.logLimit })
    if (tightened.from != null) events.warn('data-dir-mode', `data directory ${options.data} had mode ${octal(tightened.from)}; set to 0700, so that only its owner can read the peer's key, state and logs`, { from: octal(tightened.from) })
    if (tightened.error != null) events.warn('data-dir-mode', `data directory ${options.data} has mode ${octal(tightened.mode)}, open to other users, and could not be set to 0700: ${tightened.error}`, { from: octal(tightened.mode) })
    if (lock.tookOver != null) events.warn('lock-taken-over', describeTakeOver(options.data, lock.tookOver), { why: lock.tookOver.why, ...lock.tookOver.holder })
    const { store: trustStore, seeded, replayed, problems } = await TrustStore.open(options.data, { seed: options.trust, replace: options.replaceTrust })
    const nodeState = await NodeStateStore.open(dataDir.nodeState)
    const metrics = new DaemonMetrics()
    const changes = new StatusChanges()
    const turnedDown = new TurnedDown()
    const downloads = new Downloads()
    // what runs here and what it would roll back to stay in memory and on disk whatever their state
    const book = new ReleaseBook({ dir: dataDir.releases, trust: () => trustStore.policy, floor: app => nodeState.floor(app), pinned: () => [nodeState.state.current?.id, nodeState.state.previous?.id], maxSize: options.maxPackageSize, clock })
    const trustUpdates = new TrustUpdates({ trustStore, book, downloads, turnedDown, nodeState, events, metrics, changes })
    const freshness = new Freshness(clock, options.freezeAfterMs)
    const pauseBook = new PauseBook(dataDir.pauses)
    const pauses = new RolloutPauses({ pauses: pauseBook, trustStore, book, events, metrics, changes })
    const parts: LocalParts = {
      options,
      clock,
      dataDir,
      lock,
      events,
      metrics,
      trustStore,
      nodeState,
      book,
      blocks: new FsBlockStore(dataDir.blocks, { clock }),
      controls: new OperatorControls(dataDir.controls),
      changes,
      turnedDown,
      downloads,
      freshness,
      trustUpdates,
      pauseBook,
      pauses,
      loosenedMode,
      ...named
    }
    if (seeded) events.info('trust-seeded', `trust store seeded from ${options.trust ?? ''}: ${trustStore.policy.appNames().length > 0 ? trustStore.policy.appNames().join(', ') : 'no apps'}`)
    for (const problem of problems) events.warn('rotation-unreadable', `a kept trust rotation was not adopted: ${problem}`)
    // rotations kept on disk win over a seed or a store written before them (a crash, --replace-trust)
    for (const rotation of replayed) trustUpdates.noteRotated(rotation, 'the rotations kept in the data directory')
    await prepare(parts)
    return parts
  } catch (err) {
    await events?.close().catch(() => {})
    await undoLocalParts(lock, options.data, loosenedMode)
    throw err
  }
}

/** `0755`. */
function octal (mode: number): string {
  return mode.toString(8).padStart(4, '0')
}

/** A refused start: give the lock up, leaving a directory that was absent or empty as it was (its mode too). */
async function undoLocalParts (lock: DataDirLock, dir: string, loosenedMode: number | undefined): Promise<void> {
  await lock.release({ undo: true })
  if (lock.before === 'empty' && loosenedMode != null) await fs.chmod(dir, loosenedMode).catch(() => {})
}

/**
 * Close the local parts and give up the data directory. `refused`: the daemon did not
 * start, so a directory that was absent or empty before is left so again.
 */
export async function closeLocalParts (local: LocalParts, refused = false): Promise<void> {
  await local.events.close()
  if (refused) await undoLocalParts(local.lock, local.options.data, local.loosenedMode)
  else await local.lock.release()
}

/** Read the `--policy`, `--app-config` and `--psk` files: a refusal here comes before the data directory is touched. */
async function readNamedFiles (o: DaemonOptions): Promise<Pick<LocalParts, 'policy' | 'appConfig' | 'psk'>> {
  return {
    policy: o.policy == null ? [] : await readPolicy(o.policy),
    appConfig: o.appConfig == null ? null : await readJsonFile(o.appConfig, '--app-config', message => new AppConfigInvalidError(message)),
    psk: o.psk == null ? undefined : await readPsk(o.psk)
  }
}

async function prepare (parts: LocalParts): Promise<void> {
  const { options: o, events, book, nodeState } = parts
  for (const problem of await book.load()) events.warn('release-unreadable', `skipped an unreadable release file: ${problem}`)
  for (const problem of await parts.pauseBook.load()) events.warn('pause-unreadable', `skipped an unreadable pause record: ${problem}`)
  // a stop (or crash) between adopting a rotation and dropping what it no longer admits, or
  // rotations adopted again at start: nothing signed only by removed keys may start
  await parts.trustUpdates.start()
  const state = nodeState.state
  if (o.app != null && state.app !== o.app) {
    if (state.app != null && state.current != null) {
      throw new AppMismatchError(`this data directory runs ${state.app}; it cannot join as ${o.app} (use another --data directory)`)
    }
    await nodeState.set({ app: o.app, current: null, previous: null, since: null })
  }
  if (o.install != null) await installBundle({ ...parts, maxPackageSize: o.maxPackageSize }, o.install)
  await parts.controls.load()
  // a process app has no channel that closes when its daemon dies: a group left running is ended here
  const leftover = await killLeftoverGroup(parts.dataDir.appGroup)
  if (leftover != null) events.warn('app-leftover', `killed the process group ${leftover} of a process app that a previous daemon left running`, { pgid: leftover })
}
