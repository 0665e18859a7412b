/** This upgossip's version, from its package.json (what `--version` prints and a backup's manifest names). */
import { readFileSync } from 'node:fs'

/** The version of the installed upgossip (`0.1.0`), or `0.0.0` when package.json cannot be read. */
export function upgossipVersion (): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }
    return pkg.version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}
