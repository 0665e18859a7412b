/**
 * State transform 4.0.0 → 3.0.0: every `keys/*.json` back into state.json `{ kv }`.
 * The key comes from inside each file, whatever the file is called.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function down ({ from, to, log }) {
  const dir = path.join(from, 'keys')
  const names = await fs.readdir(dir).catch(err => { if (err.code === 'ENOENT') return []; throw err })
  const entries = []
  // sorted, so the same files always give the same state.json
  for (const name of names.filter(n => n.endsWith('.json')).sort()) {
    const { key, value } = JSON.parse(await fs.readFile(path.join(dir, name), 'utf8'))
    entries.push([key, value])
  }
  await fs.writeFile(path.join(to, 'state.json'), JSON.stringify({ kv: Object.fromEntries(entries) }))
  log(`moved ${entries.length} keys back to state.json`)
}
