/**
 * Which release a peer switches to next. Every staged release of its app that its
 * `upgrades` range admits is considered, newest first; one that is paused network-wide,
 * held here, or halted (`halt-on-failures`) is skipped, so a failed or halted release
 * never blocks a fix published under a lower version. Every release passed over says
 * why (a rule and a human reason), so no staged release sits silent.
 *
 * @example
 * ```ts
 * const { candidate, passed } = chooseCandidate(releases, '2.0.0', r => contextFor(r))
 * for (const [id, why] of passed) console.log(`${id} waits on ${why.rule}: ${why.reason}`)
 * ```
 */
import semver from 'semver'
import type { ScheduleRule } from '../package/index.js'
import type { ScheduleContext } from './context.js'
import { evaluateRule } from './rules.js'

/** One staged (or waiting) release, as the choice sees it. */
export interface CandidateRelease {
  id: string
  version: string
  /** Its manifest's `upgrades` range (any older version when absent). */
  upgrades?: string
  /** The rules that apply to it (`applicableRules`): its `halt-on-failures` ones are checked here. */
  rules: ScheduleRule[]
  /** Why its rollout is paused network-wide, when it is. */
  paused?: string
  /** Held by this peer's operator. */
  held: boolean
}

/** Why a release is passed over. */
export interface PassedOver {
  /** `paused`, `hold`, `halt-on-failures`, `newer` (a newer release goes first), `upgrades` (its range does not admit the running version) or `older` (not newer than the running version). */
  rule: string
  reason: string
  /**
   * `waiting`: it would be next but for a pause, hold or halt; `staged`: it is not next
   * for this peer (a newer one goes first, or the versions do not line up).
   */
  state: 'waiting' | 'staged'
}

/** The choice: the next release, if any, and why every other one is passed over. */
export interface CandidateChoice {
  candidate?: CandidateRelease
  passed: Map<string, PassedOver>
}

/** Why `release` may not start at all now (paused, held or halted), before its schedule is asked. */
export function blockedNow (release: CandidateRelease, ctx: () => ScheduleContext): PassedOver | undefined {
  if (release.paused != null) return { rule: 'paused', reason: release.paused, state: 'waiting' }
  if (release.held) return { rule: 'hold', reason: `held by the operator; "upgossip resume ${release.id}" lets it go`, state: 'waiting' }
  for (const rule of release.rules) {
    if (rule.rule !== 'halt-on-failures') continue
    const result = evaluateRule(rule, ctx())
    if (!result.holds) return { rule: rule.rule, reason: result.reason ?? 'the rollout is halted', state: 'waiting' }
  }
  return undefined
}

/**
 * The next release for a peer running `running` (null: nothing yet, so any release may be
 * its first): the newest that is newer, admitted by its `upgrades` range, and neither
 * paused, held nor halted. `ctxFor` gives the schedule context the halt rules are checked
 * against.
 */
export function chooseCandidate (releases: CandidateRelease[], running: string | null, ctxFor: (release: CandidateRelease) => ScheduleContext): CandidateChoice {
  const passed = new Map<string, PassedOver>()
  let candidate: CandidateRelease | undefined
  const newestFirst = [...releases].sort((a, b) => semver.rcompare(a.version, b.version) !== 0 ? semver.rcompare(a.version, b.version) : a.id.localeCompare(b.id))
  for (const release of newestFirst) {
    if (running != null && !semver.gt(release.version, running)) {
      passed.set(release.id, { rule: 'older', reason: `not newer than ${running}, which this peer runs; it is not switched to`, state: 'staged' })
      continue
    }
    if (running != null && release.upgrades != null && !semver.satisfies(running, release.upgrades, { includePrerelease: true })) {
      passed.set(release.id, { rule: 'upgrades', reason: `it upgrades from ${release.upgrades}, and this peer runs ${running}: a release in between goes first`, state: 'staged' })
      continue
    }
    const blocked = blockedNow(release, () => ctxFor(release))
    if (blocked != null) {
      passed.set(release.id, blocked)
      continue
    }
    if (candidate != null) {
      passed.set(release.id, { rule: 'newer', reason: `${candidate.version} is newer and goes first`, state: 'staged' })
      continue
    }
    candidate = release
  }
  return { candidate, passed }
}
