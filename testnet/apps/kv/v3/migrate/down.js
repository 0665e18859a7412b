/**
 * State transform 3.0.0 → 2.0.0 (rollback, revocation): state.json → store.json, keeping
 * writes made under 3.0.0, including the numbers `incr` produced.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function down ({ from, to, log }) {
  const { kv } = await readJson(path.join(from, 'state.json'), { kv: {} })
  const entries = Object.entries(kv)
  // written exactly as 2.0.0 writes it, so down(up(state)) gives back the same bytes
  await fs.writeFile(path.join(to, 'store.json'), JSON.stringify({ entries }))
  log(`moved ${entries.length} keys back to store.json`)
}

/** A JSON file, or `fallback` when it does not exist. */
async function readJson (file, fallback) {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'))
  } catch (err) {
    if (err.code === 'ENOENT') return fallback
    throw err
  }
}
