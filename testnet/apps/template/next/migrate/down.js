/**
 * State transform 2.0.0 → 1.0.0 (`down`), for a rollback or a revocation after 2.0.0
 * committed: writes made under 2.0.0 are kept only if this carries them back. Write the
 * file exactly as 1.0.0 writes it, so `upgossip check` finds down(up(state)) == state.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export default async function down ({ from, to, log }) {
  let data = {}
  try {
    data = JSON.parse(await fs.readFile(path.join(from, 'data.json'), 'utf8'))
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
  }
  // TODO: turn 2.0.0's state back into 1.0.0's `{ key: value }` here
  await fs.writeFile(path.join(to, 'data.json'), JSON.stringify(data))
  log(`moved ${Object.keys(data).length} keys back`)
}
