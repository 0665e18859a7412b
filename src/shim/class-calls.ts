/**
 * The calls between classes of node during a rollout, checked from the releases' manifests
 * alone (`upgossip check --classes`): for every release that names another app in `calls`,
 * and every version of that app it can meet (schedule/ {@link Coexistence}), whether that
 * version serves the protocol called — natively, through its past SO chain, or through the
 * future SO of a newer release it has staged ({@link servedProtocols}) — as the shim routes
 * such a call: in exactly the caller's `calls` protocol, translated by the callee alone.
 *
 * @example
 * ```ts
 * const report = checkClassCalls([store1, store2, client1, client2])
 * for (const c of report.combinations) if (c.result === 'fails') console.log(c.reason, c.fixes)
 * ```
 */
import semver from 'semver'
import { UpgossipError } from '../errors.js'
import type { Manifest } from '../package/index.js'
import { Coexistence } from '../schedule/index.js'
import type { AppVersion } from '../schedule/index.js'
import { describeServed, kept, servedProtocols } from './served-protocols.js'
import type { ServedProtocols } from './served-protocols.js'

/** The same version of an app was given twice. */
export class DuplicateReleaseError extends UpgossipError {
  static override name = 'DuplicateReleaseError'
}

/** A release's `calls` names an app none of the releases given is for. */
export class CallsUnknownAppError extends UpgossipError {
  static override name = 'CallsUnknownAppError'
}

/** A release's `calls` names a protocol outside those of the callee's releases given. */
export class CallsProtocolOutOfRangeError extends UpgossipError {
  static override name = 'CallsProtocolOutOfRangeError'
}

/** What of a manifest the check reads. */
export type ClassRelease = Pick<Manifest, 'app' | 'version' | 'protocol' | 'calls' | 'schedule'> & { simulation?: { past?: string, future?: string } }

/** One caller version × one callee version. */
export interface ClassCall {
  caller: AppVersion
  callee: AppVersion
  /** The protocol the caller's `calls` names for the callee's app. */
  protocol: number
  /** `ok`: the callee serves it; `fails`: it does not; `never-meet`: the two never run at once. */
  result: 'ok' | 'fails' | 'never-meet'
  /** ok: how the callee serves the protocol ("native", "the past SO of store 2.0.0"). */
  via?: string
  /** fails, never-meet: why. */
  reason?: string
  /** fails: what would make it pass, each enough alone. */
  fixes?: string[]
}

/** One release as the check saw it. */
export interface ClassVersion {
  version: string
  protocol: number
  calls: Record<string, number>
  /** The protocols it serves to callers of other classes, lowest first. */
  serves: Array<{ protocol: number, via: string }>
  /** Why it never runs with the releases given (an `after` rule no release given meets). */
  neverRuns?: string
}

/** What the check found (`check --classes --json` prints it as it is). */
export interface ClassCallsReport {
  apps: Record<string, ClassVersion[]>
  combinations: ClassCall[]
  warnings: string[]
  /** How many combinations fail. */
  problems: number
}

const name = (r: AppVersion): string => `${r.app} ${r.version}`
const afterRule = (app: string, version: string): string => JSON.stringify({ rule: 'after', app, version: `>=${version}`, fraction: 1 }).replace(/,/g, ', ').replace(/:/g, ': ')

/** Refuse `calls` entries that the releases given cannot answer for; throws the named error listing every one. */
function refuseBadCalls (releases: ClassRelease[]): void {
  const unknown: string[] = []
  const outOfRange: string[] = []
  for (const r of releases) {
    for (const [app, protocol] of Object.entries(r.calls ?? {})) {
      const protocols = releases.filter(o => o.app === app).map(o => o.protocol)
      if (protocols.length === 0) unknown.push(`${name(r)} calls ${app} (protocol ${protocol}), and no ${app} release is given`)
      else if (protocol < Math.min(...protocols) || protocol > Math.max(...protocols)) outOfRange.push(`${name(r)} calls ${app} in protocol ${protocol}, and the ${app} releases given speak ${Math.min(...protocols)}–${Math.max(...protocols)} natively`)
    }
  }
  if (unknown.length > 0) throw new CallsUnknownAppError(`${unknown.join('; ')}: give the releases of every app called`)
  if (outOfRange.length > 0) throw new CallsProtocolOutOfRangeError(`${outOfRange.join('; ')}: no SO can translate a protocol no release speaks`)
}

/** Check every `calls` entry of `releases` (several versions of several apps) against every callee version it may meet. */
export function checkClassCalls (releases: ClassRelease[]): ClassCallsReport {
  const seen = new Set<string>()
  for (const r of releases) {
    if (seen.has(`${r.app}@${r.version}`)) throw new DuplicateReleaseError(`${name(r)} is given twice`)
    seen.add(`${r.app}@${r.version}`)
  }
  refuseBadCalls(releases)
  const coexistence = new Coexistence(releases)
  const byApp = new Map<string, ClassRelease[]>()
  for (const [app, list] of coexistence.apps) byApp.set(app, list as ClassRelease[])
  const served = new Map<ClassRelease, ServedProtocols>()
  for (const r of releases) served.set(r, servedProtocols(r, releases))
  const serves = (r: ClassRelease, protocol: number): boolean => served.get(r)?.protocols.some(p => p.protocol === protocol) === true

  const apps: Record<string, ClassVersion[]> = {}
  for (const [app, list] of byApp) {
    apps[app] = list.map(r => {
      const never = coexistence.neverRuns(r)
      return {
        version: r.version,
        protocol: r.protocol,
        calls: r.calls ?? {},
        serves: (served.get(r)?.protocols ?? []).map(p => ({ protocol: p.protocol, via: describeServed(app, p) })),
        ...(never == null ? {} : { neverRuns: never })
      }
    })
  }

  const combinations: ClassCall[] = []
  for (const [app, list] of byApp) {
    for (const [index, caller] of list.entries()) {
      for (const [to, protocol] of Object.entries(caller.calls ?? {})) {
        const callees = byApp.get(to) ?? []
        for (const [calleeIndex, callee] of callees.entries()) {
          const pair = { caller: { app, version: caller.version }, callee: { app: to, version: callee.version }, protocol }
          const met = coexistence.meet(caller, callee)
          if (!met.meet) {
            combinations.push({ ...pair, result: 'never-meet', reason: met.reason })
            continue
          }
          const s = served.get(callee) as ServedProtocols
          const via = s.protocols.find(p => p.protocol === protocol)
          if (via != null) {
            combinations.push({ ...pair, result: 'ok', via: describeServed(to, via) })
            continue
          }
          const lowest = s.protocols[0]?.protocol ?? callee.protocol
          const highest = s.protocols[s.protocols.length - 1]?.protocol ?? callee.protocol
          const span = lowest === highest ? `${lowest}` : `${lowest}–${highest}`
          const reason = `${name(caller)} calls ${to} in protocol ${protocol}; ${name(callee)} speaks ${span}, and ${protocol < lowest ? s.below : s.above}`
          combinations.push({ ...pair, result: 'fails', reason, fixes: fixesFor({ app, list, index, to, callees, calleeIndex, protocol, serves, coexistence }) })
        }
      }
    }
  }
  const problems = combinations.filter(c => c.result === 'fails').length
  return { apps, combinations, warnings: coexistence.warnings, problems }
}

/** What one failing combination needs: a rule on either side that keeps the two apart, or SOs that bridge them. */
function fixesFor (f: { app: string, list: ClassRelease[], index: number, to: string, callees: ClassRelease[], calleeIndex: number, protocol: number, serves: (r: ClassRelease, protocol: number) => boolean, coexistence: Coexistence }): string[] {
  const caller = f.list[f.index] as ClassRelease
  const callee = f.callees[f.calleeIndex] as ClassRelease
  const runs = (r: ClassRelease): boolean => f.coexistence.neverRuns(r) == null
  const fixes: string[] = []
  // the caller waits until every callee runs a version that serves it (the oldest caller already runs: it cannot wait)
  if (f.index > 0) {
    const from = firstFrom(f.callees, o => !runs(o) || f.serves(o, f.protocol))
    if (from != null && from > f.calleeIndex) {
      const own = caller.schedule.find(r => r.rule === 'after' && r.app === f.to)
      const instead = own?.rule !== 'after'
        ? ''
        : own.fraction < 1
          ? ` (its after rule on ${f.to} has fraction ${own.fraction}, which lets it start while some ${f.to} peers still run ${callee.version})`
          : ` (its after rule on ${f.to} names ${own.version ?? '*'}, which ${callee.version} is in)`
      fixes.push(`${name(caller)} waits on ${afterRule(f.to, (f.callees[from] as ClassRelease).version)}${instead}`)
    }
  }
  // or the callee waits until every caller calls it in a protocol it serves
  if (f.calleeIndex > 0) {
    const from = firstFrom(f.list, o => !runs(o) || o.calls?.[f.to] == null || f.serves(callee, o.calls[f.to] as number))
    if (from != null && from > f.index) fixes.push(`${name(callee)} waits on ${afterRule(f.app, (f.list[from] as ClassRelease).version)}`)
  }
  // or SOs bridge them: every release between the two protocols ships the SO the chain needs
  const kind = f.protocol < callee.protocol ? 'past' : 'future'
  const [low, high] = kind === 'past' ? [f.protocol + 1, callee.protocol] : [callee.protocol + 1, f.protocol]
  const held = kind === 'past' ? f.callees : f.callees.filter(o => semver.gt(o.version, callee.version))
  const missing: string[] = []
  for (let q = high; q >= low; q--) {
    const r = q === callee.protocol ? callee : kept(held, q)
    if (r == null) missing.push(`a new ${f.to} release of protocol ${q}`)
    else if (r.simulation?.[kind] == null) missing.push(name(r))
  }
  if (missing.length > 0) fixes.push(`${missing.reverse().join(' and ')} ship${missing.length === 1 ? 's' : ''} a ${kind} SO (then ${name(callee)} serves protocol ${f.protocol}${kind === 'future' ? ` once it has staged ${high > low ? 'them' : 'it'}` : ''})`)
  return fixes
}

/** The index from which every item of `list` satisfies `ok` (undefined when the last does not). */
function firstFrom<T> (list: T[], ok: (item: T) => boolean): number | undefined {
  let from: number | undefined
  for (let i = list.length - 1; i >= 0; i--) {
    if (!ok(list[i] as T)) break
    from = i
  }
  return from
}
