/**
 * The testnet's throwaway directory: publisher keys, trust files, the daemons' shared
 * config, and release bundles of a demo app built from `testnet/apps/kv/` (or
 * `testnet/apps/pykv/`, or the two classes of `testnet/apps/classes/`).
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { CID } from 'multiformats/cid'
import { MemoryBlockStore } from '../store/index.js'
import { coSign, createRelease, encodeRevocation, generatePublisherKey, signRevocation, writeBundle, writeKeyFile } from '../release/index.js'
import type { PublisherKey, SignedRelease } from '../release/index.js'
import { KV_APP } from './apps.js'
import type { TestnetApp } from './apps.js'

/** Where the demo app's versions live (`v1/` … `v4/`). */
export const DEMO_APP_DIR = KV_APP.dir

/** A release bundle made for the testnet. */
export interface TestnetRelease {
  /** The app it is a release of. */
  app: string
  version: string
  id: string
  cid: CID
  file: string
  bytes: Uint8Array
  signed: SignedRelease
  protocol: number
  /** Re-bundle with one more publisher signature (the release id does not change). */
  coSigned: (key: PublisherKey) => Promise<TestnetRelease>
}

/** Changes to a version's manifest for one scenario (its schedule rules). */
export interface ManifestOverride {
  schedule?: Array<Record<string, unknown>>
  /** Merged into the manifest's `health` (a quicker `stableFor`). */
  health?: Record<string, unknown>
  /** Another version number for the same code (the soak publishes 2.0.1, 2.0.2, …). */
  version?: string
}

/** Publisher keys, trust, config and bundles in one directory. */
export class Workspace {
  readonly keys: PublisherKey[] = []
  private constructor (readonly root: string, readonly app: TestnetApp, readonly otherApps: TestnetApp[]) {}

  /**
   * A fresh directory (under the system's temp dir unless `root` is given) with three
   * publisher keys, for the releases of `app` (and of `otherApps`, the other classes of
   * node the network carries).
   */
  static async create (root?: string, app: TestnetApp = KV_APP, otherApps: TestnetApp[] = []): Promise<Workspace> {
    const dir = root ?? await fs.mkdtemp(path.join(os.tmpdir(), 'upgossip-testnet-'))
    await fs.mkdir(dir, { recursive: true })
    const ws = new Workspace(dir, app, otherApps)
    for (const name of ['alice', 'bob', 'carol']) {
      const key = await generatePublisherKey()
      await writeKeyFile(path.join(dir, `${name}.key`), key)
      ws.keys.push(key)
    }
    return ws
  }

  /** The publisher key file of `index` (0 alice, 1 bob, 2 carol). */
  keyFile (index: number): string {
    return path.join(this.root, `${['alice', 'bob', 'carol'][index] as string}.key`)
  }

  /** Write the trust file: for every app, the first `publishers` keys, `threshold` of them needed. */
  async writeTrust (publishers: number, threshold: number): Promise<string> {
    const file = path.join(this.root, 'trust.json')
    const policy = { publishers: this.keys.slice(0, publishers).map(k => k.id), threshold }
    const trust = { apps: Object.fromEntries([this.app, ...this.otherApps].map(a => [a.name, policy])) }
    await fs.writeFile(file, JSON.stringify(trust, null, 2) + '\n')
    return file
  }

  /** Write the daemons' shared `--config` file. */
  async writeConfig (config: Record<string, unknown>): Promise<string> {
    const file = path.join(this.root, 'daemon.json')
    await fs.writeFile(file, JSON.stringify(config, null, 2) + '\n')
    return file
  }

  /** A file in the workspace. */
  file (...parts: string[]): string {
    return path.join(this.root, ...parts)
  }

  /**
   * Build and sign a release of `app`'s version `major` (1 → `v1/`; by default the
   * workspace's app), with the manifest changed by `override`, signed by `signers`
   * (indexes into the keys).
   */
  async release (major: number, override: ManifestOverride = {}, signers: number[] = [0], app: TestnetApp = this.app): Promise<TestnetRelease> {
    // with several apps, each one's packages are named after it
    const prefix = this.otherApps.length > 0 ? `${app.name}-` : ''
    const dir = this.file('packages', `${prefix}v${major}${override.version == null ? '' : `-${override.version}`}${override.schedule == null ? '' : '-' + override.schedule.map(r => String(r.rule)).join('-')}`)
    await fs.rm(dir, { recursive: true, force: true })
    await fs.cp(path.join(app.dir, `v${major}`), dir, { recursive: true })
    const manifestFile = path.join(dir, 'upgossip.json')
    const manifest = JSON.parse(await fs.readFile(manifestFile, 'utf8')) as Record<string, unknown>
    if (override.schedule != null) manifest.schedule = override.schedule
    if (override.version != null) manifest.version = override.version
    if (override.health != null) manifest.health = { ...manifest.health as object, ...override.health }
    await fs.writeFile(manifestFile, JSON.stringify(manifest, null, 2) + '\n')
    const store = new MemoryBlockStore()
    const { signed, id, blocks } = await createRelease({ dir, store, keys: signers.map(i => this.keys[i] as PublisherKey) })
    const bundle = async (s: SignedRelease, label: string): Promise<TestnetRelease> => {
      const bytes = await writeBundle(s, store, blocks)
      const file = this.file(`${s.record.app}-${s.record.version}${label}.car`)
      await fs.writeFile(file, bytes)
      return {
        app: s.record.app,
        version: s.record.version,
        id: id.toString(),
        cid: id,
        file,
        bytes,
        signed: s,
        protocol: Number(manifest.protocol),
        coSigned: async key => await bundle(await coSign(s, key), `${label}+${s.signatures.length + 1}`)
      }
    }
    return await bundle(signed, '')
  }

  /** A revocation of `release` signed by `signers`, ready for `POST /revoke`. */
  async revocation (release: TestnetRelease, reason: string, signers: number[] = [0]): Promise<Uint8Array> {
    const signed = await signRevocation({ app: this.app.name, release: release.cid, issued: new Date().toISOString(), reason }, signers.map(i => this.keys[i] as PublisherKey))
    return encodeRevocation(signed)
  }

  /** Remove the whole directory. */
  async remove (): Promise<void> {
    await fs.rm(this.root, { recursive: true, force: true })
  }
}
