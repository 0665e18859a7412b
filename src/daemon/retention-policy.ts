/**
 * The retention policy: which releases a peer keeps on disk (their package directory and
 * blocks) and which state directories, as a pure function of what it runs, what its
 * release book says and what it saw other peers run and fetch. Everything else is
 * collected, so a network that takes thousands of releases does not grow with them.
 *
 * @example
 * ```ts
 * const plan = retainedReleases({ app: 'kv', current, previous, releases, seen, fetched, now, switching: [] }, { keepReleases: 2, retainWindowMs: 86_400_000 })
 * plan.packages.get(id) // 'current' | 'previous' | 'to come' | … — or undefined: collected
 * ```
 */
import semver from 'semver'
import type { ReleaseState } from '../release/index.js'

/** Why a release is kept. */
export type RetainReason =
  /** this peer runs it */
  | 'current'
  /** this peer can roll back to it */
  | 'previous'
  /** fetching, staged, waiting or upgrading: still to come here */
  | 'to come'
  /** a switch to it runs now */
  | 'switching'
  /** one of the `keepReleases` newest superseded releases */
  | 'recent'
  /** a peer in view runs it (or ran it when last seen, within `retainWindow`) */
  | 'run in view'
  /** between the oldest version a peer in view runs and this peer's: the simulation objects (and step-by-step upgrades) between them */
  | 'so chain'
  /** a peer in view fetches it (or did when last seen, within `retainWindow`): it can fetch from this peer */
  | 'fetched in view'

/** One release as the policy sees it. */
export interface RetentionRelease {
  id: string
  app: string
  version: string
  state: ReleaseState
  revoked: boolean
}

/** What the policy decides from. */
export interface RetentionInput {
  /** This peer's app (null before a first install). */
  app: string | null
  current?: { id: string, version: string } | null
  previous?: { id: string, version: string } | null
  releases: RetentionRelease[]
  /** When a peer was last seen running `app@version` (ms), by `app@version`: each peer counts for the version it ran when last seen. */
  seen: ReadonlyMap<string, number>
  /** When a peer was last seen fetching a release (ms), by release id. */
  fetched: ReadonlyMap<string, number>
  now: number
  /** The release a switch in progress goes to (the one it goes from is current, or previous once committed). */
  switching: string[]
}

/** The policy's options (the daemon's `keepReleases`, `retainWindow`). */
export interface RetentionInit {
  /** Superseded releases of this peer's app kept besides the current and previous ones. */
  keepReleases: number
  /** How long a peer that left the view (or went silent) keeps the release it ran or fetched when last seen. */
  retainWindowMs: number
}

/** What is kept: packages (and their blocks) with the first reason found, and state directories. */
export interface RetentionPlan {
  packages: Map<string, RetainReason>
  states: Set<string>
}

/** Release states still to come on this peer. */
const TO_COME: ReadonlySet<ReleaseState> = new Set(['fetching', 'staged', 'waiting', 'upgrading'])
/** States of releases whose SOs a chain may load (see installed-releases.ts). */
const CHAIN_STATES: ReadonlySet<ReleaseState> = new Set(['active', 'superseded', 'rolled-back', 'staged', 'waiting', 'upgrading'])
/** States of releases this peer ran and left behind, newest kept as `recent`. */
const LEFT_BEHIND: ReadonlySet<ReleaseState> = new Set(['superseded', 'rolled-back'])

/** The key of a version in {@link RetentionInput.seen}. */
export function versionKey (app: string, version: string): string {
  return `${app}@${version}`
}

/** Decide what a peer keeps. A revoked release is kept only while this peer runs it. */
export function retainedReleases (input: RetentionInput, init: RetentionInit): RetentionPlan {
  const packages = new Map<string, RetainReason>()
  const keep = (id: string | undefined, reason: RetainReason): void => {
    if (id != null && !packages.has(id)) packages.set(id, reason)
  }
  const revoked = new Set(input.releases.filter(r => r.revoked).map(r => r.id))
  const current = input.current ?? undefined
  const previous = input.previous != null && !revoked.has(input.previous.id) ? input.previous : undefined
  keep(current?.id, 'current')
  keep(previous?.id, 'previous')
  for (const id of input.switching) keep(id, 'switching')
  const live = input.releases.filter(r => !r.revoked && r.state !== 'refused')
  for (const r of live) if (TO_COME.has(r.state)) keep(r.id, 'to come')

  const own = live.filter(r => r.app === input.app && semver.valid(r.version) != null)
  const behind = own.filter(r => LEFT_BEHIND.has(r.state) && r.id !== current?.id && r.id !== previous?.id)
  for (const r of behind.sort((a, b) => semver.rcompare(a.version, b.version)).slice(0, init.keepReleases)) keep(r.id, 'recent')

  const within = (at: number | undefined): boolean => at != null && input.now - at <= init.retainWindowMs
  for (const r of live) if (within(input.seen.get(versionKey(r.app, r.version)))) keep(r.id, 'run in view')
  for (const r of live) if (within(input.fetched.get(r.id))) keep(r.id, 'fetched in view')

  // this peer's app: every version between the oldest one a peer in view runs and this
  // peer's own carries the SOs (and the upgrade steps) that let them talk and catch up
  const versions = own.filter(r => within(input.seen.get(versionKey(r.app, r.version)))).map(r => r.version)
  if (current != null && semver.valid(current.version) != null) versions.push(current.version)
  if (versions.length > 1) {
    const sorted = versions.sort(semver.compare)
    const low = sorted[0] as string
    const high = sorted.at(-1) as string
    for (const r of own) if (CHAIN_STATES.has(r.state) && semver.gte(r.version, low) && semver.lte(r.version, high)) keep(r.id, 'so chain')
  }

  const states = new Set<string>()
  if (current != null) states.add(current.id)
  if (previous != null) states.add(previous.id)
  for (const id of input.switching) states.add(id)
  return { packages, states }
}
