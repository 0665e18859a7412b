/**
 * The releases installed on this peer: a release's unpacked package and manifest, the
 * simulation objects the app of a release loads (its past chain and the future SOs of
 * staged releases above it), and the running release's protocol version.
 */
import path from 'node:path'
import type { SimulationSpec } from '../host/index.js'
import { parseManifest } from '../package/index.js'
import type { ReleaseBook } from '../release/index.js'
import type { DataDir } from '../store/index.js'
import { isDirectory } from '../store/index.js'
import type { InstalledRelease } from '../upgrade/index.js'
import type { NodeStateStore } from './node-state.js'

/** Release states whose package may carry a past SO that a chain needs. */
const PAST_STATES = ['active', 'superseded', 'rolled-back', 'staged', 'waiting', 'upgrading']
/**
 * Release states whose future SO the running version loads: one about to run, and one
 * this peer went back from, whose version other peers may still run (a store rolled back
 * while its clients already call it in the new protocol).
 */
const FUTURE_STATES = ['staged', 'waiting', 'upgrading', 'rolled-back']

/** What the installed releases are read from. */
export interface InstalledReleasesComponents {
  book: Pick<ReleaseBook, 'get' | 'list' | 'read' | 'summaries' | 'summary'>
  dataDir: Pick<DataDir, 'packageDir'>
  nodeState: Pick<NodeStateStore, 'state'>
}

/** Looks up installed releases. */
export class InstalledReleases {
  private readonly c: InstalledReleasesComponents

  constructor (components: InstalledReleasesComponents) {
    this.c = components
  }

  /** A release as installed: its unpacked package and manifest. */
  async installed (id: string): Promise<InstalledRelease | undefined> {
    const entry = await this.c.book.read(id)
    if (entry == null) return undefined
    const packageDir = this.c.dataDir.packageDir(id)
    if (!(await isDirectory(packageDir))) return undefined
    const { record } = entry.signed
    return { id, app: record.app, version: record.version, packageDir, manifest: parseManifest(record.manifest) }
  }

  /**
   * The simulation objects the app of `release` loads: its past chain (its own past SO,
   * then the past SO of the release one protocol version down, and so on, from the
   * releases this peer keeps) and the future SOs of staged releases above it.
   */
  async simulationsFor (release: InstalledRelease): Promise<SimulationSpec[]> {
    const out: SimulationSpec[] = []
    let below: InstalledRelease | undefined = release
    while (below?.manifest.simulation?.past != null) {
      out.push({ module: path.join(below.packageDir, ...below.manifest.simulation.past.split('/')), version: below.manifest.protocol - 1 })
      below = await this.kept(release.app, below.manifest.protocol - 1, PAST_STATES, 'past')
    }
    for (let p = release.manifest.protocol + 1; ; p++) {
      const above = await this.kept(release.app, p, FUTURE_STATES, 'future')
      const future = above?.manifest.simulation?.future
      if (above == null || future == null) break
      out.push({ module: path.join(above.packageDir, ...future.split('/')), version: p })
    }
    return out
  }

  /** The newest kept release of `app` speaking `protocol`, in one of `states`; one that carries the SO the walk needs wins over a newer one that does not. */
  private async kept (app: string, protocol: number, states: string[], needs: 'past' | 'future'): Promise<InstalledRelease | undefined> {
    const entries = this.c.book.summaries().filter(e => e.app === app && states.includes(e.state) && e.protocol === protocol)
    let fallback: InstalledRelease | undefined
    for (const e of entries.reverse()) {
      const r = await this.installed(e.id)
      if (r == null) continue
      // one that carries the SO the chain needs next wins over a newer one that does not
      if (r.manifest.simulation?.[needs] != null) return r
      fallback ??= r
    }
    return fallback
  }

  /**
   * The protocol version of `app` (another class) that the version of this peer's app
   * running now calls, from its manifest's `calls`: `running`, the version whose process
   * runs (during a switch the new one runs before it is committed as current), else the
   * committed current release.
   */
  callsOf (app: string, running?: string): number | undefined {
    const current = this.c.nodeState.state.current
    const own = this.c.nodeState.state.app
    const entry = running != null && running !== current?.version
      ? this.c.book.list().find(e => e.signed.record.app === own && e.signed.record.version === running && e.state !== 'revoked' && e.state !== 'refused')
      : current == null ? undefined : this.c.book.get(current.id)
    const calls = (entry?.signed.record.manifest as { calls?: Record<string, unknown> } | undefined)?.calls
    const protocol = calls != null && Object.hasOwn(calls, app) ? calls[app] : undefined
    return typeof protocol === 'number' ? protocol : undefined
  }

  /** The running release's own protocol version. */
  nativeProtocol (): number | undefined {
    const current = this.c.nodeState.state.current
    if (current == null) return undefined
    const protocol = this.c.book.summary(current.id)?.protocol
    return typeof protocol === 'number' ? protocol : undefined
  }
}
