/**
 * A rollout at scale, simulated: the real schedule engine (`decide`, `claimWins`,
 * `slotLimit`, `applicableRules` from src/schedule) makes every decision, against a
 * simulated clock, a gossip delay model and each peer's view as status beats would
 * build it. What is modelled, and what is not, is in scripts/README.md.
 *
 * The model, per peer: the release arrives after its gossip distance (hops in a random
 * mesh × a per-hop delay); its package is staged a fetch time later; from then on the
 * peer asks the engine once a tick (1 s, its own phase) whether to start. Where a rule
 * limits how many switch at once, a peer that may start claims a slot (an immediate
 * beat), waits the settle time, and asks `claimWins`; the winner switches for a switch
 * time, then runs the new version. Others see a peer's state as its last beat carried it
 * (a beat every beat interval, its own phase; claims at once) after the gossip delay.
 *
 * @example
 * ```ts
 * const r = await simulateRollout({ peers: 1000, rules: [{ rule: 'rolling', maxFraction: 0.1 }] })
 * console.log(r.rolloutMs, r.peakConcurrent)
 * ```
 */
import { applicableRules, byRank, claimWins, decide, slotLimit } from '#src/schedule/index.js'
import type { ScheduleContext, SchedulePeer } from '#src/schedule/index.js'
import type { ScheduleRule } from '#src/package/index.js'
import { seededRandom } from '../prng.ts'

/** The network and timing model every simulation shares. Times in ms. */
export interface SimulationModel {
  /** Status beat interval (the daemon's default: 5 s; the testnet's: 1 s). */
  beatMs?: number
  /** The rollout's decision tick. */
  tickMs?: number
  /** Claim settle time (the daemon: max(1 s, 1.5 × beat)). */
  settleMs?: number
  /** One gossip hop: forwarding and validation. */
  hopMs?: number
  /** Connections per peer in the random mesh. */
  degree?: number
  /** Announcement to staged (fetching the package), mean; each peer ±20 %. */
  fetchMs?: number
  /** One switch (buffer … commit), mean; each peer ±20 %. */
  switchMs?: number
  /** Simulation step. */
  stepMs?: number
  /** Give up after this much simulated time. */
  maxMs?: number
  seed?: number
  /** Ask the engine for every peer, not once per group of peers with the same inputs (slow; for checking the shortcut). */
  exhaustive?: boolean
}

/** What to simulate: one release's rollout. */
export interface SimulationParams extends SimulationModel {
  peers: number
  /** The release's schedule (halt-on-failures is added as the daemon adds it). */
  rules: ScheduleRule[]
}

/** What a simulated rollout did. */
export interface SimulationResult {
  peers: number
  rules: ScheduleRule[]
  /** Publish until every peer runs the new version (null: not within maxMs). */
  rolloutMs: number | null
  /** Most peers switching at one moment. */
  peakConcurrent: number
  /** The most the rules allow at once, if they limit it (at the full network size). */
  slotLimit: number | null
  /** Claims that backed off. */
  backoffs: number
  /** Engine calls: decide, claimWins. */
  decisions: number
  /** Peers switching and peers done, once a second. */
  timeline: Array<{ atMs: number, switching: number, done: number }>
  /** Wall time of the simulation itself. */
  wallMs: number
  params: Required<Omit<SimulationParams, 'rules' | 'exhaustive'>>
}

const RELEASE = { id: 'bafyreisimulatedrelease', version: '2.0.0' }
const OLD = '1.0.0'

/** A seeded PRNG (mulberry32): the same seed, the same rollout. */
export const prng = seededRandom

/** Hops from peer 0 in a random mesh where each peer dials `degree` others. */
export function gossipHops (peers: number, degree: number, random: () => number): Int32Array {
  const adj: number[][] = Array.from({ length: peers }, () => [])
  for (let i = 0; i < peers; i++) {
    for (let k = 0; k < Math.min(degree, peers - 1); k++) {
      let j = Math.floor(random() * peers)
      if (j === i) j = (j + 1) % peers
      adj[i]?.push(j)
      adj[j]?.push(i)
    }
  }
  const hops = new Int32Array(peers).fill(-1)
  hops[0] = 0
  const queue = [0]
  for (let q = 0; q < queue.length; q++) {
    const i = queue[q] as number
    for (const j of adj[i] ?? []) {
      if (hops[j] === -1) {
        hops[j] = (hops[i] as number) + 1
        queue.push(j)
      }
    }
  }
  return hops
}

interface SimPeer {
  id: string
  /** Truth now. */
  now: SchedulePeer
  stagedAt: number
  tickPhase: number
  beatPhase: number
  /** A claim settling until then. */
  settleAt: number | null
  switchEndAt: number | null
  /** Some of `now` not yet sent in a beat (its next regular beat is due). */
  dirty: boolean
}

/**
 * Which inputs of a decision differ between peers, for the rules given: peers with equal
 * keys get equal answers from `decide` at one moment and one view. Anything that
 * depends on the peer itself (its rank for jitter, a module rule) makes every peer its own group.
 */
export function groupKey (rules: ScheduleRule[], p: { id: string, now: SchedulePeer }, isCanary: (id: string) => boolean): string {
  const parts: string[] = [p.now.claim ?? '', p.now.version ?? '']
  for (const r of rules) {
    if (r.rule === 'jitter' || r.rule === 'module' || r.rule === 'idle') return p.id
    if (r.rule === 'labels' || (r.rule === 'canary' && r.labels != null)) parts.push(JSON.stringify(p.now.labels))
    if (r.rule === 'canary' && r.labels == null) parts.push(isCanary(p.id) ? 'canary' : '')
  }
  return parts.join('|')
}

/** `model` with the defaults filled in (the daemon's timings; `maxMs` as the caller's simulation wants it). */
export function modelWithDefaults (model: SimulationModel, maxMs: number): Required<Omit<SimulationModel, 'exhaustive'>> {
  const beatMs = model.beatMs ?? 5000
  return {
    beatMs,
    tickMs: model.tickMs ?? 1000,
    settleMs: model.settleMs ?? Math.max(1000, Math.round(1.5 * beatMs)),
    hopMs: model.hopMs ?? 50,
    degree: model.degree ?? 4,
    fetchMs: model.fetchMs ?? 10_000,
    switchMs: model.switchMs ?? 5000,
    stepMs: model.stepMs ?? 50,
    maxMs: model.maxMs ?? maxMs,
    seed: model.seed ?? 1
  }
}

/** Run one simulated rollout. */
export async function simulateRollout (params: SimulationParams): Promise<SimulationResult> {
  const started = performance.now()
  const p: SimulationResult['params'] = { peers: params.peers, ...modelWithDefaults(params, 6 * 3600_000) }
  const random = prng(p.seed)
  const rules = applicableRules(params.rules, [])
  const hops = gossipHops(p.peers, p.degree, random)
  const meanHops = hops.reduce((a, b) => a + Math.max(0, b), 0) / p.peers
  // a beat reaches the other peers after about the mean gossip distance
  const viewDelay = Math.round(meanHops * p.hopMs)
  const peers: SimPeer[] = Array.from({ length: p.peers }, (_, i) => {
    const id = `sim-peer-${String(i).padStart(6, '0')}`
    const arrival = Math.max(0, hops[i] as number) * p.hopMs * (0.5 + random())
    return {
      id,
      now: { peerId: id, version: OLD, state: 'running', labels: {}, since: 0, upgrading: null, claim: null, failed: [] },
      stagedAt: arrival + p.fetchMs * (0.8 + 0.4 * random()),
      tickPhase: random() * p.tickMs,
      beatPhase: random() * p.beatMs,
      settleAt: null,
      switchEndAt: null,
      dirty: false
    }
  })
  // the view every peer has of the others: beats as sent, delivered viewDelay later
  let view: SchedulePeer[] = peers.map(x => ({ ...x.now }))
  const inFlight: Array<{ at: number, i: number, beat: SchedulePeer }> = []
  let delivered = 0
  const stepOf = (ms: number): number => Math.ceil(ms / p.stepMs)
  // what happens at which step: switches ending, claims settling, regular beats due
  const due = new Map<number, { ends: number[], settles: number[], beats: number[] }>()
  const at = (step: number): { ends: number[], settles: number[], beats: number[] } => {
    let d = due.get(step)
    if (d == null) {
      d = { ends: [], settles: [], beats: [] }
      due.set(step, d)
    }
    return d
  }
  const sendBeat = (i: number, t: number): void => {
    const x = peers[i] as SimPeer
    x.dirty = false
    inFlight.push({ at: t + viewDelay, i, beat: { ...x.now } })
  }
  /** The peer's state changed: its next regular beat carries it. */
  const changed = (i: number, t: number): void => {
    const x = peers[i] as SimPeer
    if (x.dirty) return
    x.dirty = true
    const next = x.beatPhase + Math.ceil((t - x.beatPhase) / p.beatMs) * p.beatMs
    at(Math.max(stepOf(t) + 1, stepOf(next))).beats.push(i)
  }
  const startSwitch = (i: number, t: number): void => {
    const x = peers[i] as SimPeer
    x.switchEndAt = t + p.switchMs * (0.8 + 0.4 * random())
    at(stepOf(x.switchEndAt)).ends.push(i)
    switching++
    peak = Math.max(peak, switching)
  }
  const tickSlots: number[][] = Array.from({ length: Math.ceil(p.tickMs / p.stepMs) }, () => [])
  peers.forEach((x, i) => { tickSlots[Math.floor(x.tickPhase / p.stepMs) % tickSlots.length]?.push(i) })
  const canarySet = new Set<string>()
  for (const r of rules) {
    if (r.rule === 'canary' && r.labels == null) {
      const count = Math.max(1, Math.floor((r.fraction ?? 0) * p.peers))
      for (const id of byRank(peers.map(x => x.id), RELEASE.id).slice(0, count)) canarySet.add(id)
    }
  }
  const ctxOf = (x: SimPeer, t: number): ScheduleContext => ({
    now: t,
    self: x.now,
    peers: view,
    release: RELEASE,
    stagedAt: x.stagedAt,
    approved: false,
    idleFor: () => Infinity
  })
  // the most any rule lets switch at once, as a peer that holds every slot sees it
  const limits = rules.map(r => r.rule === 'canary' ? undefined : slotLimit(r, ctxOf(peers[0] as SimPeer, 0))).filter((n): n is number => n != null)

  let decisions = 0
  let backoffs = 0
  let switching = 0
  let done = 0
  let peak = 0
  let finishedAt: number | null = null
  const timeline: SimulationResult['timeline'] = []

  for (let step = 0, t = 0; t <= p.maxMs; step++, t = step * p.stepMs) {
    // beats that arrive now change the view
    if (delivered < inFlight.length && (inFlight[delivered]?.at ?? Infinity) <= t) {
      const next = view.slice()
      while (delivered < inFlight.length && (inFlight[delivered]?.at ?? Infinity) <= t) {
        const b = inFlight[delivered++] as { i: number, beat: SchedulePeer }
        next[b.i] = b.beat
      }
      view = next
    }
    const now = due.get(step)
    due.delete(step)
    // switches that end now
    for (const i of now?.ends ?? []) {
      const x = peers[i] as SimPeer
      x.switchEndAt = null
      x.now = { ...x.now, version: RELEASE.version, state: 'running', since: t, upgrading: null }
      changed(i, t)
      switching--
      done++
    }
    // claims that settle now: the engine's claim step
    for (const i of now?.settles ?? []) {
      const x = peers[i] as SimPeer
      x.settleAt = null
      decisions++
      const won = claimWins(rules, ctxOf(x, t))
      if (won.start) {
        x.now = { ...x.now, claim: null, upgrading: RELEASE.id, state: 'upgrading' }
        startSwitch(i, t)
      } else {
        x.now = { ...x.now, claim: null }
        backoffs++
      }
      changed(i, t)
    }
    // ticks: the peers whose tick falls in this step decide
    const answers = new Map<string, { start: boolean, claim: boolean }>()
    for (const i of tickSlots[step % tickSlots.length] ?? []) {
      const x = peers[i] as SimPeer
      if (x.now.version === RELEASE.version || x.switchEndAt != null || x.settleAt != null || x.stagedAt > t) continue
      const key = params.exhaustive === true ? x.id : groupKey(rules, x, id => canarySet.has(id))
      let answer = answers.get(key)
      if (answer == null) {
        decisions++
        const ctx = ctxOf(x, t)
        const decision = await decide(rules, ctx)
        // as the daemon does: the claim step where a rule limits how many switch at once
        answer = { start: decision.start, claim: decision.start && rules.some(r => slotLimit(r, ctx) != null) }
        answers.set(key, answer)
      }
      if (!answer.start) continue
      if (answer.claim) {
        // a claim goes out in a beat at once
        x.now = { ...x.now, claim: RELEASE.id }
        x.settleAt = t + p.settleMs
        at(stepOf(x.settleAt)).settles.push(i)
        sendBeat(i, t)
      } else {
        x.now = { ...x.now, upgrading: RELEASE.id, state: 'upgrading' }
        startSwitch(i, t)
        changed(i, t)
      }
    }
    // regular beats of peers whose state changed
    for (const i of now?.beats ?? []) if ((peers[i] as SimPeer).dirty) sendBeat(i, t)
    if (t % 1000 === 0) timeline.push({ atMs: t, switching, done })
    if (done === p.peers) {
      finishedAt = t
      timeline.push({ atMs: t, switching, done })
      break
    }
    // yield now and then, so a long simulation does not starve the event loop
    if (t % 60_000 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  return {
    peers: p.peers,
    rules: params.rules,
    rolloutMs: finishedAt,
    peakConcurrent: peak,
    slotLimit: limits.length === 0 ? null : Math.min(...limits),
    backoffs,
    decisions,
    timeline,
    wallMs: Math.round(performance.now() - started),
    params: p
  }
}
