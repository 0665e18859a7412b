/**
 * A backup of a data directory: a gzip-compressed tar archive ({@link ArchiveWriter})
 * whose first entry is a manifest (`upgossip-backup.json`: who, what, when) and whose last
 * is an end record with the counts (`upgossip-backup-end.json`), with the directory's files
 * between. What belongs to the process running on the directory is left out
 * ({@link DataDir.isTransient}: the lock, `control.json`, process groups, temporaries), and
 * the records are copied before the content they name ({@link DataDir.BACKUP_LAST}), so a
 * copy taken while a daemon fetches never names a package or block it lacks. Appended
 * logs are taken up to their last whole line.
 *
 * @example
 * ```ts
 * const { totals } = await writeBackup({ root: '/var/lib/upgossip', out: 'peer.tar.gz', manifest })
 * ```
 */
import fs from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { ArchiveWriter } from './archive.js'
import { DataDir } from './data-dir.js'

/** The manifest's name, the archive's first entry. */
export const BACKUP_MANIFEST = 'upgossip-backup.json'
/** The end record's name, the archive's last entry. */
export const BACKUP_END = 'upgossip-backup-end.json'
/** The layout of a backup this code writes and reads. */
export const BACKUP_FORMAT = 1

/** The archive's first entry. */
export interface BackupManifest {
  format: number
  /** The upgossip that wrote it (`0.1.0`). */
  upgossip: string
  /** When the copy began (ISO 8601). */
  created: string
  /** The peer's id, from its `peer.key`. */
  peerId: string | null
  app: string | null
  version: string | null
  /** Whether a daemon ran on the directory (and paused switching for the copy). */
  daemon: 'running' | 'stopped'
}

/** What a backup holds besides its manifest and end record. */
export interface BackupTotals {
  files: number
  directories: number
  /** Bytes of the files. */
  bytes: number
}

/** Options of {@link writeBackup}. */
export interface WriteBackupOptions {
  /** The data directory. */
  root: string
  /** The archive to write; it must not exist. */
  out: string
  manifest: Omit<BackupManifest, 'format'>
  /** After every file; throwing from it abandons the backup. */
  onProgress?: (done: BackupTotals) => void
  /** Once every file is in, before the archive is completed; throwing from it abandons the backup (the pause it was taken under ended too soon). */
  beforeFinish?: () => Promise<void>
  /** An entry left out that is neither transient nor a file or directory (a link, a socket). */
  onSkipped?: (rel: string, why: string) => void
}

interface Found {
  rel: string
  kind: 'file' | 'directory' | 'other'
  mode: number
  mtime: number
}

/** The top-level names in backup order: the records first (sorted), then {@link DataDir.BACKUP_LAST} in its order. */
function backupOrder (names: string[]): string[] {
  const last = DataDir.BACKUP_LAST
  return [...names.filter(n => !last.includes(n)).sort(), ...last.filter(n => names.includes(n))]
}

/** Every entry under `root` to be copied, listed as the walk reaches it (a directory is read when its turn comes). */
async function * walk (root: string, rel = ''): AsyncGenerator<Found> {
  const names = await fs.readdir(path.join(root, rel)).catch((err: NodeJS.ErrnoException) => {
    // gone since its parent was read (a package collected): nothing to copy
    if (err.code === 'ENOENT' && rel !== '') return []
    throw err
  })
  for (const name of rel === '' ? backupOrder(names) : names.sort()) {
    const child = rel === '' ? name : `${rel}/${name}`
    if (DataDir.isTransient(child)) continue
    const stat = await fs.lstat(path.join(root, child)).catch(() => undefined)
    if (stat == null) continue
    const found = { rel: child, mode: stat.mode & 0o777, mtime: stat.mtimeMs / 1000 }
    if (stat.isDirectory()) {
      yield { ...found, kind: 'directory' }
      yield * walk(root, child)
    } else {
      yield { ...found, kind: stat.isFile() ? 'file' : 'other' }
    }
  }
}

/** What `root` holds, roughly, for progress: the files and bytes a backup would copy now. */
export async function measureDataDir (root: string): Promise<BackupTotals> {
  const totals: BackupTotals = { files: 0, directories: 0, bytes: 0 }
  for await (const f of walk(root)) {
    if (f.kind === 'directory') totals.directories++
    if (f.kind !== 'file') continue
    totals.files++
    totals.bytes += await fs.stat(path.join(root, f.rel)).then(s => s.size, () => 0)
  }
  return totals
}

/** Where the last whole line of a file that is appended to ends, at or before `size`. */
async function wholeLines (handle: FileHandle, size: number): Promise<number> {
  const window = 64 * 1024
  for (let end = size; end > 0; end -= window) {
    const start = Math.max(0, end - window)
    const buf = Buffer.alloc(end - start)
    const { bytesRead } = await handle.read(buf, 0, buf.length, start)
    const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a)
    if (nl !== -1) return start + nl + 1
  }
  return 0
}

async function * chunksOf (handle: FileHandle, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < size;) {
    // a fresh buffer each time: the archive's compressor may still hold the previous one
    const buf = Buffer.allocUnsafe(Math.min(256 * 1024, size - at))
    const { bytesRead } = await handle.read(buf, 0, buf.length, at)
    if (bytesRead === 0) return
    at += bytesRead
    yield buf.subarray(0, bytesRead)
  }
}

/** Copy one file into the archive; its size when it began, or undefined when it is gone. */
async function copyFile (out: ArchiveWriter, root: string, f: Found): Promise<number | undefined> {
  let handle: FileHandle
  try {
    handle = await fs.open(path.join(root, f.rel), 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    // the handle keeps the file it opened: one replaced meanwhile (a rename) is copied as it was
    let size = (await handle.stat()).size
    if (DataDir.APPENDED.includes(f.rel)) size = await wholeLines(handle, size)
    await out.addFile(f.rel, f.mode, f.mtime, size, chunksOf(handle, size))
    return size
  } finally {
    await handle.close()
  }
}

/**
 * Write a backup of the data directory `root` to `out` (a gzip tar, mode 0600, renamed into
 * place only when complete: an error leaves nothing under that name). The caller makes
 * sure nothing switches meanwhile: a daemon paused, or the directory's lock held.
 */
export async function writeBackup (o: WriteBackupOptions): Promise<{ totals: BackupTotals, archiveBytes: number }> {
  const out = await ArchiveWriter.create(o.out)
  const totals: BackupTotals = { files: 0, directories: 0, bytes: 0 }
  try {
    const manifest: BackupManifest = { format: BACKUP_FORMAT, ...o.manifest }
    await out.addBytes(BACKUP_MANIFEST, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'))
    for await (const f of walk(o.root)) {
      if (f.kind === 'directory') {
        await out.addDirectory(f.rel, f.mode, f.mtime)
        totals.directories++
      } else if (f.kind === 'file') {
        const size = await copyFile(out, o.root, f)
        if (size == null) continue
        totals.files++
        totals.bytes += size
        o.onProgress?.({ ...totals })
      } else {
        o.onSkipped?.(f.rel, 'not a regular file or directory (a link, a socket, a fifo)')
      }
    }
    await o.beforeFinish?.()
    await out.addBytes(BACKUP_END, Buffer.from(JSON.stringify(totals) + '\n'))
    return { totals, archiveBytes: await out.finish() }
  } catch (err) {
    await out.abort()
    throw err
  }
}
