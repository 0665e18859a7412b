/**
 * State transform 1.0.0 → 2.0.0 (`up`). The daemon runs it in a child process, with a
 * time limit, while the app is stopped: `from` is a read-only copy of 1.0.0's state
 * directory, `to` an empty directory that becomes 2.0.0's state only if this returns.
 * If it throws, the peer stays on 1.0.0 with its state untouched.
 *
 * As written it copies data.json unchanged. Change it when 2.0.0 keeps its state in
 * another shape (testnet/apps/kv/v2/migrate/up.js turns data.json into store.json).
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function up ({ from, to, log }) {
  let data = {}
  try {
    data = JSON.parse(await fs.readFile(path.join(from, 'data.json'), 'utf8'))
  } catch (err) {
    if (err.code !== 'ENOENT') throw err // no file: this peer never stored anything
  }
  // TODO: turn `data` into 2.0.0's format here
  await fs.writeFile(path.join(to, 'data.json'), JSON.stringify(data))
  log(`moved ${Object.keys(data).length} keys`)
}
