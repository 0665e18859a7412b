/**
 * `pack`: a directory's *contents* become a UnixFS DAG (CIDv1, sha2-256, raw leaves,
 * every importer option pinned). Same names and bytes → same CID, whatever the mtimes,
 * modes, listing order or Unicode normalisation of the names. Executable bits and empty
 * directories are not kept.
 */
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { ImporterOptions } from 'ipfs-unixfs-importer'
import type { CID } from 'multiformats/cid'
import { ContentRefusalError, UpgossipError } from '../errors.js'
import { toCid } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import { MANIFEST_FILE, ManifestMissingError, assertManifestFilesPresent, readManifestBytes } from './manifest.js'
import type { Manifest } from './manifest.js'
import { UnsafePathError, entryProblem } from './paths.js'

/** A directory entry that a package cannot hold (device, socket, symlink to a directory…). */
export class UnsupportedEntryError extends ContentRefusalError {
  static override name = 'UnsupportedEntryError'
}

/** The path given to pack is not a directory. */
export class NotADirectoryError extends UpgossipError {
  static override name = 'NotADirectoryError'
}

/** Two names in one directory are the same after Unicode NFC normalisation. */
export class DuplicatePathError extends UpgossipError {
  static override name = 'DuplicatePathError'
}

/**
 * The importer options, every one pinned: a default changing in a later importer
 * version must not change package CIDs. The importer is loaded here, on the first pack,
 * not with this module: a daemon never packs, and what it loads stays in its memory.
 */
export async function packageImporterOptions (): Promise<Readonly<ImporterOptions>> {
  const [{ fixedSize }, { balanced }] = await Promise.all([import('ipfs-unixfs-importer/chunker'), import('ipfs-unixfs-importer/layout')])
  return Object.freeze({
    cidVersion: 1,
    rawLeaves: true,
    leafType: 'raw',
    reduceSingleLeafToSelf: true,
    wrapWithDirectory: true,
    shardSplitThresholdBytes: 262_144,
    shardFanoutBits: 8,
    chunker: fixedSize({ chunkSize: 262_144 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
    fileImportConcurrency: 8,
    blockWriteConcurrency: 8
  })
}

/** One file of a package. */
export interface PackageFile {
  /** Path inside the package, `/`-separated, NFC. */
  path: string
  /** File length in bytes. */
  bytes: number
}

/** What {@link packDirectory} made. */
export interface PackResult {
  /** The package CID (the root directory). */
  cid: CID
  /** Total byte length of every distinct block of the DAG (the record's `size`). */
  size: number
  /** Number of distinct blocks. */
  blocks: number
  /** The files, sorted by path. */
  files: PackageFile[]
  /** The validated manifest. */
  manifest: Manifest
  /** `upgossip.json` exactly as parsed, for the release record. */
  manifestJson: unknown
}

interface SourceFile {
  path: string
  absolute: string
  bytes: number
}

async function collectFiles (root: string, realRoot: string, dir: string, prefix: string, out: SourceFile[]): Promise<void> {
  const entries = await fs.readdir(dir, { withFileTypes: true })
  const seen = new Map<string, string>()
  for (const entry of entries) {
    const name = entry.name.normalize('NFC')
    const problem = entryProblem(prefix === '' ? name : `${prefix}/${name}`, name)
    if (problem != null) throw new UnsafePathError(`${prefix === '' ? entry.name : `${prefix}/${entry.name}`} is refused: ${problem}`)
    const previous = seen.get(name)
    if (previous != null) {
      throw new DuplicatePathError(`"${previous}" and "${entry.name}" in ${dir} are the same name after Unicode NFC normalisation; rename one`)
    }
    seen.set(name, entry.name)
    const absolute = path.join(dir, entry.name)
    const rel = prefix === '' ? name : `${prefix}/${name}`
    if (entry.isDirectory()) {
      await collectFiles(root, realRoot, absolute, rel, out)
    } else if (entry.isFile()) {
      out.push({ path: rel, absolute, bytes: (await fs.stat(absolute)).size })
    } else if (entry.isSymbolicLink()) {
      let target: string
      try {
        target = await fs.realpath(absolute)
      } catch {
        throw new UnsupportedEntryError(`symlink ${rel} points to nothing`)
      }
      if (target !== realRoot && !target.startsWith(realRoot + path.sep)) {
        throw new UnsafePathError(`symlink ${rel} points outside the package directory (to ${target})`)
      }
      const stat = await fs.stat(target)
      if (!stat.isFile()) throw new UnsupportedEntryError(`symlink ${rel} points to a directory; packages keep only files`)
      // a symlink inside the tree is stored as a copy of its target's bytes
      out.push({ path: rel, absolute: target, bytes: stat.size })
    } else {
      throw new UnsupportedEntryError(`${rel} is not a regular file or directory`)
    }
  }
}

/** Compare by UTF-8 code units, so the order never depends on the locale. */
function byPath (a: { path: string }, b: { path: string }): number {
  return Buffer.compare(Buffer.from(a.path), Buffer.from(b.path))
}

/**
 * Pack the contents of `dir` into `store`. Requires a valid `upgossip.json` whose
 * referenced files are present; refuses paths that are unsafe and symlinks leaving the tree.
 */
export async function packDirectory (dir: string, store: BlockStore): Promise<PackResult> {
  const root = path.resolve(dir)
  const stat = await fs.stat(root).catch(() => undefined)
  if (stat?.isDirectory() !== true) throw new NotADirectoryError(`${dir} is not a directory; pack takes the directory that holds upgossip.json`)
  const realRoot = await fs.realpath(root)
  const files: SourceFile[] = []
  await collectFiles(root, realRoot, root, '', files)
  files.sort(byPath)

  const manifestSource = files.find(f => f.path === MANIFEST_FILE)
  if (manifestSource == null) throw new ManifestMissingError(`${dir} has no ${MANIFEST_FILE}; write one (see docs/manifest.md)`)
  const { json, manifest } = readManifestBytes(await fs.readFile(manifestSource.absolute))
  assertManifestFilesPresent(manifest, new Set(files.map(f => f.path)))

  const blockSizes = new Map<string, number>()
  const counting = {
    put: async (cid: unknown, bytes: Uint8Array): Promise<CID> => {
      const ours = toCid(cid)
      blockSizes.set(ours.toString(), bytes.byteLength)
      return await store.put(ours, bytes)
    }
  }
  const candidates = files.map(f => ({
    path: f.path,
    content: createReadStream(f.absolute, { highWaterMark: 262_144 })
  }))
  let rootCid: CID | undefined
  const [{ importer }, options] = await Promise.all([import('ipfs-unixfs-importer'), packageImporterOptions()])
  for await (const entry of importer(candidates, counting, options)) {
    if (entry.path === '') rootCid = toCid(entry.cid)
  }
  if (rootCid == null) throw new UpgossipError('the importer produced no root directory')
  let size = 0
  for (const n of blockSizes.values()) size += n
  return {
    cid: rootCid,
    size,
    blocks: blockSizes.size,
    files: files.map(f => ({ path: f.path, bytes: f.bytes })),
    manifest,
    manifestJson: json
  }
}
