/**
 * Unpacking a backup ({@link writeBackup}) into an empty data directory: the manifest must
 * come first and the end record last, with the counts it names; every path is checked
 * before anything is written ({@link readArchive}), nothing the running process owns (the
 * lock, `control.json`) is ever written, files are created exclusively (0600, or 0700 when
 * the owner could run them) and directories 0700, each file synced. On a refusal the
 * caller removes what was written (the data-directory lock's `undo`).
 *
 * @example
 * ```ts
 * const { manifest, totals } = await restoreBackup({ archive: fs.createReadStream('peer.tar.gz'), root: '/var/lib/upgossip' })
 * ```
 */
import fs from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { UpgossipError } from '../errors.js'
import { ArchiveCorruptError, ArchiveEntryUnsupportedError, ArchiveTruncatedError, readArchive } from './archive.js'
import type { ArchiveEntry } from './archive.js'
import { BACKUP_END, BACKUP_FORMAT, BACKUP_MANIFEST } from './backup.js'
import type { BackupManifest, BackupTotals } from './backup.js'
import { DataDir } from './data-dir.js'

/** The archive is a tar archive, but not an upgossip backup (no manifest first). */
export class NotABackupError extends UpgossipError {
  static override name = 'NotABackupError'
}

/** The backup was written in a layout this upgossip does not read (a newer one). */
export class BackupFormatError extends UpgossipError {
  static override name = 'BackupFormatError'
}

/** Options of {@link restoreBackup}. */
export interface RestoreBackupOptions {
  /** The archive's bytes (a file's read stream). */
  archive: AsyncIterable<Uint8Array>
  /** The data directory: empty but for its lock, held by the caller. */
  root: string
  /** After every file. */
  onProgress?: (done: BackupTotals, manifest: BackupManifest) => void
}

const MAX_RECORD_BYTES = 64 * 1024

async function readRecord (entry: ArchiveEntry, body: AsyncIterable<Buffer>): Promise<Record<string, unknown> | undefined> {
  if (entry.type !== 'file' || entry.size > MAX_RECORD_BYTES) return undefined
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk)
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    return value != null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

function checkManifest (value: unknown): BackupManifest {
  const m = value as Partial<BackupManifest> | undefined
  if (m == null || typeof m !== 'object' || typeof m.format !== 'number') throw new NotABackupError(`the archive's ${BACKUP_MANIFEST} is damaged`)
  if (m.format > BACKUP_FORMAT) throw new BackupFormatError(`the backup is in format ${m.format}, written by upgossip ${String(m.upgossip)}; this upgossip reads format ${BACKUP_FORMAT}: restore it with that version or a newer one`)
  const text = (v: unknown): string | null => typeof v === 'string' ? v : null
  return { format: m.format, upgossip: text(m.upgossip) ?? '?', created: text(m.created) ?? '?', peerId: text(m.peerId), app: text(m.app), version: text(m.version), daemon: m.daemon === 'running' ? 'running' : 'stopped' }
}

async function writeFile (target: string, entry: ArchiveEntry, body: AsyncIterable<Buffer>): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 })
  let handle: FileHandle
  try {
    // exclusive: an entry twice, or a path through a file, is a damaged archive, never an overwrite
    handle = await fs.open(target, 'wx', (entry.mode & 0o100) !== 0 ? 0o700 : 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ArchiveCorruptError(`the archive holds ${entry.path} twice`)
    throw err
  }
  try {
    for await (const chunk of body) await handle.write(chunk)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Unpack a backup into `root`. Throws {@link NotABackupError}, {@link BackupFormatError},
 * or the archive's errors ({@link ArchiveTruncatedError}, `ArchiveCorruptError`,
 * `ArchivePathUnsafeError`, {@link ArchiveEntryUnsupportedError}); what was written before
 * is the caller's to remove.
 */
export async function restoreBackup (o: RestoreBackupOptions): Promise<{ manifest: BackupManifest, totals: BackupTotals }> {
  const root = path.resolve(o.root)
  const totals: BackupTotals = { files: 0, directories: 0, bytes: 0 }
  // filled in by the entries, in order
  const found: { manifest?: BackupManifest, end?: { files?: unknown, bytes?: unknown } } = {}
  await readArchive(o.archive, async (entry, body) => {
    const manifest = found.manifest
    if (manifest == null) {
      if (entry.path !== BACKUP_MANIFEST) throw new NotABackupError(`the archive is not an upgossip backup: its first entry is ${entry.path}, not ${BACKUP_MANIFEST} (make one with "upgossip backup")`)
      found.manifest = checkManifest(await readRecord(entry, body))
      return
    }
    if (found.end != null) throw new ArchiveCorruptError(`the archive goes on after its end record (${entry.path})`)
    if (entry.path === BACKUP_END) {
      found.end = await readRecord(entry, body) ?? {}
      return
    }
    if (DataDir.isTransient(entry.path)) throw new ArchiveEntryUnsupportedError(`the archive holds ${entry.path}, which belongs to a running daemon and is never restored`)
    const target = path.join(root, entry.path)
    // checkArchivePath already refused "..": this only guards the guard
    if (!target.startsWith(root + path.sep)) throw new ArchiveEntryUnsupportedError(`the archive's ${entry.path} would land outside ${root}`)
    if (entry.type === 'directory') {
      await fs.mkdir(target, { recursive: true, mode: 0o700 })
      await fs.chmod(target, 0o700)
      totals.directories++
      return
    }
    await writeFile(target, entry, body)
    totals.files++
    totals.bytes += entry.size
    o.onProgress?.({ ...totals }, manifest)
  })
  const { manifest, end } = found
  if (manifest == null) throw new NotABackupError('the archive is empty: it is not an upgossip backup')
  if (end == null) throw new ArchiveTruncatedError(`the archive ends before its end record (${BACKUP_END}): it was cut short`)
  if (end.files !== totals.files || end.bytes !== totals.bytes) {
    throw new ArchiveCorruptError(`the archive's end record names ${String(end.files)} files of ${String(end.bytes)} bytes, but it holds ${totals.files} of ${totals.bytes}`)
  }
  return { manifest, totals }
}
