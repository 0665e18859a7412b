/**
 * `store/` — where a peer keeps things on disk: the content-addressed block store,
 * durable atomic files, the data-directory lock and layout, and backups of a data
 * directory (gzip tar archives). The lowest box: it imports from no other folder of `src/`.
 *
 * @example
 * ```ts
 * const blocks = new FsBlockStore(path.join(dataDir, 'blocks'))
 * await blocks.put(cid, bytes) // refused with BlockHashMismatchError if bytes do not match
 * await writeJsonAtomic(path.join(dataDir, 'journal.json'), journal)
 * const lock = await lockDataDir(dataDir)
 * ```
 */
export * from './archive.js'
export * from './atomic-file.js'
export * from './backup.js'
export * from './block-store.js'
export * from './memory-block-store.js'
export * from './data-dir-lock.js'
export * from './disk-full.js'
export * from './data-dir.js'
export * from './restore.js'
export * from './rotating-file.js'
export * from './tree.js'
export * from './verified-block-cache.js'
