/**
 * The trust store of a peer: `trust.json` in its data directory, seeded by `--trust FILE`
 * on first start. A later start with a *different* file is refused unless
 * `--replace-trust`, so a stale file cannot undo a key rotation adopted since.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { UpgossipError } from '../errors.js'
import { writeFileAtomic, writeJsonAtomic } from '../store/index.js'
import { TrustFileInvalidError, TrustPolicy } from './trust.js'

/** `--trust` names a file other than the one this data directory was seeded with. */
export class TrustConflictError extends UpgossipError {
  static override name = 'TrustConflictError'
}

/** Files of the trust store inside a data directory. */
export const TRUST_STORE_FILE = 'trust.json'
const SEED_HASH_FILE = 'trust.seed'

/** Options for {@link loadTrustStore}. */
export interface LoadTrustOptions {
  /** `--trust FILE`. */
  seed?: string
  /** `--replace-trust`. */
  replace?: boolean
}

/** The trust policy of the peer in `dataDir`, seeding or replacing it as the options say. */
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
