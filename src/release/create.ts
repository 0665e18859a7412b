/**
 * Building a release from a directory: pack it, make the record, sign it with one or
 * more publisher keys. What `upgossip release` does before writing the bundle.
 */
import { CID } from 'multiformats/cid'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import { UpgossipError } from '../errors.js'
import { packDirectory, walkPackageBlocks } from '../package/index.js'
import type { PackResult } from '../package/index.js'
import type { BlockStore } from '../store/index.js'
import type { PublisherKey } from './keys.js'
import { releaseId } from './record.js'
import type { ReleaseRecord, SignedRelease } from './record.js'
import { signReleaseId } from './signing.js'

/** A `--previous` value is not a release id. */
export class InvalidReleaseIdError extends UpgossipError {
  static override name = 'InvalidReleaseIdError'
}

/** Default lifetime of a release, when `--expires` is not given: 90 days. */
export const DEFAULT_RELEASE_LIFETIME_MS = 90 * 86_400_000

/** Options for {@link createRelease}. */
export interface CreateReleaseOptions {
  dir: string
  store: BlockStore
  keys: PublisherKey[]
  previous?: string
  /** Lifetime from now, in ms. */
  expiresIn?: number
  clock?: Clock
}

/** Parse a release id (a dag-cbor CIDv1); throws {@link InvalidReleaseIdError}. */
export function parseReleaseId (text: string): CID {
  let cid: CID
  try {
    cid = CID.parse(text)
  } catch {
    throw new InvalidReleaseIdError(`"${text}" is not a release id (a CID such as bafyrei…)`)
  }
  if (cid.version !== 1 || cid.code !== 0x71) throw new InvalidReleaseIdError(`"${text}" is a CID but not a release id (expected CIDv1 dag-cbor)`)
  return cid
}

/** Pack `dir` into `store` and sign a release of it with every key. */
export async function createRelease (options: CreateReleaseOptions): Promise<{ signed: SignedRelease, id: CID, pack: PackResult, blocks: CID[] }> {
  if (options.keys.length === 0) throw new UpgossipError('a release needs at least one --key')
  if (options.expiresIn != null && !(options.expiresIn > 0)) throw new UpgossipError('a release must live longer than zero')
  const clock = options.clock ?? systemClock
  const pack = await packDirectory(options.dir, options.store)
  const now = clock.now()
  const record: ReleaseRecord = {
    app: pack.manifest.app,
    version: pack.manifest.version,
    previous: options.previous == null ? null : parseReleaseId(options.previous),
    package: pack.cid,
    size: pack.size,
    manifest: pack.manifestJson,
    issued: new Date(now).toISOString(),
    expires: new Date(now + (options.expiresIn ?? DEFAULT_RELEASE_LIFETIME_MS)).toISOString()
  }
  const id = await releaseId(record)
  const signatures = []
  const seen = new Set<string>()
  for (const key of options.keys) {
    if (seen.has(key.id)) continue
    seen.add(key.id)
    signatures.push(await signReleaseId(id, key))
  }
  const { cids } = await walkPackageBlocks(pack.cid, options.store)
  return { signed: { record, signatures }, id, pack, blocks: cids }
}
