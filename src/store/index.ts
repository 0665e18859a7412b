/**
 * `store/` — where a peer keeps things on disk: the content-addressed block store,
 * durable atomic files, and the data-directory lock. The lowest box: it imports from
 * no other folder of `src/`.
 *
 * @example
 * ```ts
 * const blocks = new FsBlockStore(path.join(dataDir, 'blocks'))
 * await blocks.put(cid, bytes) // refused with BlockHashMismatchError if bytes do not match
 * await writeJsonAtomic(path.join(dataDir, 'journal.json'), journal)
 * const lock = await lockDataDir(dataDir)
 * ```
 */
export * from './atomic-file.js'
export * from './block-store.js'
export * from './data-dir-lock.js'
export * from './disk-full.js'
export * from './data-dir.js'
export * from './tree.js'
