/**
 * `package/` — an app's files as a content-addressed UnixFS tree: the manifest schema,
 * deterministic `pack`, verifying `unpack`, DAG walks and CAR archives.
 *
 * @example
 * ```ts
 * const store = new MemoryBlockStore()
 * const { cid, size, manifest } = await packDirectory('./kv-v2', store)
 * await unpackPackage(cid, store, './out') // every block checked against its CID
 * ```
 */
export * from './car.js'
export * from './dag.js'
export * from './manifest.js'
export * from './pack.js'
export * from './paths.js'
export * from './unpack.js'
