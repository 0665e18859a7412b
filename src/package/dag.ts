/**
 * Walking a package DAG block by block: every block is fetched through the store
 * (which checks it against its CID) and its links followed, so a caller learns the
 * complete block list and the package's `size`.
 */
import * as dagPb from '@ipld/dag-pb'
import type { CID } from 'multiformats/cid'
import { ContentRefusalError } from '../errors.js'
import { CODEC_DAG_PB, CODEC_RAW, assertSupportedCid, toCid } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import { MAX_PACKAGE_BLOCKS } from './limits.js'

/** A package DAG has more blocks than allowed, or a block a package cannot hold. */
export class PackageDagError extends ContentRefusalError {
  static override name = 'PackageDagError'
}

/** The default block bound of {@link walkPackageBlocks} (see limits.ts). */
export { MAX_PACKAGE_BLOCKS }

/** The blocks of a package DAG. */
export interface PackageBlocks {
  /** Every distinct block, root first. */
  cids: CID[]
  /** Sum of the byte lengths of those blocks. */
  size: number
}

/** The CIDs a block links to (none for a raw leaf). */
export function blockLinks (cid: CID, bytes: Uint8Array): CID[] {
  if (cid.code === CODEC_RAW) return []
  if (cid.code !== CODEC_DAG_PB) throw new PackageDagError(`block ${cid.toString()} is neither raw nor dag-pb; a package holds only UnixFS blocks`)
  let node: dagPb.PBNode
  try {
    node = dagPb.decode(bytes)
  } catch (err) {
    throw new PackageDagError(`block ${cid.toString()} is not valid dag-pb: ${(err as Error).message}`)
  }
  return node.Links.map(link => {
    const linked = toCid(link.Hash)
    assertSupportedCid(linked)
    return linked
  })
}

/**
 * Walks the DAG under `root` breadth first, each distinct CID once, root first: `read`
 * gives a block's bytes, or undefined to not follow its links. More than `limit` distinct
 * CIDs is {@link PackageDagError}.
 */
async function walkDag (root: CID, limit: number, read: (cid: CID) => Promise<Uint8Array | undefined>): Promise<CID[]> {
  const seen = new Set<string>([root.toString()])
  const queue: CID[] = [root]
  for (let next = 0; next < queue.length; next++) {
    const cid = queue[next] as CID
    const bytes = await read(cid)
    if (bytes === undefined) continue
    for (const link of blockLinks(cid, bytes)) {
      const key = link.toString()
      if (seen.has(key)) continue
      if (seen.size >= limit) throw new PackageDagError(`package has more than ${limit} blocks`)
      seen.add(key)
      queue.push(link)
    }
  }
  return queue
}

/** Every block of the DAG under `root`, each read (and so verified) from `store`; more than `limit` blocks is {@link PackageDagError}. */
export async function walkPackageBlocks (root: CID, store: BlockStore, limit = MAX_PACKAGE_BLOCKS): Promise<PackageBlocks> {
  assertSupportedCid(root)
  let size = 0
  const cids = await walkDag(root, limit, async cid => {
    const bytes = await store.get(cid)
    size += bytes.byteLength
    return bytes
  })
  return { cids, size }
}

/**
 * The blocks of the DAG under `root` that `store` holds, plus the raw leaves its held
 * directory and file nodes link to (a leaf has no links, so it is never read): what a
 * collection of the block store keeps for a package, complete or still being fetched.
 */
export async function heldPackageBlocks (root: CID, store: Pick<BlockStore, 'has' | 'get'>, limit = MAX_PACKAGE_BLOCKS): Promise<CID[]> {
  return await walkDag(root, limit, async cid => {
    if (cid.code !== CODEC_DAG_PB || !(await store.has(cid))) return undefined
    return await store.get(cid).catch(() => undefined)
  })
}
