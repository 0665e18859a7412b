/**
 * Release bundles: one CAR file whose root is the signed release block, carrying
 * every block of the package. `verifyBundle` is everything `upgossip verify` checks.
 */
import type { CID } from 'multiformats/cid'
import { MalformedInputError } from '../errors.js'
import { listPackageFiles, readCar, walkPackageBlocks, writeCar } from '../package/index.js'
import type { Block, PackageEntry } from '../package/index.js'
import { BlockNotFoundError, CODEC_DAG_CBOR, MemoryBlockStore } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import { MalformedReleaseError, decodeSignedRelease, releaseId, signedReleaseCid } from './record.js'
import type { SignedRelease } from './record.js'
import { verifyReleasePackage, verifySignedRelease } from './verify.js'
import type { VerifiedRelease, VerifyReleaseOptions } from './verify.js'

/** The CAR is readable but is not a release bundle (wrong root, missing root block). */
export class NotABundleError extends MalformedInputError {
  static override name = 'NotABundleError'
}

/** A bundle lacks blocks of its package. */
export class BundleIncompleteError extends MalformedInputError {
  static override name = 'BundleIncompleteError'
}

/** A bundle's contents after reading (blocks verified, signatures not yet). */
export interface ReleaseBundle {
  signed: SignedRelease
  id: CID
  /** Every block of the archive except the signed release's own. */
  blocks: MemoryBlockStore
}

/** Encode a release bundle: root = the signed release block, then the package blocks. */
export async function writeBundle (signed: SignedRelease, store: BlockStore, packageBlocks: CID[]): Promise<Uint8Array> {
  const root = await signedReleaseCid(signed)
  async function * blocks (): AsyncGenerator<Block> {
    yield { cid: root.cid, bytes: root.bytes }
    for (const cid of packageBlocks) yield { cid, bytes: await store.get(cid) }
  }
  return await writeCar([root.cid], blocks())
}

/** Read a bundle: exactly one root, which is a signed release; every block verified against its CID. */
export async function readBundle (bytes: Uint8Array): Promise<ReleaseBundle> {
  const { roots, blocks } = await readCar(bytes)
  if (roots.length !== 1) throw new NotABundleError(`a release bundle has exactly one root; this archive has ${roots.length}`)
  const root = roots[0] as CID
  if (root.code !== CODEC_DAG_CBOR) throw new NotABundleError(`the archive's root ${root.toString()} is not a signed release (not dag-cbor)`)
  const rootBlock = blocks.get(root.toString())
  if (rootBlock == null) throw new NotABundleError(`the archive does not contain its root block ${root.toString()}`)
  let signed: SignedRelease
  try {
    signed = decodeSignedRelease(rootBlock.bytes)
  } catch (err) {
    if (err instanceof MalformedReleaseError) throw new NotABundleError(`the archive's root is not a signed release: ${err.message}`, { cause: err })
    throw err
  }
  // readCar checked every block against its CID: they are not hashed again here
  const store = MemoryBlockStore.ofVerified([...blocks.values()].filter(block => !block.cid.equals(root)))
  return { signed, id: await releaseId(signed.record), blocks: store }
}

/** Map a missing block to {@link BundleIncompleteError}, the bundle's fault. */
async function withBundleBlocks<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof BlockNotFoundError) throw new BundleIncompleteError(`the bundle is missing package blocks: ${err.message}`, { cause: err })
    throw err
  }
}

/** The package blocks of a bundle (root first) with their total size; throws {@link BundleIncompleteError}. */
export async function bundlePackageBlocks (bundle: ReleaseBundle): Promise<{ cids: CID[], size: number }> {
  return await withBundleBlocks(async () => await walkPackageBlocks(bundle.signed.record.package, bundle.blocks))
}

/** The files of a bundle's package; throws {@link BundleIncompleteError}. */
export async function bundleFiles (bundle: ReleaseBundle): Promise<PackageEntry[]> {
  return await withBundleBlocks(async () => await listPackageFiles(bundle.signed.record.package, bundle.blocks))
}

/** Check a bundle's package against its record; returns its blocks. A missing block is {@link BundleIncompleteError}. */
export async function verifyBundlePackage (bundle: ReleaseBundle): Promise<CID[]> {
  return await withBundleBlocks(async () => (await verifyReleasePackage(bundle.signed.record, bundle.blocks)).blocks)
}

/** Everything `upgossip verify` checks: a readable bundle, signatures and policy, and the package against the record. */
export async function verifyBundle (bytes: Uint8Array, options: VerifyReleaseOptions): Promise<VerifiedRelease & { bundle: ReleaseBundle, packageBlocks: CID[] }> {
  const bundle = await readBundle(bytes)
  const verified = await verifySignedRelease(bundle.signed, options)
  const packageBlocks = await verifyBundlePackage(bundle)
  return { ...verified, bundle, packageBlocks }
}
