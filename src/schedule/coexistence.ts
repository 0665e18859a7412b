/**
 * Which versions of several apps (classes of node) can run at the same time during a
 * rollout, given the releases' `after` rules on other apps. Every app starts on its oldest
 * release given; a release with `{ "rule": "after", "app": B, "version": R, "fraction": 1 }`
 * starts only once every peer of B runs a version in R, and peers only move forward, so
 * from then on it never meets a B version older than the oldest given one in R. Rules
 * chain: a client waiting for stores that wait for a database never meets the old
 * database either. A fraction below 1 keeps nothing apart. Rollbacks, revocations and late
 * joiners installing an old version are outside this model.
 *
 * @example
 * ```ts
 * const c = new Coexistence([store1, store2, client1, client2])
 * c.meet({ app: 'client', version: '2.0.0' }, { app: 'store', version: '1.0.0' })
 * // { meet: false, reason: 'client 2.0.0 waits on after store >=2.0.0 fraction 1' }
 * ```
 */
import semver from 'semver'
import { UpgossipError } from '../errors.js'
import type { Manifest } from '../package/index.js'

/** An `after` rule names a version range that is not a semver range. */
export class AfterRangeInvalidError extends UpgossipError {
  static override name = 'AfterRangeInvalidError'
}

/** What of a manifest coexistence depends on. */
export type ScheduledRelease = Pick<Manifest, 'app' | 'version' | 'schedule'>

/** One version of one app. */
export interface AppVersion {
  app: string
  version: string
}

/** The oldest version of another app a release can meet, and why. */
interface Floor {
  index: number
  why: string
}

const key = (r: AppVersion): string => `${r.app}@${r.version}`

/** The versions of several apps that can run at once. */
export class Coexistence {
  /** Each app's releases, oldest first. */
  readonly apps = new Map<string, ScheduledRelease[]>()
  /** What the check cannot tell from the releases given (an `after` rule on an app not given, say). */
  readonly warnings: string[] = []
  private readonly floors = new Map<string, Map<string, Floor>>()
  private readonly never = new Map<string, string>()

  constructor (releases: ScheduledRelease[]) {
    for (const r of releases) {
      const list = this.apps.get(r.app) ?? []
      list.push(r)
      this.apps.set(r.app, list)
    }
    for (const list of this.apps.values()) list.sort((a, b) => semver.compare(a.version, b.version))
    for (const [app, list] of this.apps) {
      // the oldest release runs when the rollout starts: its rules were for an earlier one
      for (const r of list.slice(1)) this.applyRules(app, r)
    }
    this.chain()
  }

  /** The floors a release's own `after` rules on other apps set, or why it never runs. */
  private applyRules (app: string, r: ScheduledRelease): void {
    const floors = this.floorsOf(r)
    for (const rule of r.schedule) {
      if (rule.rule !== 'after' || rule.app == null || rule.app === app) continue
      const range = rule.version ?? '*'
      if (semver.validRange(range) == null) throw new AfterRangeInvalidError(`${app} ${r.version}: the after rule on ${rule.app} names "${range}", which is not a semver range such as ">=2.0.0"`)
      const other = this.apps.get(rule.app)
      const said = `after ${rule.app} ${range} fraction ${rule.fraction}`
      if (other == null) {
        this.warnings.push(`${app} ${r.version} waits on ${said}, and no ${rule.app} release is given: the check cannot tell when it switches`)
        continue
      }
      if (rule.fraction < 1) continue
      const index = other.findIndex(o => semver.satisfies(o.version, range, { includePrerelease: true }))
      if (index < 0) {
        this.never.set(key(r), `${app} ${r.version} waits on ${said}, and no ${rule.app} release given is in that range`)
        continue
      }
      if (index > (floors.get(rule.app)?.index ?? 0)) floors.set(rule.app, { index, why: `${app} ${r.version} waits on ${said}` })
    }
  }

  private floorsOf (r: AppVersion): Map<string, Floor> {
    let floors = this.floors.get(key(r))
    if (floors == null) {
      floors = new Map()
      this.floors.set(key(r), floors)
    }
    return floors
  }

  /** Carry floors along the rules: a release that waits for B ≥ b also waits for what every B version from b on waits for. */
  private chain (): void {
    for (let changed = true; changed;) {
      changed = false
      for (const [app, list] of this.apps) {
        for (const r of list) {
          if (this.never.has(key(r))) continue
          const floors = this.floorsOf(r)
          for (const [b, floor] of [...floors]) {
            const later = (this.apps.get(b) ?? []).slice(floor.index).filter(o => !this.never.has(key(o)))
            if (later.length === 0) {
              this.never.set(key(r), `${floor.why}, and no ${b} version from ${this.versionAt(b, floor.index)} on ever runs`)
              changed = true
              break
            }
            const circle = this.waitsInCircle(app, b, floor.index, later)
            if (circle != null) {
              this.never.set(key(r), `${floor.why}, and ${circle}: they wait for each other`)
              changed = true
              break
            }
            for (const c of this.apps.keys()) {
              if (c === app || c === b) continue
              // the B version that allows the oldest C is the one this release can count on
              let least: { index: number, why: string } | undefined
              for (const o of later) {
                const f = this.floorsOf(o).get(c) ?? { index: 0, why: '' }
                if (least == null || f.index < least.index) least = f
              }
              if (least != null && least.index > (floors.get(c)?.index ?? 0)) {
                floors.set(c, { index: least.index, why: `${floor.why}; ${least.why}` })
                changed = true
              }
            }
          }
        }
      }
    }
  }

  /**
   * Why the versions of `app` waiting for every `b` peer to reach index `from` can never
   * start, when each of `later` (the `b` versions from there) waits in turn for every `app`
   * peer to pass the oldest, and every `app` version that far waits for `b` that far too;
   * undefined when they can.
   */
  private waitsInCircle (app: string, b: string, from: number, later: ScheduledRelease[]): string | undefined {
    const mine = this.apps.get(app) ?? []
    const waits = later.map(o => this.floorsOf(o).get(app))
    const least = Math.min(...waits.map(f => f?.index ?? 0))
    if (least === 0) return undefined
    const stuck = mine.slice(least).filter(x => !this.never.has(key(x))).every(x => (this.floorsOf(x).get(b)?.index ?? 0) >= from)
    return stuck ? (waits.find(f => f?.index === least) as Floor).why : undefined
  }

  private versionAt (app: string, index: number): string {
    return this.apps.get(app)?.[index]?.version ?? '?'
  }

  /** Why `r` never runs with the releases given (its `after` rule is never met), or undefined when it can. */
  neverRuns (r: AppVersion): string | undefined {
    return this.never.get(key(r))
  }

  /** Whether a peer running `a` and one running `b` (of another app) can be in the network at once, and if not, why. */
  meet (a: AppVersion, b: AppVersion): { meet: true } | { meet: false, reason: string } {
    for (const r of [a, b]) {
      const never = this.never.get(key(r))
      if (never != null) return { meet: false, reason: never }
    }
    for (const [x, y] of [[a, b], [b, a]] as const) {
      const floor = this.floors.get(key(x))?.get(y.app)
      const index = (this.apps.get(y.app) ?? []).findIndex(o => o.version === y.version)
      if (floor != null && index < floor.index) return { meet: false, reason: floor.why }
    }
    return { meet: true }
  }
}
