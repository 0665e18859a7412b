/**
 * A scenario of several classes of node for `npm run simulate -- --scenario FILE`: each
 * class (app) with its peer count and its versions — the first runs from the start, each
 * later one is a release announced at its offset, with its schedule, its protocol, the
 * protocols of other classes it `calls`, and the simulation objects it ships. The
 * built-in `stores-then-clients` is the thesis' example: clients switch only after every
 * store has.
 *
 * @example
 * ```ts
 * const scenario = withPeerCounts(builtInScenario('stores-then-clients'), parsePeerCounts('store:20,client:80'))
 * const r = await simulateClasses({ scenario })
 * ```
 */
import fs from 'node:fs/promises'
import semver from 'semver'
import { z } from 'zod'
import { isDuration, parseDuration } from '#src/duration.js'
import { ScheduleRuleSchema } from '#src/package/index.js'
import type { ScheduleRule } from '#src/package/index.js'

/** A scenario that cannot be simulated: what is wrong, and where. */
export class ScenarioInvalidError extends Error {
  override name = 'ScenarioInvalidError'
}

/** Most peers of all classes together: keeps a run within minutes on 2 cores. */
export const MAX_SCENARIO_PEERS = 20_000

const appName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { message: 'expected a lowercase app name' })
const protocol = z.number().int().positive().max(1_000_000)

const VersionSchema = z.strictObject({
  version: z.string().refine(v => semver.valid(v) === v, { message: 'expected a semver version such as "2.0.0"' }),
  protocol,
  /** The protocol versions of other classes this version calls them in. */
  calls: z.record(appName, protocol).optional(),
  /** Which simulation objects the release ships (in a manifest these are module paths). */
  simulation: z.strictObject({ past: z.boolean().optional(), future: z.boolean().optional() }).optional(),
  schedule: z.array(ScheduleRuleSchema).optional(),
  /** When the release is published, from the start of the simulation. */
  at: z.string().refine(isDuration, { message: 'expected a duration such as 0s or 2m' }).optional(),
  upgrades: z.string().refine(r => semver.validRange(r) != null, { message: 'expected a semver range' }).optional()
})

const ScenarioSchema = z.strictObject({
  name: z.string().max(100).optional(),
  description: z.string().max(2000).optional(),
  classes: z.array(z.strictObject({
    app: appName,
    peers: z.number().int().min(1),
    versions: z.array(VersionSchema).min(2).max(20)
  })).min(1).max(16)
})

/** One version of a class, as the simulator uses it. */
export interface ClassVersion {
  version: string
  protocol: number
  calls: Record<string, number>
  /** Ships a past SO: a peer running it serves (and calls) protocol − 1. */
  past: boolean
  /** Ships a future SO: a peer of the version below that has staged it serves this protocol. */
  future: boolean
  /** Its release's schedule (the first version's is unused). */
  schedule: ScheduleRule[]
  /** Its release is announced this long after the start (the first version runs from the start). */
  announceMs: number
  /** The versions it upgrades from (default: any older). */
  upgrades: string | null
}

/** One class of node. */
export interface ScenarioClass {
  app: string
  peers: number
  versions: ClassVersion[]
}

/** Several classes and their releases. */
export interface Scenario {
  name: string
  description: string
  classes: ScenarioClass[]
}

function invalid (where: string, message: string): never {
  throw new ScenarioInvalidError(`${where}: ${message}`)
}

/** Read a scenario from its JSON value, checking what the schema cannot: order of versions, names of apps. */
export function parseScenario (value: unknown, where = 'scenario'): Scenario {
  const parsed = ScenarioSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    invalid(where, `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`)
  }
  const apps = parsed.data.classes.map(c => c.app)
  const scenario: Scenario = {
    name: parsed.data.name ?? 'scenario',
    description: parsed.data.description ?? '',
    classes: parsed.data.classes.map(c => ({
      app: c.app,
      peers: c.peers,
      versions: c.versions.map((v, i) => {
        const at = `classes.${c.app}.versions.${i}`
        if (i === 0 && (v.schedule != null || v.at != null || v.upgrades != null)) invalid(where, `${at}: the first version runs from the start; it has no schedule, "at" or "upgrades"`)
        if (i > 0 && !semver.gt(v.version, c.versions[i - 1]?.version ?? '0.0.0')) invalid(where, `${at}: versions must be listed oldest first`)
        for (const app of Object.keys(v.calls ?? {})) {
          if (app === c.app) invalid(where, `${at}.calls: "calls" names other apps; calls within ${c.app} use its own protocol`)
          if (!apps.includes(app)) invalid(where, `${at}.calls: no class "${app}" in the scenario`)
        }
        for (const rule of v.schedule ?? []) {
          if (rule.rule === 'after' && rule.app != null && !apps.includes(rule.app)) invalid(where, `${at}.schedule: "after" waits for "${rule.app}", which is not a class of the scenario`)
          if (['module', 'idle', 'approve'].includes(rule.rule)) invalid(where, `${at}.schedule: the simulator does not model "${rule.rule}" rules`)
        }
        return {
          version: v.version,
          protocol: v.protocol,
          calls: v.calls ?? {},
          past: v.simulation?.past ?? false,
          future: v.simulation?.future ?? false,
          schedule: v.schedule ?? [{ rule: 'immediate' }],
          announceMs: v.at == null ? 0 : parseDuration(v.at),
          upgrades: v.upgrades ?? null
        }
      })
    }))
  }
  if (new Set(apps).size !== apps.length) invalid(where, 'two classes have the same app')
  const total = scenario.classes.reduce((n, c) => n + c.peers, 0)
  if (total > MAX_SCENARIO_PEERS) invalid(where, `${total} peers in all; at most ${MAX_SCENARIO_PEERS}`)
  return scenario
}

/** Read a scenario file (JSON). */
export async function readScenario (file: string): Promise<Scenario> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    throw new ScenarioInvalidError(`${file}: cannot be read (${(err as Error).message})`)
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ScenarioInvalidError(`${file}: not JSON (${(err as Error).message})`)
  }
  return parseScenario(value, file)
}

/**
 * The built-in scenarios, as a scenario file would write them. `stores-then-clients`:
 * store 2.0.0 ships a past SO (it still serves clients that call store protocol 1) but
 * no future SO, so a client 2.0.0, which calls store protocol 2, cannot talk to a store
 * still on 1.0.0: the clients' release waits with `after` until every store runs 2.0.0.
 */
export const BUILT_IN_SCENARIOS: Record<string, unknown> = {
  'stores-then-clients': {
    name: 'stores-then-clients',
    description: 'stores roll out first (a quarter at a time); clients follow once every store runs 2.0.0',
    classes: [
      {
        app: 'store',
        peers: 20,
        versions: [
          { version: '1.0.0', protocol: 1 },
          { version: '2.0.0', protocol: 2, simulation: { past: true }, schedule: [{ rule: 'rolling', maxFraction: 0.25 }], at: '0s' }
        ]
      },
      {
        app: 'client',
        peers: 80,
        versions: [
          { version: '1.0.0', protocol: 1, calls: { store: 1 } },
          {
            version: '2.0.0',
            protocol: 2,
            calls: { store: 2 },
            simulation: { past: true },
            schedule: [{ rule: 'after', app: 'store', version: '>=2.0.0', fraction: 1 }, { rule: 'rolling', maxFraction: 0.25 }],
            at: '0s'
          }
        ]
      }
    ]
  }
}

/** The built-in scenario of that name. */
export function builtInScenario (name: string): Scenario {
  const value = BUILT_IN_SCENARIOS[name]
  if (value == null) throw new ScenarioInvalidError(`no built-in scenario "${name}" (built in: ${Object.keys(BUILT_IN_SCENARIOS).join(', ')})`)
  return parseScenario(value, name)
}

/** `store:20,client:80` → `{ store: 20, client: 80 }`. */
export function parsePeerCounts (text: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const part of text.split(',')) {
    const match = /^([a-z0-9][a-z0-9._-]{0,62}):(\d+)$/.exec(part.trim())
    if (match == null) throw new ScenarioInvalidError(`--classes: "${part}" is not APP:PEERS (e.g. store:20,client:80)`)
    out[match[1] as string] = Number(match[2])
  }
  return out
}

/** The scenario with some classes' peer counts replaced; every class named must be in it. */
export function withPeerCounts (scenario: Scenario, counts: Record<string, number>): Scenario {
  for (const app of Object.keys(counts)) {
    if (!scenario.classes.some(c => c.app === app)) throw new ScenarioInvalidError(`--classes: no class "${app}" in scenario ${scenario.name} (its classes: ${scenario.classes.map(c => c.app).join(', ')})`)
  }
  const classes = scenario.classes.map(c => ({ ...c, peers: counts[c.app] ?? c.peers }))
  for (const c of classes) if (c.peers < 1) throw new ScenarioInvalidError(`--classes: ${c.app} needs at least one peer`)
  const total = classes.reduce((n, c) => n + c.peers, 0)
  if (total > MAX_SCENARIO_PEERS) throw new ScenarioInvalidError(`--classes: ${total} peers in all; at most ${MAX_SCENARIO_PEERS}`)
  return { ...scenario, classes }
}

/** The scenario without any `after` rule that waits for another class: what happens when no class waits. */
export function withoutAfterRules (scenario: Scenario): Scenario {
  return {
    ...scenario,
    name: `${scenario.name} without after`,
    classes: scenario.classes.map(c => ({
      ...c,
      versions: c.versions.map(v => {
        const schedule = v.schedule.filter(r => !(r.rule === 'after' && r.app != null))
        return { ...v, schedule: schedule.length === 0 ? [{ rule: 'immediate' as const }] : schedule }
      })
    }))
  }
}
