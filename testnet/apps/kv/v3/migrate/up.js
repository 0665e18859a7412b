/**
 * State transform 2.0.0 → 3.0.0: store.json `{ entries: [[k, v]] }` → state.json `{ kv: { k: v } }`.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function up ({ from, to, log }) {
  const { entries } = await readJson(path.join(from, 'store.json'), { entries: [] })
  await fs.writeFile(path.join(to, 'state.json'), JSON.stringify({ kv: Object.fromEntries(entries) }))
  log(`moved ${entries.length} keys to state.json`)
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
