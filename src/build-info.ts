/**
 * Which upgossip this is: the package version and the short git commit it was built from
 * (`dist/build.json`, written by `npm run build`; `unknown` when it is missing, as when
 * the sources run unbuilt in the unit tests). `upgossip --version`, `status`, the status
 * beats, `rollout status`, the dashboard and `/healthz` show it as `0.1.0 (1a2b3c4)`.
 *
 * @example
 * ```ts
 * buildString() // '0.1.0 (1a2b3c4)'
 * ```
 */
import { readFileSync } from 'node:fs'

/** The version and commit of this build. */
export interface BuildInfo {
  version: string
  commit: string
}

let cached: BuildInfo | undefined

function readJson (url: URL): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(readFileSync(url, 'utf8'))
    return value != null && typeof value === 'object' ? value as Record<string, unknown> : {}
  } catch {
    return {}
  }
}

/** This build's version (package.json) and commit (dist/build.json). */
export function buildInfo (): BuildInfo {
  if (cached != null) return cached
  // from dist/build-info.js or src/build-info.ts alike, package.json is one folder up
  const { version } = readJson(new URL('../package.json', import.meta.url))
  const { commit } = readJson(new URL('./build.json', import.meta.url))
  cached = {
    version: typeof version === 'string' ? version : '0.0.0',
    commit: typeof commit === 'string' && /^[0-9a-f]{7,40}$/.test(commit) ? commit : 'unknown'
  }
  return cached
}

/** `0.1.0 (1a2b3c4)`. */
export function buildString (info: BuildInfo = buildInfo()): string {
  return `${info.version} (${info.commit})`
}
