/**
 * `unpack`: a package DAG back into files. Every block is checked against its CID,
 * every name against {@link entryProblem}; symlinks and non-UnixFS nodes are refused.
 * Files are written into a temporary directory renamed into place only when the whole
 * package, manifest included, checked out.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { exporter } from 'ipfs-unixfs-exporter'
import type { UnixFSEntry } from 'ipfs-unixfs-exporter'
import type { CID } from 'multiformats/cid'
import { ContentRefusalError, UpgossipError } from '../errors.js'
import { fsyncDirectory, toCid } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import { MANIFEST_FILE, ManifestMissingError, assertManifestFilesPresent, manifestFiles, readManifestBytes } from './manifest.js'
import type { Manifest } from './manifest.js'
import type { PackageFile } from './pack.js'
import { UnsafePathError, entryProblem } from './paths.js'
import { UnsupportedEntryError } from './pack.js'
import { MAX_PACKAGE_FILES } from './limits.js'

/** The unpack destination already exists. */
export class DestinationExistsError extends UpgossipError {
  static override name = 'DestinationExistsError'
}

/** A package's root is not a UnixFS directory, or a node under it is not valid UnixFS. */
export class NotAPackageError extends ContentRefusalError {
  static override name = 'NotAPackageError'
}

/** The default entry bound of the package readers (see limits.ts). */
export { MAX_PACKAGE_FILES }
/** Deepest directory nesting in one package. */
const MAX_DEPTH = 64

/** A file found while walking a package. */
export interface PackageEntry extends PackageFile {
  cid: CID
}

type FileVisitor = (file: PackageEntry, entry: UnixFSEntry) => Promise<void>

function exporterStore (store: BlockStore): { get: (cid: unknown) => Promise<Uint8Array> } {
  return { get: async (cid: unknown) => await store.get(toCid(cid)) }
}

/**
 * What the UnixFS exporter yields, with its errors (a node that is not UnixFS, a file
 * whose sizes lie) turned into {@link NotAPackageError}: they are the package's fault.
 * Errors of the caller's own work between two items (a full disk) pass through as they are.
 */
async function * exported<T> (content: () => AsyncIterable<T>, where: string): AsyncGenerator<T> {
  let iterator: AsyncIterator<T>
  try {
    iterator = content()[Symbol.asyncIterator]()
  } catch (err) {
    throw notUnixFs(err, where)
  }
  while (true) {
    let next: IteratorResult<T>
    try {
      next = await iterator.next()
    } catch (err) {
      throw notUnixFs(err, where)
    }
    if (next.done === true) return
    yield next.value
  }
}

function notUnixFs (err: unknown, where: string): Error {
  if (err instanceof UpgossipError) return err
  return new NotAPackageError(`${where} is not valid UnixFS: ${(err as Error)?.message ?? String(err)}`)
}

async function walkDirectory (dir: UnixFSEntry, prefix: string, depth: number, count: { files: number, max: number }, onDir: (rel: string) => Promise<void>, onFile: FileVisitor): Promise<void> {
  if (dir.type !== 'directory') throw new NotAPackageError(`${prefix === '' ? 'package root' : prefix} is not a directory`)
  if (dir.unixfs.type !== 'directory' && dir.unixfs.type !== 'hamt-sharded-directory') {
    throw new UnsupportedEntryError(`${prefix === '' ? 'package root' : prefix} has UnixFS type ${dir.unixfs.type}`)
  }
  if (depth > MAX_DEPTH) throw new UnsafePathError(`package nests directories deeper than ${MAX_DEPTH}`)
  const names = new Set<string>()
  for await (const child of exported(() => dir.content(), prefix === '' ? 'package root' : `package entry "${prefix}"`)) {
    const rel = prefix === '' ? child.name : `${prefix}/${child.name}`
    const problem = entryProblem(rel, child.name)
    if (problem != null) throw new UnsafePathError(`package entry "${rel}" is refused: ${problem}`)
    if (names.has(child.name)) throw new UnsafePathError(`package entry "${rel}" appears twice`)
    names.add(child.name)
    if (++count.files > count.max) throw new UnsafePathError(`package has more than ${count.max} entries`)
    if (child.type === 'directory') {
      await onDir(rel)
      await walkDirectory(child, rel, depth + 1, count, onDir, onFile)
    } else if (child.type === 'raw' || (child.type === 'file' && (child.unixfs.type === 'file' || child.unixfs.type === 'raw'))) {
      await onFile({ path: rel, bytes: Number(child.size), cid: toCid(child.cid) }, child)
    } else {
      const kind = child.type === 'file' ? child.unixfs.type : child.type
      throw new UnsupportedEntryError(`package entry "${rel}" is a ${kind}; packages hold only files and directories`)
    }
  }
}

async function rootDirectory (root: CID, store: BlockStore): Promise<UnixFSEntry> {
  try {
    return await exporter(root, exporterStore(store))
  } catch (err) {
    if (err instanceof UpgossipError) throw err
    throw new NotAPackageError(`${root.toString()} is not a UnixFS package: ${(err as Error).message}`)
  }
}

async function readEntry (entry: UnixFSEntry, where: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of exported(() => entry.content() as AsyncIterable<Uint8Array>, `package entry "${where}"`)) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** Bytes gathered before one `writev` (a file's blocks are written as they are, never joined). */
const WRITE_BATCH_BYTES = 4 * 1024 * 1024
/** Most pieces in one `writev` (the kernel takes at most 1,024). */
const WRITE_BATCH_PIECES = 512

/** Write an entry's content to `handle` in batches of its own chunks; the chunks too when `keep` (the manifest). */
async function writeEntry (entry: UnixFSEntry, where: string, handle: fs.FileHandle, keep: boolean): Promise<Uint8Array[]> {
  const kept: Uint8Array[] = []
  let batch: Uint8Array[] = []
  let batched = 0
  for await (const chunk of exported(() => entry.content() as AsyncIterable<Uint8Array>, `package entry "${where}"`)) {
    if (keep) kept.push(chunk)
    batch.push(chunk)
    batched += chunk.byteLength
    if (batched >= WRITE_BATCH_BYTES || batch.length >= WRITE_BATCH_PIECES) {
      await writePieces(handle, batch, batched)
      batch = []
      batched = 0
    }
  }
  await writePieces(handle, batch, batched)
  return kept
}

/** Write every byte of `pieces` (`total` of them): one `writev`, and what a short write left, joined. */
async function writePieces (handle: fs.FileHandle, pieces: Uint8Array[], total: number): Promise<void> {
  if (total === 0) return
  const { bytesWritten } = await handle.writev(pieces)
  if (bytesWritten < total) await handle.write(Buffer.concat(pieces).subarray(bytesWritten))
}

/** The files of a package (paths, sizes, CIDs), reading only directory blocks; more than `maxEntries` entries is {@link UnsafePathError}. */
export async function listPackageFiles (root: CID, store: BlockStore, maxEntries = MAX_PACKAGE_FILES): Promise<PackageEntry[]> {
  const files: PackageEntry[] = []
  await walkDirectory(await rootDirectory(root, store), '', 0, { files: 0, max: maxEntries }, async () => {}, async file => { files.push(file) })
  return files
}

/** Read and validate a package's manifest, checking the files it names are present (at most `maxEntries` entries). */
export async function readPackageManifest (root: CID, store: BlockStore, maxEntries = MAX_PACKAGE_FILES): Promise<{ json: unknown, manifest: Manifest, files: PackageEntry[] }> {
  const files: PackageEntry[] = []
  let manifestBytes: Uint8Array | undefined
  await walkDirectory(await rootDirectory(root, store), '', 0, { files: 0, max: maxEntries }, async () => {}, async (file, entry) => {
    files.push(file)
    if (file.path === MANIFEST_FILE) manifestBytes = await readEntry(entry, file.path)
  })
  if (manifestBytes == null) throw new ManifestMissingError(`package ${root.toString()} has no ${MANIFEST_FILE} at its root`)
  const { json, manifest } = readManifestBytes(manifestBytes)
  assertManifestFilesPresent(manifest, new Set(files.map(f => f.path)))
  return { json, manifest, files }
}

/** What {@link unpackPackage} wrote. */
export interface UnpackResult {
  dir: string
  files: PackageEntry[]
  manifest: Manifest
}

/**
 * Write the package `root` into `dest` (which must not exist). Every block is verified;
 * nothing appears at `dest` unless the whole package was valid. More than `maxEntries`
 * entries is {@link UnsafePathError}.
 */
export async function unpackPackage (root: CID, store: BlockStore, dest: string, maxEntries = MAX_PACKAGE_FILES): Promise<UnpackResult> {
  const target = path.resolve(dest)
  if (await fs.stat(target).then(() => true, () => false)) throw new DestinationExistsError(`${dest} already exists`)
  await fs.mkdir(path.dirname(target), { recursive: true })
  const temp = `${target}.unpacking-${randomBytes(4).toString('hex')}`
  await fs.mkdir(temp)
  try {
    const files: PackageEntry[] = []
    let manifestBytes: Uint8Array | undefined
    await walkDirectory(await rootDirectory(root, store), '', 0, { files: 0, max: maxEntries },
      async rel => { await fs.mkdir(path.join(temp, ...rel.split('/'))) },
      async (file, entry) => {
        const handle = await fs.open(path.join(temp, ...file.path.split('/')), 'wx', 0o644)
        try {
          const kept = await writeEntry(entry, file.path, handle, file.path === MANIFEST_FILE)
          if (file.path === MANIFEST_FILE) manifestBytes = Buffer.concat(kept)
          await handle.sync()
        } finally {
          await handle.close()
        }
        files.push(file)
      })
    if (manifestBytes == null) throw new ManifestMissingError(`package ${root.toString()} has no ${MANIFEST_FILE} at its root`)
    const { manifest } = readManifestBytes(manifestBytes)
    assertManifestFilesPresent(manifest, new Set(files.map(f => f.path)))
    // a package keeps no modes: the files the manifest runs as commands are made executable
    // here, for the owner only (chmod does not apply the daemon's umask 077)
    for (const file of manifestFiles(manifest)) {
      if (file.program === true) await fs.chmod(path.join(temp, ...file.path.split('/')), 0o700)
    }
    await fs.rename(temp, target)
    await fsyncDirectory(path.dirname(target))
    return { dir: target, files, manifest }
  } catch (err) {
    await fs.rm(temp, { recursive: true, force: true })
    throw err
  }
}
