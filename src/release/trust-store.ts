/**
 * The trust store of a peer: `trust.json` in its data directory, seeded by `--trust FILE`
 * on first start, and the trust rotations it adopted since, in
 * `rotations/<app>/<sequence>.cbor`. A later start with a *different* file is refused
 * unless `--replace-trust`; a start with the *same* file keeps the rotated policy; and
 * rotations held on disk that follow on from the policy loaded are adopted again on
 * start, so neither a stale file nor a crash between two writes undoes a rotation.
 *
 * @example
 * ```ts
 * const { store } = await TrustStore.open(dataDir, { seed: 'trust.json' })
 * const outcome = await store.adopt(signedRotation) // { kind: 'new', … } | { kind: 'known', … }; throws when refused
 * store.policy.forApp('kv') // { publishers, threshold, sequence }
 * ```
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { UpgossipError } from '../errors.js'
import { writeFileAtomic, writeJsonAtomic } from '../store/index.js'
import { decodeRotation, encodeRotation, makesPolicy, rotationId, rotationPolicy, verifyRotation, ROTATION_SIGNING_DOMAIN } from './rotation.js'
import type { SignedRotation } from './rotation.js'
import { countTrustedSignatures } from './signing.js'
import { TrustFileInvalidError, TrustPolicy } from './trust.js'
import type { AppPolicy } from './trust.js'

/** `--trust` names a file other than the one this data directory was seeded with. */
export class TrustConflictError extends UpgossipError {
  static override name = 'TrustConflictError'
}

/** Files of the trust store inside a data directory. */
export const TRUST_STORE_FILE = 'trust.json'
const SEED_HASH_FILE = 'trust.seed'
/** The directory of adopted rotations: `<app>/<sequence>.cbor`. */
export const ROTATIONS_DIR = 'rotations'

/** Options for {@link loadTrustStore} and {@link TrustStore.open}. */
export interface LoadTrustOptions {
  /** `--trust FILE`. */
  seed?: string
  /** `--replace-trust`. */
  replace?: boolean
}

/** The trust policy of the peer in `dataDir`, seeding or replacing it as the options say (without rotations). */
export async function loadTrustStore (dataDir: string, options: LoadTrustOptions = {}): Promise<{ policy: TrustPolicy, seeded: boolean }> {
  const storeFile = path.join(dataDir, TRUST_STORE_FILE)
  const seedHashFile = path.join(dataDir, SEED_HASH_FILE)
  const stored = await fs.readFile(storeFile, 'utf8').then(text => text, () => undefined)
  if (options.seed != null) {
    const seedPolicy = await TrustPolicy.read(options.seed)
    const seedHash = createHash('sha256').update(JSON.stringify(seedPolicy.toJSON())).digest('hex')
    const previousHash = await fs.readFile(seedHashFile, 'utf8').then(text => text.trim(), () => undefined)
    if (stored == null || options.replace === true) {
      // the seed's hash first: a crash between the two writes then re-seeds on the next start
      await writeFileAtomic(seedHashFile, seedHash + '\n')
      await writeJsonAtomic(storeFile, seedPolicy.toJSON(), { mode: 0o600 })
      return { policy: seedPolicy, seeded: true }
    }
    if (previousHash !== seedHash) {
      throw new TrustConflictError(`${dataDir} already has a trust store, seeded from a different file than ${options.seed}; a stale file must not undo a key rotation. Start without --trust, or add --replace-trust to replace the store`)
    }
  }
  if (stored == null) return { policy: TrustPolicy.parse({ apps: {} }), seeded: false }
  let json: unknown
  try {
    json = JSON.parse(stored)
  } catch {
    throw new TrustFileInvalidError(`${storeFile} is not valid JSON; restore it or start with --trust FILE --replace-trust`)
  }
  return { policy: TrustPolicy.parse(json, storeFile), seeded: false }
}

/** What {@link TrustStore.adopt} did. */
export type AdoptOutcome =
  | { kind: 'new', id: string, app: string, policy: AppPolicy, previous: AppPolicy, signers: string[] }
  | { kind: 'known', id: string, app: string, policy: AppPolicy }

/** What {@link TrustStore.open} found. */
export interface OpenedTrustStore {
  store: TrustStore
  /** Seeded (or replaced) from `--trust` on this start. */
  seeded: boolean
  /** Rotations held on disk and adopted again on this start (after a crash or `--replace-trust`). */
  replayed: SignedRotation[]
  /** Rotation files that were unreadable or did not follow on, one line each. */
  problems: string[]
}

async function sameRotation (a: SignedRotation, b: SignedRotation): Promise<boolean> {
  return (await rotationId(a.record)).equals(await rotationId(b.record))
}

/** The peer's trust policy and the chain of rotations that led to it, durable. */
export class TrustStore {
  private current: TrustPolicy
  private readonly dir: string
  /** Per app, the adopted rotations this peer can show others, lowest sequence first, ending at the current one. */
  private readonly chains = new Map<string, SignedRotation[]>()
  private queue: Promise<unknown> = Promise.resolve()

  private constructor (dir: string, policy: TrustPolicy) {
    this.dir = dir
    this.current = policy
  }

  /** Open the store in `dataDir`: seed it as the options say, then load the rotations held and adopt those that follow on. */
  static async open (dataDir: string, options: LoadTrustOptions = {}): Promise<OpenedTrustStore> {
    const { policy, seeded } = await loadTrustStore(dataDir, options)
    const store = new TrustStore(dataDir, policy)
    const problems: string[] = []
    const replayed: SignedRotation[] = []
    for (const app of policy.appNames()) {
      const held = await store.readRotations(app, problems)
      replayed.push(...await store.restoreChain(app, held, problems))
    }
    if (replayed.length > 0) await store.writePolicy()
    return { store, seeded, replayed, problems }
  }

  /** The policy in force now. */
  get policy (): TrustPolicy {
    return this.current
  }

  /** The adopted rotations of `app`, lowest sequence first (for anti-entropy). */
  rotations (app: string): SignedRotation[] {
    return [...(this.chains.get(app) ?? [])]
  }

  /**
   * Adopt a rotation: checked against the policy in force ({@link verifyRotation}), written
   * durably (the record first, then `trust.json`), then in force. The rotation already
   * adopted, or one that makes exactly the policy in force, is `known`. Serialised; throws
   * the verification's named error when refused.
   */
  async adopt (signed: SignedRotation): Promise<AdoptOutcome> {
    const run = this.queue.then(async () => await this.adoptNow(signed))
    this.queue = run.catch(() => {})
    return await run
  }

  private async adoptNow (signed: SignedRotation): Promise<AdoptOutcome> {
    const { app } = signed.record
    const id = (await rotationId(signed.record)).toString()
    const previous = this.current.forApp(app)
    if (previous != null) {
      for (const held of this.chains.get(app) ?? []) {
        if (await sameRotation(held, signed)) return { kind: 'known', id, app, policy: previous }
      }
      // a peer seeded with the rotated policy itself has no record of it, but nothing to learn from it either
      if (makesPolicy(signed.record, previous)) return { kind: 'known', id, app, policy: previous }
    }
    const { policy, signers } = await verifyRotation(signed, this.current)
    await this.writeRotation(signed)
    this.current = this.current.withApp(app, policy)
    this.chains.set(app, [...(this.chains.get(app) ?? []), signed])
    await this.writePolicy()
    return { kind: 'new', id, app, policy, previous: previous as AppPolicy, signers }
  }

  private appDir (app: string): string {
    return path.join(this.dir, ROTATIONS_DIR, app)
  }

  private async writeRotation (signed: SignedRotation): Promise<void> {
    const dir = this.appDir(signed.record.app)
    await writeFileAtomic(path.join(dir, `${signed.record.sequence}.cbor`), encodeRotation(signed))
    // files further on belong to a chain this peer left (a --replace-trust): never replay them over this one
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const n = /^(\d+)\.cbor$/.exec(name)
      if (n != null && Number(n[1]) > signed.record.sequence) await fs.rm(path.join(dir, name), { force: true })
    }
  }

  private async writePolicy (): Promise<void> {
    await writeJsonAtomic(path.join(this.dir, TRUST_STORE_FILE), this.current.toJSON(), { mode: 0o600 })
  }

  private async readRotations (app: string, problems: string[]): Promise<Map<number, SignedRotation>> {
    const held = new Map<number, SignedRotation>()
    const dir = this.appDir(app)
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const n = /^(\d+)\.cbor$/.exec(name)
      if (n == null) continue
      try {
        const signed = decodeRotation(await fs.readFile(path.join(dir, name)))
        if (signed.record.app !== app || signed.record.sequence !== Number(n[1])) throw new UpgossipError('its content does not match its file name')
        held.set(signed.record.sequence, signed)
      } catch (err) {
        problems.push(`${path.join(ROTATIONS_DIR, app, name)}: ${(err as Error).message}`)
      }
    }
    return held
  }

  /**
   * From the rotations held for `app`: the chain that ends at the policy in force (each
   * verified against the policy the one before it made), kept to serve to others; then
   * the rotations beyond it, adopted again in order while each verifies. Returns those.
   */
  private async restoreChain (app: string, held: Map<number, SignedRotation>, problems: string[]): Promise<SignedRotation[]> {
    let policy = this.current.forApp(app) as AppPolicy
    const chain: SignedRotation[] = []
    let later = held.get(policy.sequence)
    if (later != null && makesPolicy(later.record, policy)) {
      chain.push(later)
      for (let n = policy.sequence - 1; n >= 1; n--) {
        const before = held.get(n)
        if (before == null || !(await this.signedUnder(later, rotationPolicy(before.record)))) break
        chain.unshift(before)
        later = before
      }
    }
    const replayed: SignedRotation[] = []
    for (let n = policy.sequence + 1; held.has(n); n++) {
      const next = held.get(n) as SignedRotation
      try {
        ;({ policy } = await verifyRotation(next, this.current))
      } catch (err) {
        problems.push(`${path.join(ROTATIONS_DIR, app, `${n}.cbor`)} does not follow on from the trust policy in force: ${(err as Error).message}`)
        break
      }
      this.current = this.current.withApp(app, policy)
      chain.push(next)
      replayed.push(next)
    }
    if (chain.length > 0) this.chains.set(app, chain)
    return replayed
  }

  private async signedUnder (signed: SignedRotation, policy: AppPolicy): Promise<boolean> {
    const keys = new Set(policy.publishers)
    const { valid } = await countTrustedSignatures(await rotationId(signed.record), ROTATION_SIGNING_DOMAIN, signed.signatures, key => keys.has(key))
    return valid.length >= policy.threshold
  }
}
