/**
 * State transform 1.0.0 → 2.0.0: data.json `{ k: v }` → store.json `{ entries: [[k, v]] }`.
 * It runs in a child process of the daemon; `from` is a read-only copy of the old state,
 * `to` an empty directory that replaces it only if this function succeeds.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function up ({ from, to, log }) {
  const data = await readJson(path.join(from, 'data.json'), {})
  const entries = Object.entries(data)
  await fs.writeFile(path.join(to, 'store.json'), JSON.stringify({ entries }))
  log(`moved ${entries.length} keys to store.json`)
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
