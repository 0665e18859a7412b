/**
 * Whole directory trees on disk (state directories, snapshots, unpacked packages):
 * copy, make read-only, fsync and remove.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

/** Copy a directory tree (state directories are small enough to copy). */
export async function copyTree (from: string, to: string): Promise<void> {
  await fs.cp(from, to, { recursive: true, errorOnExist: true, force: false, preserveTimestamps: true })
}

/**
 * Make a tree read-only (files 0400, directories 0500) or writable again (0600, 0700): for
 * its owner only, as everything a daemon writes (its umask is 077; chmod does not apply it).
 */
export async function setWritable (dir: string, writable: boolean): Promise<void> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])
  for (const e of entries) {
    const file = path.join(e.parentPath, e.name)
    await fs.chmod(file, e.isDirectory() ? (writable ? 0o700 : 0o500) : (writable ? 0o600 : 0o400)).catch(() => {})
  }
  await fs.chmod(dir, writable ? 0o700 : 0o500).catch(() => {})
}

/** Fsync every file and directory of a tree, so that what it holds survives a power cut. */
export async function fsyncTree (dir: string): Promise<void> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])
  for (const e of entries) {
    const handle = await fs.open(path.join(e.parentPath, e.name), 'r').catch(() => undefined)
    if (handle == null) continue
    await handle.sync().catch(() => {})
    await handle.close()
  }
  const handle = await fs.open(dir, 'r').catch(() => undefined)
  await handle?.sync().catch(() => {})
  await handle?.close()
}

/** Remove a tree that may have been made read-only. */
export async function removeTree (dir: string): Promise<void> {
  await setWritable(dir, true)
  await fs.rm(dir, { recursive: true, force: true })
}

/** Whether `dir` exists and is a directory. */
export async function isDirectory (dir: string): Promise<boolean> {
  return await fs.stat(dir).then(s => s.isDirectory(), () => false)
}

/** Bytes of the files under `dir` (0 when it is missing); symbolic links are not followed. */
export async function treeBytes (dir: string): Promise<number> {
  let total = 0
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => [])
  for (const e of entries) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) total += await treeBytes(p)
    else total += await fs.lstat(p).then(s => s.size, () => 0)
  }
  return total
}
