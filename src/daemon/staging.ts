/**
 * Staging: a release admitted here is fetched (its package's blocks, from every peer
 * that holds them, each checked against its CID), checked against its record, unpacked
 * to its package directory and marked `staged`. A package that contradicts its record
 * refuses the release; this peer's own trouble (a full disk, no peers) pauses the fetch
 * and tries again later.
 */
import fs from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import type { Clock } from '../clock.js'
import { formatDuration } from '../duration.js'
import { faultOf } from '../errors.js'
import { fetchPackage } from '../net/index.js'
import type { BlockExchange, PeerId } from '../net/index.js'
import { unpackPackage } from '../package/index.js'
import { verifyReleasePackage } from '../release/index.js'
import type { ReleaseBook, ReleaseEntry, ReleaseRecord } from '../release/index.js'
import { DiskFullError, isDiskFull } from '../store/index.js'
import type { BlockStore, DataDir } from '../store/index.js'
import type { Downloads } from './downloads.js'
import type { EventLog } from './event-log.js'
import type { DaemonMetrics } from './metrics.js'
import type { NodeStateStore } from './node-state.js'

/** What staging needs. */
export interface StagingComponents {
  book: Pick<ReleaseBook, 'get' | 'list' | 'setState' | 'on' | 'off'>
  blocks: BlockStore
  exchange: BlockExchange
  /** Peers that may hold blocks, asked afresh every round. */
  peers: () => PeerId[]
  downloads: Downloads
  dataDir: Pick<DataDir, 'root' | 'packageDir'>
  nodeState: Pick<NodeStateStore, 'state'>
  events: Pick<EventLog, 'info' | 'warn' | 'error'>
  metrics: Pick<DaemonMetrics, 'refused'>
  changes: { changed: () => void }
  /** A release was staged: its future SO is loaded into the running app before the switch. */
  staged: () => Promise<void>
  clock: Clock
}

/** Options of staging. */
export interface StagingInit {
  /** How long a fetch that failed for this peer's own reasons waits before it is tried again. */
  fetchRetryMs: number
}

/** Unpack a held package to its package directory unless it is there already. */
export async function ensureUnpacked (c: { blocks: BlockStore, dataDir: Pick<DataDir, 'packageDir'> }, id: string, record: ReleaseRecord): Promise<void> {
  const dir = c.dataDir.packageDir(id)
  if (!(await fs.stat(dir).then(() => true, () => false))) await unpackPackage(record.package, c.blocks, dir)
}

/** Fetches and stages releases. */
export class Staging {
  private readonly c: StagingComponents
  private readonly init: StagingInit
  private readonly work = new Set<Promise<unknown>>()
  private stopped = false

  constructor (components: StagingComponents, init: StagingInit) {
    this.c = components
    this.init = init
  }

  private readonly onChange = (entry: ReleaseEntry): void => {
    if (entry.state === 'fetching') this.fetch(entry)
  }

  /** Fetch every release admitted and not yet held, now and whenever one is admitted. */
  start (): void {
    this.c.book.on('change', this.onChange)
    for (const entry of this.c.book.list()) if (entry.state === 'fetching') this.fetch(entry)
  }

  /** Abort every fetch and wait until they and their staging have ended. */
  async stop (): Promise<void> {
    this.stopped = true
    this.c.book.off('change', this.onChange)
    this.c.downloads.abortAll()
    await Promise.allSettled([...this.work])
  }

  /** Fetch the package of `entry` unless it is being fetched; staged once every block is held. */
  fetch (entry: ReleaseEntry): void {
    const { downloads } = this.c
    if (downloads.has(entry.id) || this.stopped) return
    const signal = downloads.begin(entry.id)
    const { record } = entry.signed
    const job = fetchPackage({
      root: record.package,
      store: this.c.blocks,
      exchange: this.c.exchange,
      sources: this.c.peers,
      onProgress: have => { downloads.setHave(entry.id, have); this.c.changes.changed() },
      log: message => { this.c.events.info('fetch', `${record.app}@${record.version}: ${message}`) },
      signal,
      clock: this.c.clock
    }).then(async () => {
      if (!signal.aborted) await this.stage(entry)
    }).catch(async (err: Error) => {
      if (signal.aborted) return
      await this.failed(entry, err)
    }).catch((err: Error) => {
      this.c.events.error('fetch-failed', `${record.app}@${record.version}: ${err.message}`)
    }).finally(() => {
      downloads.end(entry.id)
      this.work.delete(job)
    })
    this.work.add(job)
  }

  /** A fetch or its staging failed: the package's fault refuses the release; ours is tried again later. */
  private async failed (entry: ReleaseEntry, err: Error): Promise<void> {
    const { record } = entry.signed
    if (faultOf(err) === 'content') {
      this.c.metrics.refused(err.name)
      await this.c.book.setState(entry.id, 'refused', err.message)
      this.c.events.error('release-refused', `refused ${record.app}@${record.version}: ${err.message}`, { id: entry.id, error: err.name })
      return
    }
    const retry = `trying again in ${formatDuration(this.init.fetchRetryMs)}`
    if (err instanceof DiskFullError) {
      const held = `${this.c.downloads.have(entry.id)} of ${record.size} bytes held`
      this.c.downloads.setPaused(entry.id, `${err.name}: ${err.message}; ${held}, kept; free space in ${this.c.dataDir.root} and the fetch resumes`)
      this.c.changes.changed()
      this.c.events.warn('fetch-paused', `${record.app}@${record.version}: the disk is full (${err.message}); ${held}, kept; the fetch is paused, ${retry}; free space to let it complete`, { id: entry.id, error: err.name })
    } else {
      this.c.events.warn('fetch-retry', `${record.app}@${record.version}: ${err.message}; ${retry}`, { id: entry.id, error: err.name })
    }
    const timer = setTimeout(() => { if (!this.stopped && this.c.book.get(entry.id)?.state === 'fetching') this.fetch(entry) }, this.init.fetchRetryMs)
    timer.unref()
  }

  /** Every block is held: check the package against the record, unpack it, and mark it staged. */
  private async stage (entry: ReleaseEntry): Promise<void> {
    const { record } = entry.signed
    await verifyReleasePackage(record, this.c.blocks)
    try {
      await ensureUnpacked(this.c, entry.id, record)
      this.c.downloads.setHave(entry.id, record.size)
      await this.c.book.setState(entry.id, this.c.nodeState.state.current?.id === entry.id ? 'active' : 'staged')
    } catch (err) {
      if (isDiskFull(err)) throw new DiskFullError(`no space left on device to unpack or record ${record.app}@${record.version} in ${this.c.dataDir.root}`, { cause: err })
      throw err
    }
    this.c.downloads.setPaused(entry.id, undefined)
    await this.c.staged().catch(err => { this.c.events.warn('simulations', `could not load simulation objects: ${(err as Error).message}`) })
    this.c.events.info('release-staged', `staged ${record.app}@${record.version} (${record.size} bytes, every block verified)`, { id: entry.id })
  }
}

/** Copy the blocks `cids` from `from` into `to`, skipping those held already. */
export async function importBlocks (to: BlockStore, from: { get: (cid: CID) => Promise<Uint8Array> }, cids: CID[]): Promise<void> {
  for (const cid of cids) {
    if (!(await to.has(cid))) await to.put(cid, await from.get(cid))
  }
}
