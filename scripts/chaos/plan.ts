/**
 * The chaos run's plan, drawn up front from the seed: when the releases are published and
 * revoked (the milestones) and every strike of the nemesis (kind, target, time, how long it
 * holds). The same seed, peer count, length and mode give the same plan.
 *
 * @example
 * ```ts
 * const plan = makePlan({ seed: 7, peers: 4, minutes: 2, kinds: LOOPBACK_KINDS })
 * plan.strikes[0] // { at: 5400, kind: 'kill-daemon', target: 'peer-3', holdMs: 3100, … }
 * ```
 */
import { seededRandom } from '../prng.ts'

/** Every kind of fault the nemesis knows. */
export const FAULT_KINDS = ['kill-daemon', 'kill-app', 'crash-mid-switch', 'pause', 'clock-jump', 'partition', 'slow-link', 'lossy-link', 'disk-full'] as const
export type FaultKind = typeof FAULT_KINDS[number]

/** The kinds that need no root: processes and the daemon's clock. */
export const LOOPBACK_KINDS: FaultKind[] = ['kill-daemon', 'kill-app', 'crash-mid-switch', 'pause', 'clock-jump']

/** The upgrade steps a `crash-mid-switch` strike crashes a daemon at (`UPGOSSIP_FAULT=crash-at:<step>`). */
export const CRASH_STEPS = ['drain', 'snapshot', 'transform', 'start', 'verify', 'commit'] as const

/** A release published, or revoked, at `at` ms into the chaos window. */
export interface Milestone {
  at: number
  action: 'publish' | 'revoke'
  /** The demo app's major version: 2 (rolling), 3 (canary). */
  major: number
}

/** One strike of the nemesis. */
export interface Strike {
  /** Ms into the chaos window. */
  at: number
  kind: FaultKind
  /** A peer's name (`peer-2`). */
  target: string
  /** How long the fault lasts before it heals (a killed daemon stays down this long). */
  holdMs: number
  /** The crash step of `crash-mid-switch`; the clock offset of `clock-jump` (`-45m`). */
  detail?: string
}

/** What a run will do, in order. */
export interface ChaosPlan {
  seed: number
  peers: number
  windowMs: number
  kinds: FaultKind[]
  milestones: Milestone[]
  strikes: Strike[]
}

/** What a plan is drawn from. */
export interface PlanInit {
  seed: number
  peers: number
  minutes: number
  /** The kinds this machine can strike (the mode's). */
  kinds: FaultKind[]
  /** Strikes per minute of the window (default 4). */
  rate?: number
}

export { seededRandom }

/** Most faults holding at once (with their settling times), so that the clients always have peers to write to. */
const MOST_AT_ONCE = 2
/** A target stays untouched this long after its fault heals (it restarts, rejoins, catches up). */
const SETTLE_MS = 6000

/** Draw the plan for `init`; throws a RangeError on a bad argument. */
export function makePlan (init: PlanInit): ChaosPlan {
  if (!Number.isInteger(init.seed)) throw new RangeError(`seed ${init.seed} is not an integer`)
  if (init.kinds.length < 3) throw new RangeError(`a chaos run needs at least 3 kinds of fault, not ${init.kinds.join(', ')}`)
  const random = seededRandom(init.seed)
  const between = (lo: number, hi: number): number => Math.round(lo + random() * (hi - lo))
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T
  const windowMs = Math.round(init.minutes * 60_000)
  const milestones: Milestone[] = [
    { at: Math.round(windowMs * 0.08), action: 'publish', major: 2 },
    { at: Math.round(windowMs * 0.40), action: 'publish', major: 3 },
    { at: Math.round(windowMs * 0.72), action: 'revoke', major: 3 }
  ]
  const count = Math.max(6, Math.round((init.rate ?? 4) * init.minutes))
  // the first kinds go round a shuffled list, so that every run strikes at least 3 kinds
  const order = [...init.kinds].sort(() => random() - 0.5)
  const kinds = Array.from({ length: count }, (_, i) => i < order.length ? order[i] as FaultKind : pick(init.kinds)).sort(() => random() - 0.5)
  const names = Array.from({ length: init.peers }, (_, i) => `peer-${i + 1}`)
  const strikes: Strike[] = []
  const step = (windowMs * 0.85) / count
  kinds.forEach((kind, i) => {
    let at = Math.round(windowMs * 0.03 + i * step + random() * step * 0.8)
    // a crash armed for a switch, and a full disk, are struck just before a publish
    if ((kind === 'crash-mid-switch' || kind === 'disk-full') && random() < 0.6) {
      const publish = pick(milestones.filter(m => m.action === 'publish'))
      at = Math.max(0, publish.at - between(500, 3000))
    }
    const holdMs = holdOf(kind, between)
    for (let tries = 0; tries < 200; tries++, at += 1000) {
      // every strike, with its settling time, that overlaps this one's
      const end = at + holdMs + SETTLE_MS
      const overlapping = strikes.filter(s => s.at < end && at < s.at + s.holdMs + SETTLE_MS)
      const free = names.filter(n => !overlapping.some(s => s.target === n))
      if (overlapping.length >= MOST_AT_ONCE || free.length === 0 || at >= windowMs * 0.92) continue
      strikes.push({ at, kind, target: pick(free), holdMs, ...detailOf(kind, between, pick) })
      return
    }
  })
  strikes.sort((a, b) => a.at - b.at)
  return { seed: init.seed, peers: init.peers, windowMs, kinds: init.kinds, milestones, strikes }
}

function holdOf (kind: FaultKind, between: (lo: number, hi: number) => number): number {
  switch (kind) {
    case 'kill-daemon': return between(1000, 6000)
    case 'kill-app': return 0
    case 'crash-mid-switch': return between(15_000, 30_000)
    case 'pause': return between(2000, 8000)
    case 'clock-jump': return between(10_000, 25_000)
    case 'partition': return between(5000, 20_000)
    case 'slow-link': case 'lossy-link': return between(5000, 15_000)
    case 'disk-full': return between(4000, 12_000)
  }
}

function detailOf (kind: FaultKind, between: (lo: number, hi: number) => number, pick: <T>(xs: readonly T[]) => T): { detail?: string } {
  if (kind === 'crash-mid-switch') return { detail: pick(CRASH_STEPS) }
  if (kind === 'clock-jump') return { detail: `${pick(['', '-'])}${between(2, 120)}m` }
  return {}
}
