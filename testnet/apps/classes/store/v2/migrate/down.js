/**
 * State transform 2.0.0 → 1.0.0, run when 2.0.0 is rolled back or revoked after it
 * committed: entries.json → data.json (the revisions are dropped), so writes made under
 * 2.0.0 are kept.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function down ({ from, to, log }) {
  const entries = await readJson(path.join(from, 'entries.json'), {})
  const data = Object.fromEntries(Object.entries(entries).map(([key, entry]) => [key, entry.value]))
  await fs.writeFile(path.join(to, 'data.json'), JSON.stringify(data))
  log(`moved ${Object.keys(data).length} keys back to data.json`)
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
