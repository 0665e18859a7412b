/**
 * The schedule rules of docs/manifest.md, each a function of the rule and a
 * {@link ScheduleContext}: does it hold now, and if not, why. `decide` combines the
 * release's rules with the operator's local policy.
 */
import semver from 'semver'
import { parseDuration, formatDuration } from '../duration.js'
import type { ScheduleRule } from '../package/index.js'
import type { ScheduleContext, SchedulePeer } from './context.js'
import { knownPeers } from './context.js'
import { countFromFraction, rank, rankedIds } from './rank.js'
import { shortId } from '../short-id.js'

/** One rule's answer. */
export interface RuleResult {
  holds: boolean
  /** Why it does not hold (or when it will), for `status` and the dashboard. */
  reason?: string
}

/** The decision: start now, or which rule it waits on. */
export interface Decision {
  start: boolean
  waitingOn?: string
  reason?: string
}

/** Runs a `module` rule (in a worker thread, with a time limit). */
export type ModuleRunner = (rule: Extract<ScheduleRule, { rule: 'module' }>, ctx: ScheduleContext) => Promise<RuleResult>

/** True when `version` is `release` or newer (a peer already past a release has run it). */
function atLeast (version: string | null, release: string): boolean {
  return version != null && semver.valid(version) != null && semver.gte(version, release)
}

/**
 * `after` with an `app`: at least `ceil(fraction × n)` of the `n` known peers of that app
 * run a version in `range`. None known holds nothing: a client class must not take "no
 * servers in view" for "every server has switched".
 */
function afterApp (app: string, range: string, fraction: number, ctx: ScheduleContext): RuleResult {
  const of = (ctx.network ?? []).filter(p => p.app === app && p.peerId !== ctx.self.peerId)
  if (of.length === 0) return { holds: false, reason: `no peer of ${app} in view yet` }
  // a network holds a few versions among many peers: each is tested against the range once
  const parsed = new semver.Range(range, { includePrerelease: true })
  const inRange = new Map<string, boolean>()
  const test = (version: string): boolean => {
    let yes = inRange.get(version)
    if (yes == null) inRange.set(version, yes = semver.valid(version) != null && parsed.test(version))
    return yes
  }
  const done = of.filter(p => p.version != null && test(p.version)).length
  const needed = Math.ceil(fraction * of.length)
  return done >= needed ? { holds: true } : { holds: false, reason: `${done} of ${of.length} peers of ${app} run a version in ${range}; waiting for ${needed}` }
}

function matches (labels: Record<string, string>, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([k, v]) => labels[k] === v)
}

function minutesInZone (now: number, tz: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(now)
  const hour = Number(parts.find(p => p.type === 'hour')?.value)
  const minute = Number(parts.find(p => p.type === 'minute')?.value)
  return hour * 60 + minute
}

function hhmm (text: string): number {
  const [h, m] = text.split(':').map(Number)
  return (h ?? 0) * 60 + (m ?? 0)
}

/** Peers (others) busy with this release: switching now, or holding a claim for it. */
export function busyWith (ctx: ScheduleContext): SchedulePeer[] {
  return ctx.peers.filter(p => p.peerId !== ctx.self.peerId && (p.upgrading === ctx.release.id || p.claim === ctx.release.id))
}

/** The canaries of a canary rule, by rank or by labels. */
export function canaries (rule: Extract<ScheduleRule, { rule: 'canary' }>, ctx: ScheduleContext): SchedulePeer[] {
  const known = knownPeers(ctx)
  if (rule.labels != null) return known.filter(p => matches(p.labels, rule.labels ?? {}))
  const count = countFromFraction(rule.fraction ?? 0, known.length)
  const chosen = new Set(rankedIds(known.map(p => p.peerId), ctx.release.id).slice(0, count))
  return known.filter(p => chosen.has(p.peerId))
}

/** The most peers a rule lets switch at once, if it limits that. */
export function slotLimit (rule: ScheduleRule, ctx: ScheduleContext): number | undefined {
  if (rule.rule === 'rolling') return rule.max ?? countFromFraction(rule.maxFraction ?? 0, knownPeers(ctx).length)
  if (rule.rule === 'canary') {
    const chosen = canaries(rule, ctx)
    if (chosen.some(p => p.peerId === ctx.self.peerId)) return chosen.length
  }
  return undefined
}

/** Evaluate one rule other than `module`. */
export function evaluateRule (rule: Exclude<ScheduleRule, { rule: 'module' }>, ctx: ScheduleContext): RuleResult {
  switch (rule.rule) {
    case 'immediate':
      return { holds: true }
    case 'at': {
      const at = Date.parse(rule.time)
      return ctx.now >= at ? { holds: true } : { holds: false, reason: `not before ${rule.time}` }
    }
    case 'window': {
      const [from, to] = rule.daily.split('-').map(hhmm) as [number, number]
      const now = minutesInZone(ctx.now, rule.tz)
      const inside = from <= to ? now >= from && now < to : now >= from || now < to
      return inside ? { holds: true } : { holds: false, reason: `outside the daily window ${rule.daily} ${rule.tz}` }
    }
    case 'jitter': {
      const delay = rank(ctx.self.peerId, ctx.release.id) * parseDuration(rule.max)
      const left = ctx.stagedAt + delay - ctx.now
      return left <= 0 ? { holds: true } : { holds: false, reason: `jitter: starts in ${formatDuration(left)}` }
    }
    case 'rolling': {
      const limit = slotLimit(rule, ctx) ?? 1
      const busy = busyWith(ctx)
      return busy.length < limit ? { holds: true } : { holds: false, reason: `${busy.length} peer(s) switching now, at most ${limit} at once: ${busy.map(p => shortId(p.peerId)).join(', ')}` }
    }
    case 'canary': {
      const chosen = canaries(rule, ctx)
      if (chosen.some(p => p.peerId === ctx.self.peerId)) return { holds: true }
      if (chosen.length === 0) return { holds: false, reason: 'no canary peer in view' }
      const soak = parseDuration(rule.soak)
      const pending = chosen.filter(p => !(atLeast(p.version, ctx.release.version) && p.state === 'running' && p.since != null && ctx.now - p.since >= soak))
      return pending.length === 0 ? { holds: true } : { holds: false, reason: `${pending.length} of ${chosen.length} canaries have not yet run ${ctx.release.version} healthily for ${rule.soak}` }
    }
    case 'after': {
      if (rule.app != null) return afterApp(rule.app, rule.version ?? '*', rule.fraction, ctx)
      // the other peers: this one cannot already run what it is deciding to start
      const others = ctx.peers.filter(p => p.peerId !== ctx.self.peerId)
      const done = others.filter(p => atLeast(p.version, ctx.release.version)).length
      const needed = Math.ceil(rule.fraction * others.length)
      return done >= needed ? { holds: true } : { holds: false, reason: `${done} of ${others.length} other peers run ${ctx.release.version}; waiting for ${needed}` }
    }
    case 'idle': {
      const idle = ctx.idleFor(rule.maxInFlight)
      const needed = parseDuration(rule.for)
      return idle >= needed ? { holds: true } : { holds: false, reason: `the app is not idle (at most ${rule.maxInFlight} requests in flight) for ${rule.for}` }
    }
    case 'approve':
      return ctx.approved ? { holds: true } : { holds: false, reason: `waiting for "upgossip approve ${ctx.release.id}"` }
    case 'labels':
      return matches(ctx.self.labels, rule.match) ? { holds: true } : { holds: false, reason: `this peer's labels do not match ${Object.entries(rule.match).map(([k, v]) => `${k}=${v}`).join(' ')}` }
    case 'halt-on-failures': {
      const failed = knownPeers(ctx).filter(p => p.failed?.includes(ctx.release.id) === true).length
      return failed < rule.max ? { holds: true } : { holds: false, reason: `${failed} peer(s) reported this release failed; the rollout is halted` }
    }
  }
}

/**
 * The rules that apply to a release: halt-on-failures first (the release's own, or the
 * default), so a halted rollout says so whatever else a peer waits on; then the
 * operator's policy, then the rest of the release's schedule.
 */
export function applicableRules (releaseRules: ScheduleRule[], policyRules: ScheduleRule[]): ScheduleRule[] {
  const halts = [...releaseRules, ...policyRules].filter(r => r.rule === 'halt-on-failures')
  const rest = [...policyRules, ...releaseRules].filter(r => r.rule !== 'halt-on-failures')
  return [...(releaseRules.some(r => r.rule === 'halt-on-failures') ? [] : [{ rule: 'halt-on-failures' as const, max: 1 }]), ...halts, ...rest]
}

/** Whether this peer may start the upgrade now; the first rule that does not hold is named. */
export async function decide (rules: ScheduleRule[], ctx: ScheduleContext, runModule?: ModuleRunner): Promise<Decision> {
  for (const rule of rules) {
    let result: RuleResult
    if (rule.rule === 'module') {
      result = runModule == null ? { holds: false, reason: 'module rules need a runner' } : await runModule(rule, ctx)
    } else {
      result = evaluateRule(rule, ctx)
    }
    if (!result.holds) return { start: false, waitingOn: rule.rule, reason: result.reason }
  }
  return { start: true }
}

/**
 * The claim step. A peer that decided to start has announced a claim and waited the
 * settle time; it may go ahead only if, among everyone now busy with the release,
 * it is within the slots every limiting rule allows. Higher ranks back off.
 */
export function claimWins (rules: ScheduleRule[], ctx: ScheduleContext): Decision {
  const limits = rules.map(r => slotLimit(r, ctx)).filter((n): n is number => n != null)
  if (limits.length === 0) return { start: true }
  const limit = Math.min(...limits)
  const busy = busyWith(ctx)
  const switching = busy.filter(p => p.upgrading === ctx.release.id).length
  const claimants = [ctx.self.peerId, ...busy.filter(p => p.upgrading !== ctx.release.id).map(p => p.peerId)]
  // this peer's place in the rank order of the claimants (as byRank sorts them): the
  // claimants before it, counted rather than sorted (a claim storm has thousands)
  const mine = rank(ctx.self.peerId, ctx.release.id)
  const place = claimants.filter(id => {
    if (id === ctx.self.peerId) return false
    const r = rank(id, ctx.release.id)
    return r < mine || (r === mine && id.localeCompare(ctx.self.peerId) < 0)
  }).length
  return place < limit - switching ? { start: true } : { start: false, waitingOn: 'rolling', reason: `backed off: ${claimants.length} claims for ${Math.max(0, limit - switching)} slot(s)` }
}
