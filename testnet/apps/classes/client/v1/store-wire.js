/** How client 1.0.0 speaks to a store: protocol 1 (its manifest: `"calls": { "store": 1 }`). */

export const STORE_PROTOCOL = 1

/** Write `value` under `key` on `store`; resolves to the value the store holds now. */
export async function storePut (node, store, key, value) {
  const res = await node.call(store, { op: 'put', key, value }, { app: 'store' })
  return res.value
}

/** Read `key` on `store` (null when absent). */
export async function storeGet (node, store, key) {
  const res = await node.call(store, { op: 'get', key }, { app: 'store' })
  return res.value ?? null
}
