/**
 * How client 2.0.0 speaks to a store: protocol 2 (its manifest: `"calls": { "store": 2 }`),
 * where every entry carries a revision. Its release waits (`after`) until every store
 * runs >=2.0.0, so it meets only stores that speak 2 natively; a store rolled back to
 * 1.0.0 under it would answer through 2.0.0's future SO (rev null).
 */

export const STORE_PROTOCOL = 2

/** Write `value` under `key` on `store`; resolves to the value the store holds now. */
export async function storePut (node, store, key, value) {
  const res = await node.call(store, { cmd: 'set', key, value }, { app: 'store' })
  return res.entry?.value ?? null
}

/** Read `key` on `store` (null when absent). */
export async function storeGet (node, store, key) {
  const res = await node.call(store, { cmd: 'get', key }, { app: 'store' })
  return res.entry?.value ?? null
}
