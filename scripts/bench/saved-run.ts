/**
 * The saved run, docs/benchmarks/run.json: read back in any shape this code knows, and a
 * partial run merged into it — the sections run now replace the saved ones, every other
 * section keeps its figures and the run that measured them. Pure but for reading the
 * file, so a merge is tested without daemons.
 *
 * @example
 * ```ts
 * const saved = readSavedRun('docs/benchmarks/run.json')   // null when there is none
 * const merged = saved == null ? run : mergeRuns(saved, run)
 * ```
 */
import fs from 'node:fs'
import { SECTIONS } from './modes.ts'
import type { Section } from './modes.ts'
import { sectionOf, targets } from './result.ts'
import type { BenchResult, BenchRun } from './result.ts'

/** A saved run that cannot be read or merged: the message names the file, what is wrong, and what to do. */
export class SavedRunError extends Error {
  override name = 'SavedRunError'
}

const MODE_NAMES: readonly string[] = ['quick', 'full', 'tiny']

type Json = Record<string, unknown>

function isObject (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * The run fields of `v` (the top of a result, or one of its `earlierRuns`), checked;
 * `sections` is given by the caller when the shape had none.
 */
function runFields (v: Json, where: string, sections: Section[] | undefined, fail: (what: string) => never): BenchRun {
  if (typeof v.version !== 'string') fail(`${where}: "version" is not a string`)
  if (typeof v.mode !== 'string' || !MODE_NAMES.includes(v.mode)) fail(`${where}: "mode" is ${JSON.stringify(v.mode)}, not one of ${MODE_NAMES.join(', ')}`)
  if (v.commit !== null && typeof v.commit !== 'string') fail(`${where}: "commit" is neither a string nor null`)
  if (typeof v.startedAt !== 'string' || Number.isNaN(Date.parse(v.startedAt))) fail(`${where}: "startedAt" is not a date`)
  if (typeof v.wallMs !== 'number') fail(`${where}: "wallMs" is not a number`)
  const m = v.machine
  if (!isObject(m) || typeof m.cpus !== 'number' || typeof m.loadStart !== 'number' || typeof m.loadEnd !== 'number') fail(`${where}: "machine" lacks cpus, loadStart or loadEnd`)
  if (v.note != null && typeof v.note !== 'string') fail(`${where}: "note" is neither a string nor null`)
  if (v.command != null && typeof v.command !== 'string') fail(`${where}: "command" is not a string`)
  let own = sections
  if (own == null) {
    const listed = v.sections
    if (!Array.isArray(listed)) fail(`${where}: "sections" is not a list of sections`)
    const unknown = (listed as unknown[]).filter(s => typeof s !== 'string' || !(SECTIONS as readonly string[]).includes(s))
    if (unknown.length > 0) fail(`${where}: "sections" names ${unknown.map(s => JSON.stringify(s)).join(', ')}, not a section of this bench (${SECTIONS.join(', ')})`)
    own = listed as Section[]
  }
  const run: BenchRun = {
    version: v.version,
    mode: v.mode as BenchRun['mode'],
    commit: v.commit,
    startedAt: v.startedAt,
    wallMs: v.wallMs,
    machine: m as unknown as BenchRun['machine'],
    note: v.note ?? null,
    sections: own
  }
  if (typeof v.command === 'string') run.command = v.command
  return run
}

/**
 * A result from its JSON text (what `--json` printed, npm's banner before it allowed, or
 * a saved run.json), checked and brought to the current shape. A run saved before runs
 * were merged has no `sections` and no `earlierRuns`: the sections it measured are those
 * with figures or an error, and sections added to the bench since it was made are null.
 * Anything else that does not fit is a {@link SavedRunError}, never a half-read result.
 */
export function parseRun (text: string, file: string): BenchResult {
  const fail = (what: string): never => {
    throw new SavedRunError(`${file}: ${what}; fix or remove it, or write this run's report alone with --replace`)
  }
  let v: unknown
  try {
    v = JSON.parse(text.slice(Math.max(0, text.search(/^\{/m))))
  } catch (err) {
    return fail(`not JSON (${(err as Error).message})`)
  }
  if (!isObject(v) || v.benchmark !== 'upgossip') return fail('not the JSON of an upgossip bench run')
  if (!Array.isArray(v.targets)) fail('"targets" is not a list')
  for (const [i, t] of (v.targets as unknown[]).entries()) {
    if (!isObject(t) || typeof t.name !== 'string' || typeof t.target !== 'string' || (t.value !== null && typeof t.value !== 'number')) fail(`targets[${i}] is not a target (name, target, value)`)
  }
  if (!isObject(v.errors)) fail('"errors" is not an object')
  const errors = v.errors as Json
  const figures: Partial<Record<Section, unknown>> = {}
  for (const section of SECTIONS) {
    const value = v[section] ?? null
    const shaped = section === 'simulation' ? Array.isArray(value) : isObject(value)
    if (value !== null && !shaped) fail(`"${section}" is ${section === 'simulation' ? 'not a list' : 'not an object'} (nor null)`)
    figures[section] = value
  }
  for (const [key, error] of Object.entries(errors)) {
    if (!(SECTIONS as readonly string[]).includes(sectionOf(key))) fail(`"errors" has ${JSON.stringify(key)}, not of a section of this bench`)
    if (typeof error !== 'string') fail(`errors[${JSON.stringify(key)}] is not a string`)
  }
  const older = v.sections === undefined && v.earlierRuns === undefined
  // before merging, a run's sections were those with figures, or with an error
  const measured = older ? SECTIONS.filter(s => figures[s] !== null || Object.keys(errors).some(k => sectionOf(k) === s)) : undefined
  const run = runFields(v, 'the run', measured, fail)
  if (!Array.isArray(v.earlierRuns ?? [])) fail('"earlierRuns" is not a list')
  const earlierRuns = ((v.earlierRuns ?? []) as unknown[]).map((x, i) => isObject(x) ? runFields(x, `earlierRuns[${i}]`, undefined, fail) : fail(`earlierRuns[${i}] is not an object`))
  const claimed = new Map<Section, string>()
  for (const [i, x] of [run, ...earlierRuns].entries()) {
    const where = i === 0 ? 'the run' : `earlierRuns[${i - 1}]`
    for (const s of x.sections) {
      const other = claimed.get(s)
      if (other != null) fail(`both ${other} and ${where} claim the ${s} section`)
      claimed.set(s, where)
    }
  }
  for (const section of SECTIONS) {
    if (figures[section] !== null && !claimed.has(section)) fail(`"${section}" has figures, but no run in the file measured it`)
  }
  return {
    benchmark: 'upgossip',
    ...run,
    swarm: figures.swarm as BenchResult['swarm'],
    announce: figures.announce as BenchResult['announce'],
    shim: figures.shim as BenchResult['shim'],
    rollout: figures.rollout as BenchResult['rollout'],
    footprint: figures.footprint as BenchResult['footprint'],
    simulation: figures.simulation as BenchResult['simulation'],
    process: figures.process as BenchResult['process'],
    targets: v.targets as BenchResult['targets'],
    errors,
    earlierRuns
  }
}

/** The saved run in `file`, checked (see {@link parseRun}); null when there is no such file. */
export function readSavedRun (file: string): BenchResult | null {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new SavedRunError(`${file}: cannot be read (${(err as Error).message})`)
  }
  return parseRun(text, file)
}

/**
 * `run` written over `saved`: the sections `run` measured (failed ones included) are its
 * own; every other section keeps the saved figures, errors and run. Earlier runs left
 * with no section of their own are dropped, and the targets are checked again on the
 * merged figures, so each one is that of its section's run.
 */
export function mergeRuns (saved: BenchResult, run: BenchResult): BenchResult {
  const now = new Set(run.sections)
  const keep = (s: Section): boolean => !now.has(s)
  const earlierRuns = [saved, ...saved.earlierRuns]
    .map((x): BenchRun => {
      const kept: BenchRun = { version: x.version, mode: x.mode, commit: x.commit, startedAt: x.startedAt, wallMs: x.wallMs, machine: x.machine, note: x.note, sections: x.sections.filter(keep) }
      if (x.command != null) kept.command = x.command
      return kept
    })
    .filter(x => x.sections.length > 0)
  const pick = <S extends Section>(s: S): BenchResult[S] => keep(s) ? (saved[s] ?? null) : (run[s] ?? null)
  const errors: BenchResult['errors'] = {}
  for (const [key, error] of [...Object.entries(saved.errors).filter(([k]) => keep(sectionOf(k))), ...Object.entries(run.errors).filter(([k]) => !keep(sectionOf(k)))]) {
    errors[key as keyof BenchResult['errors']] = error
  }
  const merged: BenchResult = {
    ...run,
    swarm: pick('swarm'),
    announce: pick('announce'),
    shim: pick('shim'),
    rollout: pick('rollout'),
    footprint: pick('footprint'),
    simulation: pick('simulation'),
    process: pick('process'),
    errors,
    earlierRuns
  }
  merged.targets = targets(merged)
  return merged
}
