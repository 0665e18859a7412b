/**
 * upgossip — automatic software upgrades for long-lived peer-to-peer networks.
 *
 * The library behind the `upgossip` CLI: packages, signed releases, trust policies.
 * Apps import `upgossip/app` instead (the SDK).
 *
 * @example
 * ```ts
 * import { MemoryBlockStore, createRelease, readKeyFile, writeBundle } from 'upgossip'
 * const store = new MemoryBlockStore()
 * const key = await readKeyFile('publisher.key')
 * const { signed, blocks } = await createRelease({ dir: './kv-v2', store, keys: [key] })
 * const car = await writeBundle(signed, store, blocks)
 * ```
 */
export * from './clock.js'
export * from './duration.js'
export * from './errors.js'
export * from './package/index.js'
export * from './release/index.js'
export * from './store/index.js'
