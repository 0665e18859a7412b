/**
 * Retention: what a peer keeps on disk, collected after each commit, at start and after a
 * revocation. It watches the network view (which version each peer runs, which releases it
 * fetches; a peer that leaves the view is remembered for `retainWindow`, in
 * `retention.json`), asks the policy
 * ({@link retainedReleases}) what to keep, removes the other package and state
 * directories, and deletes every block not reachable from a kept package (the block
 * store's write barrier protects what a fetch finds or stores meanwhile).
 *
 * @example
 * ```ts
 * const retention = new Retention({ book, nodeState, view, blocks, dataDir, events, metrics, clock, switching, exclusive }, { keepReleases: 2, retainWindowMs: 86_400_000, observeEveryMs: 5000, collectEveryMs: 3_600_000, startDelayMs: 60_000 })
 * retention.start()
 * await retention.collect('commit') // inside the switch; retention.request('revoked') from outside
 * ```
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { z } from 'zod'
import type { Clock } from '../clock.js'
import type { ViewEntry } from '../net/index.js'
import { heldPackageBlocks } from '../package/index.js'
import type { ReleaseBook } from '../release/index.js'
import { safeParse } from '../schema.js'
import { removeTree, treeBytes, writeJsonAtomic } from '../store/index.js'
import type { BlockCollection, DataDir, FsBlockStore } from '../store/index.js'
import type { EventLog } from './event-log.js'
import type { DaemonMetrics } from './metrics.js'
import type { NodeStateStore } from './node-state.js'
import { retainedReleases, versionKey } from './retention-policy.js'
import type { RetainReason, RetentionInit as PolicyInit, RetentionPlan } from './retention-policy.js'

/** Most versions and fetches remembered (a bound whatever the network does). */
const MAX_REMEMBERED = 10_000

/** What retention remembers of one peer: the version it ran and the releases it fetched when last seen. */
interface PeerSeen {
  app: string | null
  version: string | null
  fetching: string[]
  at: number
}

const RememberedSchema = z.object({
  v: z.literal(2),
  peers: z.record(z.string().max(200), z.object({
    app: z.string().max(64).nullable(),
    version: z.string().max(256).nullable(),
    fetching: z.array(z.string().max(128)).max(64),
    at: z.number()
  }))
})

/** What retention needs. */
export interface RetentionComponents {
  book: Pick<ReleaseBook, 'peek' | 'summaries' | 'isRevoked'>
  nodeState: Pick<NodeStateStore, 'state'>
  view: () => ViewEntry[]
  blocks: Pick<FsBlockStore, 'collect' | 'has' | 'get'>
  dataDir: Pick<DataDir, 'packages' | 'states' | 'retention'>
  events: Pick<EventLog, 'info' | 'warn'>
  metrics: Pick<DaemonMetrics, 'retained'>
  clock: Clock
  /** The release a switch in progress goes to. */
  switching: () => string[]
  /** Run a collection that retention starts itself alone (never during a switch). */
  exclusive: <T>(fn: () => Promise<T>) => Promise<T>
}

/** Options of retention. */
export interface RetentionInit extends PolicyInit {
  /** How often the network view is looked at for versions run and releases fetched. */
  observeEveryMs: number
  /** How often a collection runs with no commit (a window ends, a peer moves on). */
  collectEveryMs: number
  /** How long after the start the first collection waits: the network view fills first. */
  startDelayMs: number
}

/** Bytes on disk, by folder of the data directory. */
export interface DiskUse {
  blocks: number
  packages: number
  state: number
}

/** What one collection did. */
export interface RetentionResult {
  /** What started it: `commit`, `start`, `revoked`, `periodic`. */
  reason: string
  /** Kept releases by why they are kept. */
  kept: Partial<Record<RetainReason, number>>
  packages: { removed: number, freedBytes: number }
  states: { removed: number, freedBytes: number }
  blocks: BlockCollection
  disk: DiskUse
}

/** Keeps what the policy keeps, collects the rest. */
export class Retention {
  private readonly c: RetentionComponents
  private readonly init: RetentionInit
  /** Each peer's last known version and fetches, by peer id, stalest first. */
  private readonly peers = new Map<string, PeerSeen>()
  private readonly timers: NodeJS.Timeout[] = []
  private running: Promise<unknown> = Promise.resolve()
  /** The last collection's result, if any ran. */
  last: RetentionResult | undefined

  constructor (components: RetentionComponents, init: RetentionInit) {
    this.c = components
    this.init = init
  }

  /** Read what earlier runs saw, watch the view, and plan the first collection and the periodic ones. */
  async start (): Promise<void> {
    await this.load()
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms)
      t.unref()
      this.timers.push(t)
    }
    every(this.init.observeEveryMs, () => { this.observe() })
    every(this.init.collectEveryMs, () => { this.request('periodic') })
    const first = setTimeout(() => { this.request('start') }, this.init.startDelayMs)
    first.unref()
    this.timers.push(first)
  }

  /** Stop watching; what was seen is saved for the next start. */
  async stop (): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.timers.length = 0
    this.observe()
    await this.save().catch(() => {})
  }

  /**
   * Note the version each peer in view runs and the releases it fetches or switches to. A
   * peer's newer beat replaces what it said before (a peer that moved on no longer needs
   * its old version); one that leaves the view is remembered for `retainWindow`.
   */
  observe (): void {
    for (const { peerId, beat, seen } of this.c.view()) {
      const fetching = beat.held.filter(h => h.have < h.size).map(h => h.id)
      if (beat.upgrading != null) fetching.push(beat.upgrading)
      this.peers.delete(peerId)
      this.peers.set(peerId, { app: beat.app, version: beat.version, fetching, at: seen })
      if (this.peers.size > MAX_REMEMBERED) this.peers.delete(this.peers.keys().next().value as string)
    }
  }

  /** What the policy keeps now. */
  plan (): RetentionPlan {
    this.observe()
    const now = this.c.clock.now()
    const seen = new Map<string, number>()
    const fetched = new Map<string, number>()
    const latest = (map: Map<string, number>, key: string, at: number): void => { map.set(key, Math.max(at, map.get(key) ?? at)) }
    for (const [id, peer] of this.peers) {
      if (now - peer.at > this.init.retainWindowMs) {
        this.peers.delete(id)
        continue
      }
      if (peer.app != null && peer.version != null) latest(seen, versionKey(peer.app, peer.version), peer.at)
      for (const release of peer.fetching) latest(fetched, release, peer.at)
    }
    const state = this.c.nodeState.state
    // every release the book knows, not only those whose signed releases are in memory
    const releases = this.c.book.summaries().map(e => ({ id: e.id, app: e.app, version: e.version, state: e.state, revoked: this.c.book.isRevoked(e.id) }))
    return retainedReleases({ app: state.app, current: state.current, previous: state.previous, releases, seen, fetched, now, switching: this.c.switching() }, this.init)
  }

  /** A collection started from outside a switch (a revocation settled): run alone, when no switch runs. */
  request (reason: string): void {
    this.c.exclusive(async () => await this.collect(reason)).catch((err: Error) => {
      this.c.events.warn('retention-failed', `collecting what is no longer kept failed (${reason}): ${err.message}; tried again later`)
    })
  }

  /** Collect now: package and state directories not kept, then every block no kept package reaches. */
  async collect (reason: string): Promise<RetentionResult> {
    const run = this.running.then(async () => await this.collectNow(reason))
    this.running = run.catch(() => {})
    return await run
  }

  private async collectNow (reason: string): Promise<RetentionResult> {
    const packages = await this.sweepDirs(this.c.dataDir.packages, () => new Set(this.plan().packages.keys()))
    const states = await this.sweepDirs(this.c.dataDir.states, () => this.plan().states)
    let plan = this.plan()
    const blocks = await this.c.blocks.collect(async () => {
      // planned again once the store's write barrier is up: a release admitted since is kept
      plan = this.plan()
      const cids = []
      for (const id of plan.packages.keys()) {
        const entry = await this.c.book.peek(id)
        if (entry != null) cids.push(...await heldPackageBlocks(entry.signed.record.package, this.c.blocks))
      }
      return cids
    })
    const kept: RetentionResult['kept'] = {}
    for (const why of plan.packages.values()) kept[why] = (kept[why] ?? 0) + 1
    const disk = { blocks: blocks.keptBytes, packages: await treeBytes(this.c.dataDir.packages), state: await treeBytes(this.c.dataDir.states) }
    const result: RetentionResult = { reason, kept, packages, states, blocks, disk }
    this.last = result
    await this.save().catch((err: Error) => { this.c.events.warn('retention-unsaved', `could not save what the network view showed (${err.message}); it is seen again`) })
    this.c.metrics.retained(result)
    const freed = packages.freedBytes + states.freedBytes + blocks.freedBytes
    const why = Object.entries(kept).map(([k, n]) => `${n} ${k}`).join(', ')
    this.c.events.info('retention', `collected (${reason}): removed ${packages.removed} packages, ${states.removed} states and ${blocks.removed} blocks (${freed} bytes freed); kept ${plan.packages.size} releases (${why === '' ? 'none' : why})`, { ...result })
    return result
  }

  /** Remove the entries of `root` that `keep` (asked once the listing is read) does not name; names starting with "." are work in progress. */
  private async sweepDirs (root: string, keep: () => ReadonlySet<string>): Promise<{ removed: number, freedBytes: number }> {
    const names = await fs.readdir(root).catch(() => [] as string[])
    const kept = keep()
    const out = { removed: 0, freedBytes: 0 }
    for (const name of names) {
      if (name.startsWith('.') || kept.has(name)) continue
      const dir = path.join(root, name)
      out.freedBytes += await treeBytes(dir)
      await removeTree(dir)
      out.removed++
    }
    return out
  }

  private async load (): Promise<void> {
    const text = await fs.readFile(this.c.dataDir.retention, 'utf8').catch(() => undefined)
    if (text == null) return
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {}
    const parsed = safeParse(RememberedSchema, json)
    if (!parsed.success) {
      this.c.events.warn('retention-unreadable', `${this.c.dataDir.retention} is not what retention writes; what peers ran is seen afresh`)
      return
    }
    for (const [id, peer] of Object.entries(parsed.data.peers).sort(([, a], [, b]) => a.at - b.at)) this.peers.set(id, peer)
  }

  private async save (): Promise<void> {
    await writeJsonAtomic(this.c.dataDir.retention, { v: 2, peers: Object.fromEntries(this.peers) })
  }
}
