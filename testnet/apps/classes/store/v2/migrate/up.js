/**
 * State transform 1.0.0 → 2.0.0: data.json `{ key: value }` → entries.json
 * `{ key: { value, rev: 0 } }`. It runs in a child process of the daemon; `from` is a
 * read-only copy of the old state, `to` an empty directory that replaces it only if this
 * function succeeds.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function up ({ from, to, log }) {
  const data = await readJson(path.join(from, 'data.json'), {})
  const entries = Object.fromEntries(Object.entries(data).map(([key, value]) => [key, { value, rev: 0 }]))
  await fs.writeFile(path.join(to, 'entries.json'), JSON.stringify(entries))
  log(`moved ${Object.keys(entries).length} keys to entries.json`)
}

/** A JSON file, or `fallback` when it does not exist (a store that never took a write). */
async function readJson (file, fallback) {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'))
  } catch (err) {
    if (err.code === 'ENOENT') return fallback
    throw err
  }
}
