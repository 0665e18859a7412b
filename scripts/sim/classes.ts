/**
 * Several classes of node rolling out in one network, simulated: each peer runs one
 * class (app) of a {@link Scenario}; every class's releases are announced at their
 * offsets; each peer decides with the real schedule engine, its `ScheduleContext.peers`
 * the peers of its own class and `network` those of the others (as src/daemon/rollout.ts
 * builds them), so an `after` rule with an `app` waits for another class. The clock,
 * gossip and beats are modelled as in scripts/sim/simulator.ts.
 *
 * What it reports: each class's rollout; how long the network spends in each mixed
 * state (the versions each class runs); and whether a caller ever faces a callee it
 * cannot talk to — the protocol the caller's version `calls` for the callee's class is
 * one the callee does not serve natively, through its chain of past SOs, or through the
 * future SO of a release it has staged. A switching callee holds requests for its new
 * version, so it counts as that version; a switching caller makes no calls.
 *
 * @example
 * ```ts
 * const r = await simulateClasses({ scenario: builtInScenario('stores-then-clients'), seed: 1 })
 * console.log(r.incompatibleMs, r.states.map(s => `${s.state}: ${s.ms} ms`))
 * ```
 */
import semver from 'semver'
import { applicableRules, byRank, claimWins, countFromFraction, decide, slotLimit } from '#src/schedule/index.js'
import type { ScheduleContext, SchedulePeer } from '#src/schedule/index.js'
import type { ScheduleRule } from '#src/package/index.js'
import { gossipHops, groupKey, modelWithDefaults, prng } from './simulator.ts'
import type { SimulationModel } from './simulator.ts'
import type { ClassVersion, Scenario } from './scenario.ts'

/** What to simulate: the classes of a scenario, with the single-class simulator's model and defaults (`maxMs` here defaults to 1 h). */
export interface ClassesParams extends SimulationModel {
  scenario: Scenario
}

/** One class's rollout. */
export interface ClassRollout {
  app: string
  peers: number
  versions: string[]
  /** Its first release's announcement. */
  announcedMs: number
  /** The first switch of a peer of this class began. */
  firstSwitchMs: number | null
  /** The last switch of this class ended: every peer runs its newest version (null: not within the run). */
  lastSwitchMs: number | null
  /** Announcement until every peer runs the newest version. */
  rolloutMs: number | null
  peakConcurrent: number
  backoffs: number
  /** The rule its peers last waited on, and why (null once every peer runs the newest version). */
  waitingOn: string | null
}

/** A state of the network: the versions each class runs (a switching peer counts as its old version). */
export interface MixedState {
  /** `store 1.0.0+2.0.0 / client 1.0.0` */
  state: string
  versions: Record<string, string[]>
  /** Some class runs more than one version. */
  mixed: boolean
  firstAtMs: number
  /** Time spent in it, in all (the state the run ends in: 0 when the run finished). */
  ms: number
}

/** A caller that met a callee it cannot talk to. */
export interface IncompatiblePair {
  caller: { app: string, version: string, calls: number }
  /** `version` is `1.0.0→2.0.0` for a callee switching (it serves as its new version). */
  callee: { app: string, version: string, serves: number[] }
  firstAtMs: number
  /** When it was last seen. */
  untilMs: number
  /** Time during which both existed, in all. */
  ms: number
}

/** What a simulation of several classes found. */
export interface ClassesResult {
  scenario: string
  classes: ClassRollout[]
  /** Start until every class is done (null: not within maxMs). */
  rolloutMs: number | null
  states: MixedState[]
  incompatible: IncompatiblePair[]
  /** Time during which at least one incompatible pair existed. */
  incompatibleMs: number
  /** Nothing could change any more (no event pending, the view still, and every waiting rule reads only the view): the run stopped there. */
  stalledAtMs: number | null
  decisions: number
  wallMs: number
  params: Required<Omit<ClassesParams, 'scenario' | 'exhaustive'>>
}

interface Peer {
  id: string
  cls: number
  now: SchedulePeer
  running: number
  /** The version index this peer is switching to. */
  target: number | null
  /** Per version index: when this peer staged that release (index 0: it ran from the start). */
  stagedAt: number[]
  tickPhase: number
  beatPhase: number
  settleAt: number | null
  claimFor: number | null
  dirty: boolean
  /** What it counts as now: a caller (running version; null while switching), a callee (its key). */
  callerOf: number | null
  calleeKey: string
}

interface Callee { label: string, serves: number[], count: number }

/** The protocols a peer of these versions serves, running `v`, given which releases it holds. */
export function servedProtocols (versions: ClassVersion[], v: number, holds: (k: number) => boolean): number[] {
  const at = (k: number): ClassVersion => versions[k] as ClassVersion
  const serves = new Set([at(v).protocol])
  // the past chain, as the daemon builds it: the newest kept release one protocol down, one with a past SO first
  for (let r = v; r >= 0 && at(r).past && at(r).protocol > 1;) {
    const p = at(r).protocol - 1
    serves.add(p)
    let next = -1
    for (let k = r - 1; k >= 0; k--) {
      if (at(k).protocol !== p || !holds(k)) continue
      if (next < 0) next = k
      if (at(k).past) { next = k; break }
    }
    r = next
  }
  // future SOs of staged releases above, one protocol up at a time
  for (let p = at(v).protocol + 1; ; p++) {
    let above = -1
    for (let k = versions.length - 1; k > v; k--) {
      if (at(k).protocol !== p || !holds(k)) continue
      if (above < 0) above = k
      if (at(k).past) { above = k; break }
    }
    if (above < 0 || !at(above).future) break
    serves.add(p)
  }
  return [...serves].sort((a, b) => a - b)
}

/** Run one simulation of the scenario's classes. */
export async function simulateClasses (params: ClassesParams): Promise<ClassesResult> {
  const started = performance.now()
  const { scenario } = params
  const p: ClassesResult['params'] = modelWithDefaults(params, 3600_000)
  const classes = scenario.classes
  const random = prng(p.seed)
  const total = classes.reduce((n, c) => n + c.peers, 0)
  const hops = gossipHops(total, p.degree, random)
  const meanHops = hops.reduce((a, b) => a + Math.max(0, b), 0) / total
  const viewDelay = Math.round(meanHops * p.hopMs)
  const releaseOf = classes.map(c => c.versions.map(v => ({ id: `sim-${c.app}-${v.version}`, version: v.version })))
  const rulesOf: ScheduleRule[][][] = classes.map(c => c.versions.map(v => applicableRules(v.schedule, [])))
  // may a peer running version `from` switch to `to` (the release's `upgrades` range)
  const mayUpgrade = classes.map(c => c.versions.map((_, from) => c.versions.map((v, to) => to > from && (v.upgrades == null || semver.satisfies(c.versions[from]?.version ?? '', v.upgrades)))))

  const peers: Peer[] = []
  const members: number[][] = classes.map(() => [])
  classes.forEach((c, cls) => {
    for (let n = 0; n < c.peers; n++) {
      const i = peers.length
      const id = `sim-${c.app}-${String(n).padStart(6, '0')}`
      const stagedAt = c.versions.map((v, k) => k === 0 ? 0 : v.announceMs + Math.max(0, hops[i] as number) * p.hopMs * (0.5 + random()) + p.fetchMs * (0.8 + 0.4 * random()))
      peers.push({
        id,
        cls,
        now: { peerId: id, app: c.app, version: c.versions[0]?.version ?? null, state: 'running', labels: {}, since: 0, upgrading: null, claim: null, failed: [] },
        running: 0,
        target: null,
        stagedAt,
        tickPhase: random() * p.tickMs,
        beatPhase: random() * p.beatMs,
        settleAt: null,
        claimFor: null,
        dirty: false,
        callerOf: null,
        calleeKey: ''
      })
      members[cls]?.push(i)
    }
  })
  const canaries = classes.map((c, cls) => c.versions.map((_, k) => {
    const set = new Set<string>()
    for (const r of rulesOf[cls]?.[k] ?? []) {
      if (r.rule === 'canary' && r.labels == null) {
        const ids = (members[cls] ?? []).map(i => (peers[i] as Peer).id)
        for (const id of byRank(ids, releaseOf[cls]?.[k]?.id ?? '').slice(0, countFromFraction(r.fraction ?? 0, ids.length))) set.add(id)
      }
    }
    return set
  }))

  // the view: beats as sent, delivered viewDelay later; per class, and the other classes' peers
  const views: SchedulePeer[][] = classes.map((_, cls) => (members[cls] ?? []).map(i => ({ ...(peers[i] as Peer).now })))
  const localIndex = new Int32Array(total)
  members.forEach(list => list.forEach((i, n) => { localIndex[i] = n }))
  let networkViews: Array<SchedulePeer[] | undefined> = []
  const networkOf = (cls: number): SchedulePeer[] => {
    let v = networkViews[cls]
    if (v == null) {
      v = views.filter((_, c) => c !== cls).flat()
      networkViews[cls] = v
    }
    return v
  }
  const inFlight: Array<{ at: number, i: number, beat: SchedulePeer }> = []
  let delivered = 0

  // who calls whom, and who serves what: counts per class, kept as peers change
  const callers: Array<Map<number, number>> = classes.map(() => new Map())
  const callees: Array<Map<string, Callee>> = classes.map(() => new Map())
  const runningCounts: Array<Map<number, number>> = classes.map(() => new Map())
  let counted = false
  const bump = <K>(m: Map<K, number>, k: K, by: number): void => {
    const n = (m.get(k) ?? 0) + by
    if (n === 0) m.delete(k)
    else m.set(k, n)
  }
  /** Recount one peer as caller and callee (after it switched, started switching or staged a release). */
  const recount = (i: number, t: number): void => {
    const x = peers[i] as Peer
    const c = classes[x.cls]
    if (c == null) return
    if (counted) {
      if (x.callerOf != null) bump(callers[x.cls] as Map<number, number>, x.callerOf, -1)
      const old = callees[x.cls]?.get(x.calleeKey)
      if (old != null && --old.count === 0) callees[x.cls]?.delete(x.calleeKey)
    }
    x.callerOf = x.target == null ? x.running : null
    if (x.callerOf != null) bump(callers[x.cls] as Map<number, number>, x.callerOf, 1)
    const v = x.target ?? x.running
    const serves = servedProtocols(c.versions, v, k => (x.stagedAt[k] ?? Infinity) <= t)
    const label = x.target == null ? c.versions[x.running]?.version ?? '?' : `${c.versions[x.running]?.version ?? '?'}→${c.versions[x.target]?.version ?? '?'}`
    x.calleeKey = `${label}|${serves.join(',')}`
    const entry = callees[x.cls]?.get(x.calleeKey)
    if (entry != null) entry.count++
    else callees[x.cls]?.set(x.calleeKey, { label, serves, count: 1 })
    changedAt = t
    lastEventAt = t
  }
  let changedAt: number | null = null
  let lastEventAt = 0
  peers.forEach((x, i) => { recount(i, 0); bump(runningCounts[x.cls] as Map<number, number>, 0, 1) })
  counted = true

  // time in each state, and incompatible pairs, accounted at each change
  const states = new Map<string, MixedState>()
  const pairs = new Map<string, IncompatiblePair>()
  let activePairs: IncompatiblePair[] = []
  let state: MixedState | undefined
  let incompatibleMs = 0
  let lastAccounted = 0
  const account = (t: number): void => {
    const dt = t - lastAccounted
    lastAccounted = t
    if (state != null) state.ms += dt
    for (const pair of activePairs) { pair.ms += dt; pair.untilMs = t }
    if (activePairs.length > 0) incompatibleMs += dt
  }
  const observe = (t: number): void => {
    const versions: Record<string, string[]> = {}
    classes.forEach((c, cls) => { versions[c.app] = [...(runningCounts[cls]?.keys() ?? [])].sort((a, b) => a - b).map(k => c.versions[k]?.version ?? '?') })
    const label = classes.map(c => `${c.app} ${versions[c.app]?.join('+') ?? ''}`).join(' / ')
    state = states.get(label)
    if (state == null) {
      state = { state: label, versions, mixed: Object.values(versions).some(v => v.length > 1), firstAtMs: t, ms: 0 }
      states.set(label, state)
    }
    activePairs = []
    classes.forEach((c, cls) => {
      for (const v of callers[cls]?.keys() ?? []) {
        const version = c.versions[v] as ClassVersion
        for (const [app, protocol] of Object.entries(version.calls)) {
          const d = classes.findIndex(x => x.app === app)
          for (const callee of callees[d]?.values() ?? []) {
            if (callee.serves.includes(protocol)) continue
            const key = `${c.app} ${version.version} → ${app} ${callee.label} (${callee.serves.join(',')})`
            let pair = pairs.get(key)
            if (pair == null) {
              pair = { caller: { app: c.app, version: version.version, calls: protocol }, callee: { app, version: callee.label, serves: callee.serves }, firstAtMs: t, untilMs: t, ms: 0 }
              pairs.set(key, pair)
            }
            activePairs.push(pair)
          }
        }
      }
    })
  }
  observe(0)

  const stepOf = (ms: number): number => Math.ceil(ms / p.stepMs)
  const due = new Map<number, { ends: number[], settles: number[], beats: number[], stages: number[] }>()
  const at = (step: number): { ends: number[], settles: number[], beats: number[], stages: number[] } => {
    let d = due.get(step)
    if (d == null) {
      d = { ends: [], settles: [], beats: [], stages: [] }
      due.set(step, d)
    }
    return d
  }
  // a staged release can change what a peer serves (its future SO)
  peers.forEach((x, i) => { for (let k = 1; k < x.stagedAt.length; k++) at(stepOf(x.stagedAt[k] as number)).stages.push(i) })
  const sendBeat = (i: number, t: number): void => {
    const x = peers[i] as Peer
    x.dirty = false
    lastEventAt = t
    inFlight.push({ at: t + viewDelay, i, beat: { ...x.now } })
  }
  const changed = (i: number, t: number): void => {
    const x = peers[i] as Peer
    if (x.dirty) return
    x.dirty = true
    const next = x.beatPhase + Math.ceil((t - x.beatPhase) / p.beatMs) * p.beatMs
    at(Math.max(stepOf(t) + 1, stepOf(next))).beats.push(i)
  }
  const rollouts: ClassRollout[] = classes.map(c => ({
    app: c.app,
    peers: c.peers,
    versions: c.versions.map(v => v.version),
    announcedMs: Math.min(...c.versions.slice(1).map(v => v.announceMs)),
    firstSwitchMs: null,
    lastSwitchMs: null,
    rolloutMs: null,
    peakConcurrent: 0,
    backoffs: 0,
    waitingOn: null
  }))
  const switching = classes.map(() => 0)
  const done = classes.map(() => 0)
  let classesDone = 0
  const startSwitch = (i: number, k: number, t: number): void => {
    const x = peers[i] as Peer
    const roll = rollouts[x.cls] as ClassRollout
    x.target = k
    x.now = { ...x.now, claim: null, upgrading: releaseOf[x.cls]?.[k]?.id ?? null, state: 'upgrading' }
    at(stepOf(t + p.switchMs * (0.8 + 0.4 * random()))).ends.push(i)
    roll.firstSwitchMs ??= t
    switching[x.cls] = (switching[x.cls] ?? 0) + 1
    roll.peakConcurrent = Math.max(roll.peakConcurrent, switching[x.cls] ?? 0)
    recount(i, t)
    changed(i, t)
  }
  const ctxOf = (x: Peer, k: number, t: number): ScheduleContext => ({
    now: t,
    self: x.now,
    peers: views[x.cls] as SchedulePeer[],
    network: networkOf(x.cls),
    release: releaseOf[x.cls]?.[k] as { id: string, version: string },
    stagedAt: x.stagedAt[k] as number,
    approved: false,
    idleFor: () => Infinity
  })
  /** The release a peer would switch to now: the newest staged one that upgrades from what it runs. */
  const targetOf = (x: Peer, t: number): number | null => {
    const may = mayUpgrade[x.cls]?.[x.running] ?? []
    for (let k = x.stagedAt.length - 1; k > x.running; k--) if (may[k] === true && (x.stagedAt[k] as number) <= t) return k
    return null
  }
  const tickSlots: number[][] = Array.from({ length: Math.ceil(p.tickMs / p.stepMs) }, () => [])
  peers.forEach((x, i) => { tickSlots[Math.floor(x.tickPhase / p.stepMs) % tickSlots.length]?.push(i) })

  // rules whose answer changes only with the view, not with the time
  const VIEW_ONLY = ['immediate', 'after', 'rolling', 'labels', 'halt-on-failures']
  const viewOnly = rulesOf.map(byVersion => byVersion.every(rules => rules.every(r => VIEW_ONLY.includes(r.rule))))
  let stalledAtMs: number | null = null
  let decisions = 0
  let finishedAt: number | null = null
  for (let step = 0, t = 0; t <= p.maxMs; step++, t = step * p.stepMs) {
    if (delivered < inFlight.length && (inFlight[delivered]?.at ?? Infinity) <= t) {
      const touched = new Set<number>()
      while (delivered < inFlight.length && (inFlight[delivered]?.at ?? Infinity) <= t) {
        const b = inFlight[delivered++] as { i: number, beat: SchedulePeer }
        const cls = (peers[b.i] as Peer).cls
        if (!touched.has(cls)) {
          views[cls] = (views[cls] as SchedulePeer[]).slice()
          touched.add(cls)
        }
        ;(views[cls] as SchedulePeer[])[localIndex[b.i] as number] = b.beat
      }
      networkViews = []
      lastEventAt = t
    }
    const now = due.get(step)
    due.delete(step)
    for (const i of now?.stages ?? []) recount(i, t)
    for (const i of now?.ends ?? []) {
      const x = peers[i] as Peer
      const k = x.target as number
      bump(runningCounts[x.cls] as Map<number, number>, x.running, -1)
      bump(runningCounts[x.cls] as Map<number, number>, k, 1)
      x.running = k
      x.target = null
      x.now = { ...x.now, version: releaseOf[x.cls]?.[k]?.version ?? null, state: 'running', since: t, upgrading: null }
      switching[x.cls] = (switching[x.cls] ?? 1) - 1
      recount(i, t)
      changed(i, t)
      if (k === (classes[x.cls]?.versions.length ?? 0) - 1) {
        done[x.cls] = (done[x.cls] ?? 0) + 1
        if (done[x.cls] === classes[x.cls]?.peers) {
          const roll = rollouts[x.cls] as ClassRollout
          roll.lastSwitchMs = t
          roll.rolloutMs = t - roll.announcedMs
          roll.waitingOn = null
          classesDone++
        }
      }
    }
    for (const i of now?.settles ?? []) {
      const x = peers[i] as Peer
      const k = x.claimFor as number
      x.settleAt = null
      x.claimFor = null
      decisions++
      if (claimWins(rulesOf[x.cls]?.[k] ?? [], ctxOf(x, k, t)).start) startSwitch(i, k, t)
      else {
        x.now = { ...x.now, claim: null }
        ;(rollouts[x.cls] as ClassRollout).backoffs++
        changed(i, t)
      }
    }
    const answers = new Map<string, { start: boolean, claim: boolean }>()
    for (const i of tickSlots[step % tickSlots.length] ?? []) {
      const x = peers[i] as Peer
      if (x.target != null || x.settleAt != null) continue
      const k = targetOf(x, t)
      if (k == null) continue
      const rules = rulesOf[x.cls]?.[k] ?? []
      const key = params.exhaustive === true ? x.id : `${x.cls}|${k}|${groupKey(rules, x, id => canaries[x.cls]?.[k]?.has(id) === true)}`
      let answer = answers.get(key)
      if (answer == null) {
        decisions++
        const ctx = ctxOf(x, k, t)
        const decision = await decide(rules, ctx)
        if (!decision.start) (rollouts[x.cls] as ClassRollout).waitingOn = `${decision.waitingOn ?? '?'}: ${decision.reason ?? ''}`
        answer = { start: decision.start, claim: decision.start && rules.some(r => slotLimit(r, ctx) != null) }
        answers.set(key, answer)
      }
      if (!answer.start) continue
      if (answer.claim) {
        x.now = { ...x.now, claim: releaseOf[x.cls]?.[k]?.id ?? null }
        x.settleAt = t + p.settleMs
        x.claimFor = k
        at(stepOf(x.settleAt)).settles.push(i)
        sendBeat(i, t)
      } else {
        startSwitch(i, k, t)
      }
    }
    for (const i of now?.beats ?? []) if ((peers[i] as Peer).dirty) sendBeat(i, t)
    if (changedAt === t) {
      account(t)
      observe(t)
    }
    if (classesDone === classes.length) {
      finishedAt = t
      break
    }
    // stalled: every peer has asked since the last change, nothing is pending, and no waiting rule reads the clock
    if (due.size === 0 && delivered === inFlight.length && t - lastEventAt > p.tickMs && classes.every((_, cls) => done[cls] === classes[cls]?.peers || viewOnly[cls] === true)) {
      stalledAtMs = t
      break
    }
    if (t % 60_000 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  account(finishedAt ?? stalledAtMs ?? p.maxMs)
  return {
    scenario: scenario.name,
    classes: rollouts,
    rolloutMs: finishedAt,
    states: [...states.values()],
    incompatible: [...pairs.values()],
    incompatibleMs,
    stalledAtMs,
    decisions,
    wallMs: Math.round(performance.now() - started),
    params: p
  }
}

const seconds = (ms: number | null): string => ms == null ? '-' : `${(ms / 1000).toFixed(1)} s`

/** The report for people. */
export function formatClasses (r: ClassesResult): string {
  const p = r.params
  const width = Math.max(5, ...r.classes.map(c => c.app.length))
  const stateWidth = Math.max(5, ...r.states.map(s => s.state.length))
  const lines = [
    `simulated rollout of several classes: ${r.scenario} (beat ${p.beatMs} ms, switch ${p.switchMs} ms, fetch ${p.fetchMs} ms, hop ${p.hopMs} ms, mesh degree ${p.degree}, seed ${p.seed})`,
    `${'class'.padEnd(width)}   peers  versions               first switch   all switched   rollout   peak at once  backoffs`,
    ...r.classes.map(c => `${c.app.padEnd(width)}  ${String(c.peers).padStart(6)}  ${c.versions.join(' → ').padEnd(21)}  ${seconds(c.firstSwitchMs).padStart(12)}   ${seconds(c.lastSwitchMs).padStart(12)}  ${(c.rolloutMs == null ? 'unfinished' : seconds(c.rolloutMs)).padStart(9)}  ${String(c.peakConcurrent).padStart(13)}  ${String(c.backoffs).padStart(8)}`),
    '',
    `${'state'.padEnd(stateWidth)}     from        for`,
    ...r.states.map((s, n) => {
      const last = n === r.states.length - 1 && r.rolloutMs != null
      return `${s.state.padEnd(stateWidth)}  ${seconds(s.firstAtMs).padStart(8)}  ${(last ? 'end' : seconds(s.ms)).padStart(9)}${s.mixed ? '  mixed' : ''}`
    }),
    `mixed states: ${seconds(r.states.filter(s => s.mixed).reduce((n, s) => n + s.ms, 0))} in all; ${r.rolloutMs != null ? `every class done at ${seconds(r.rolloutMs)}` : r.stalledAtMs != null ? `STALLED at ${seconds(r.stalledAtMs)}: no peer can start any more` : `not finished within ${seconds(p.maxMs)}`}`,
    ...r.classes.filter(c => c.waitingOn != null).map(c => `  ${c.app} waits on ${c.waitingOn ?? ''}`),
    ''
  ]
  if (r.incompatible.length === 0) {
    lines.push('compatible: no caller ever faced a callee it cannot talk to')
  } else {
    lines.push(`INCOMPATIBLE: callers faced callees they cannot talk to for ${seconds(r.incompatibleMs)} in all`)
    for (const x of r.incompatible) {
      lines.push(`  ${x.caller.app} ${x.caller.version} (calls ${x.callee.app} protocol ${x.caller.calls}) → ${x.callee.app} ${x.callee.version} (serves ${x.callee.serves.join(', ')}): from ${seconds(x.firstAtMs)} to ${seconds(x.untilMs)}, ${seconds(x.ms)} in all`)
    }
  }
  return lines.join('\n')
}
