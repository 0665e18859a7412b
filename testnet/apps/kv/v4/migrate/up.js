/**
 * State transform 3.0.0 → 4.0.0: state.json `{ kv: { k: v } }` → one file per key,
 * `keys/<k>.json` = `{ key, value }`.
 *
 * DELIBERATE BUG, kept for the testnet's `broken` scenario: the file name is the raw key.
 * A key such as "users/42" names a sub-directory of keys/ that does not exist, writeFile
 * throws ENOENT, the transform fails, and the daemon rolls the peer back to 3.0.0 with
 * its state untouched. Peers that hold no key with a "/" upgrade fine. The fix is the one
 * server.js uses for new keys: `${encodeURIComponent(key)}.json`.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function up ({ from, to, log }) {
  const { kv } = await readJson(path.join(from, 'state.json'), { kv: {} })
  await fs.mkdir(path.join(to, 'keys'))
  for (const [key, value] of Object.entries(kv)) {
    await fs.writeFile(path.join(to, 'keys', `${key}.json`), JSON.stringify({ key, value })) // the bug: raw key
  }
  log(`moved ${Object.keys(kv).length} keys to keys/`)
}

/** A JSON file, or `fallback` when it does not exist (a peer that never stored anything). */
async function readJson (file, fallback) {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'))
  } catch (err) {
    if (err.code === 'ENOENT') return fallback
    throw err
  }
}
