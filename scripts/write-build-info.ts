/**
 * Writes `dist/build.json` after `tsc` (the last step of `npm run build`): the short
 * commit the build was made from, so that `upgossip --version`, `status` and the status
 * beats can say `0.1.0 (1a2b3c4)`. Outside a git checkout of this package (a tarball, a
 * copy inside another repository) the commit is `unknown`.
 *
 * @example
 * ```sh
 * npm run build && cat dist/build.json   # {"commit":"1a2b3c4"}
 * ```
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = fileURLToPath(new URL('../dist/build.json', import.meta.url))

function git (args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
}

/** `git rev-parse --short=7 HEAD` of this package's own checkout, or `unknown`. */
export function buildCommit (): string {
  try {
    // the checkout must be this package's: not a repository it was copied into
    if (fs.realpathSync(git(['rev-parse', '--show-toplevel'])) !== fs.realpathSync(ROOT)) return 'unknown'
    const commit = git(['rev-parse', '--short=7', 'HEAD'])
    return /^[0-9a-f]{7,40}$/.test(commit) ? commit : 'unknown'
  } catch {
    return 'unknown'
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  fs.mkdirSync(new URL('../dist/', import.meta.url), { recursive: true })
  fs.writeFileSync(OUT, JSON.stringify({ commit: buildCommit() }) + '\n')
}
