/**
 * The trust policy: per app, which publisher keys may sign releases and how many of
 * them must (`threshold`). Read from the `--trust FILE` JSON:
 * `{ "apps": { "kv": { "publishers": ["z6Mk…"], "threshold": 1 } } }`.
 * `sequence` (default 0) counts the trust rotations an app's policy has been through;
 * a rotation is taken only as the next one (see rotation.ts).
 */
import { z } from 'zod'
import { UpgossipError } from '../errors.js'
import { describeSchemaIssues, readJsonFile, safeParse } from '../schema.js'
import { isPublicKeyString } from './keys.js'

/** A trust file is unreadable or does not match the schema. */
export class TrustFileInvalidError extends UpgossipError {
  static override name = 'TrustFileInvalidError'
}

/** One app's publishers. */
export interface AppTrust {
  publishers: string[]
  threshold: number
  /** How many rotations led to this policy; absent in a trust file means 0. */
  sequence?: number
}

/** One app's policy as a peer applies it: the sequence is always known. */
export type AppPolicy = Required<AppTrust>

/** Most publishers of one app (in a trust file and in a rotation). */
export const MAX_PUBLISHERS = 64

/** What an app name looks like (trust files, rotations). */
export const APP_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/

/** A list of publisher keys: 1 to {@link MAX_PUBLISHERS} distinct `z6Mk…` keys. */
export const PublishersSchema = z.array(z.string().max(128).refine(isPublicKeyString, { message: 'expected an Ed25519 public key in multibase base58btc ("z6Mk…")' })).min(1).max(MAX_PUBLISHERS)
  .refine(keys => new Set(keys).size === keys.length, { message: 'a publisher key is listed twice' })

/** A trust sequence: 0 for a policy no rotation has touched. */
export const SequenceSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

const AppTrustSchema = z.strictObject({
  publishers: PublishersSchema,
  threshold: z.number().int().min(1),
  sequence: SequenceSchema.optional()
}).refine(t => t.threshold <= t.publishers.length, { message: 'threshold is larger than the number of publishers, so nothing could ever be admitted' })

/** The trust file schema. */
export const TrustFileSchema = z.strictObject({
  apps: z.record(z.string().regex(APP_NAME, { message: 'expected an app name' }), AppTrustSchema)
})

/** The parsed content of a trust file. */
export type TrustFile = z.infer<typeof TrustFileSchema>

/** Which keys this peer trusts, per app. */
export class TrustPolicy {
  private readonly apps: Map<string, { keys: Set<string>, threshold: number, sequence: number }>

  constructor (file: TrustFile) {
    this.apps = new Map(Object.entries(file.apps).map(([app, t]) => [app, { keys: new Set(t.publishers), threshold: t.threshold, sequence: t.sequence ?? 0 }]))
  }

  /** Validate a parsed trust file value; throws {@link TrustFileInvalidError}. */
  static parse (value: unknown, where = 'trust file'): TrustPolicy {
    const result = safeParse(TrustFileSchema, value)
    if (!result.success) throw new TrustFileInvalidError(describeSchemaIssues(where, result.error))
    return new TrustPolicy(result.data)
  }

  /** Read a trust file from disk. */
  static async read (file: string): Promise<TrustPolicy> {
    const json = await readJsonFile(file, 'trust file', message => new TrustFileInvalidError(message))
    return TrustPolicy.parse(json, `trust file ${file}`)
  }

  /** The app's publishers, threshold and sequence, or undefined when the app is not trusted. */
  forApp (app: string): AppPolicy | undefined {
    const t = this.apps.get(app)
    return t == null ? undefined : { publishers: [...t.keys], threshold: t.threshold, sequence: t.sequence }
  }

  /** The apps this policy trusts. */
  appNames (): string[] {
    return [...this.apps.keys()]
  }

  /** A copy of this policy with `app`'s entry replaced (a rotation adopted). */
  withApp (app: string, policy: AppPolicy): TrustPolicy {
    const next = new TrustPolicy({ apps: {} })
    for (const [name, t] of this.apps) next.apps.set(name, t)
    next.apps.set(app, { keys: new Set(policy.publishers), threshold: policy.threshold, sequence: policy.sequence })
    return next
  }

  /** True when `key` may sign releases of `app`. */
  isPublisher (app: string, key: string): boolean {
    return this.apps.get(app)?.keys.has(key) ?? false
  }

  /**
   * The policy as trust-file JSON. `sequence` is written only when above 0, so the JSON
   * (and the seed hash the trust store keeps of it) of a policy never rotated is what it
   * was before rotations existed.
   */
  toJSON (): TrustFile {
    return {
      apps: Object.fromEntries([...this.apps].map(([app, t]) => [app, { publishers: [...t.keys], threshold: t.threshold, ...(t.sequence > 0 ? { sequence: t.sequence } : {}) }]))
    }
  }
}
