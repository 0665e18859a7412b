/**
 * Which releases the book keeps in memory (the window) and which settled ones it may
 * remove from disk altogether, so that neither grows with the number of releases a
 * long-lived peer has seen.
 */
import semver from 'semver'
import { SETTLED_STATES } from './release-files.js'
import type { ReleaseSummary } from './release-files.js'

/** How big the window is, and how many records the disk keeps. */
export interface ReleaseWindowLimits {
  /** The newest releases of each app kept in memory, whatever their state (default 8). */
  newestPerApp: number
  /** Releases read or changed lately, kept in memory besides (default 16). */
  recent: number
  /** Settled releases of each app kept on disk; older settled ones below the running version are removed (default 64). */
  recordsPerApp: number
}

/** The defaults of {@link ReleaseWindowLimits}. */
export const DEFAULT_WINDOW: ReleaseWindowLimits = { newestPerApp: 8, recent: 16, recordsPerApp: 64 }

/** Oldest version first, then by id (the order `list()` has always had). */
export function byVersion (a: { version: string, id: string }, b: { version: string, id: string }): number {
  const v = semver.compare(a.version, b.version)
  return v !== 0 ? v : a.id.localeCompare(b.id)
}

/** True while something may still happen to the release on this peer by itself. */
export function unsettled (s: ReleaseSummary): boolean {
  return !SETTLED_STATES.includes(s.state)
}

/** Each app's summaries, newest first. */
function newestFirstByApp (all: Iterable<ReleaseSummary>): Map<string, ReleaseSummary[]> {
  const byApp = new Map<string, ReleaseSummary[]>()
  for (const s of all) {
    const list = byApp.get(s.app) ?? []
    list.push(s)
    byApp.set(s.app, list)
  }
  for (const list of byApp.values()) list.sort((a, b) => byVersion(b, a))
  return byApp
}

/**
 * The ids whose signed releases stay in memory: every unsettled release (fetching,
 * staged, waiting, upgrading, active), the newest `newestPerApp` of each app, the
 * `pinned` ones (what this peer runs and would roll back to) and the `recent` ones.
 */
export function windowIds (all: Iterable<ReleaseSummary>, limits: ReleaseWindowLimits, pinned: Iterable<string>, recent: Iterable<string>): Set<string> {
  const keep = new Set<string>([...pinned, ...recent])
  for (const list of newestFirstByApp(all).values()) {
    list.forEach((s, i) => { if (i < limits.newestPerApp || unsettled(s)) keep.add(s.id) })
  }
  return keep
}

/**
 * The settled releases whose records may go from the disk: past the newest
 * `recordsPerApp` of their app, older than the version this peer runs (`floor`: a
 * release at or below it would not be admitted again anyway), and not pinned. An app
 * this peer does not run keeps its records. Revocations are kept apart and stay.
 */
export function prunable (all: Iterable<ReleaseSummary>, limits: ReleaseWindowLimits, pinned: Iterable<string>, floor: (app: string) => string | undefined): ReleaseSummary[] {
  const keep = new Set(pinned)
  const out: ReleaseSummary[] = []
  for (const [app, list] of newestFirstByApp(all)) {
    const running = floor(app)
    if (running == null) continue
    list.forEach((s, i) => {
      if (i >= limits.recordsPerApp && !unsettled(s) && !keep.has(s.id) && semver.lt(s.version, running)) out.push(s)
    })
  }
  return out
}
