/**
 * The trust policy: per app, which publisher keys may sign releases and how many of
 * them must (`threshold`). Read from the `--trust FILE` JSON:
 * `{ "apps": { "kv": { "publishers": ["z6Mk…"], "threshold": 1 } } }`.
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
}

const AppTrustSchema = z.strictObject({
  publishers: z.array(z.string().refine(isPublicKeyString, { message: 'expected an Ed25519 public key in multibase base58btc ("z6Mk…")' })).min(1).max(64)
    .refine(keys => new Set(keys).size === keys.length, { message: 'a publisher key is listed twice' }),
  threshold: z.number().int().min(1)
}).refine(t => t.threshold <= t.publishers.length, { message: 'threshold is larger than the number of publishers, so nothing could ever be admitted' })

/** The trust file schema. */
export const TrustFileSchema = z.strictObject({
  apps: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { message: 'expected an app name' }), AppTrustSchema)
})

/** The parsed content of a trust file. */
export type TrustFile = z.infer<typeof TrustFileSchema>

/** Which keys this peer trusts, per app. */
export class TrustPolicy {
  private readonly apps: Map<string, { keys: Set<string>, threshold: number }>

  constructor (file: TrustFile) {
    this.apps = new Map(Object.entries(file.apps).map(([app, t]) => [app, { keys: new Set(t.publishers), threshold: t.threshold }]))
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

  /** The app's publishers and threshold, or undefined when the app is not trusted. */
  forApp (app: string): AppTrust | undefined {
    const t = this.apps.get(app)
    return t == null ? undefined : { publishers: [...t.keys], threshold: t.threshold }
  }

  /** True when `key` may sign releases of `app`. */
  isPublisher (app: string, key: string): boolean {
    return this.apps.get(app)?.keys.has(key) ?? false
  }

  /** The policy as trust-file JSON. */
  toJSON (): TrustFile {
    return { apps: Object.fromEntries([...this.apps].map(([app, t]) => [app, { publishers: [...t.keys], threshold: t.threshold }])) }
  }
}
