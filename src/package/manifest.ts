/**
 * The manifest, `upgossip.json` at a package's root: what the app is, which version,
 * what it upgrades from, its transform, simulation objects, schedule and health rules.
 * Schema-validated; an unknown key or a wrong type is an error naming the field.
 */
import semver from 'semver'
import { z } from 'zod'
import { isDuration } from '../duration.js'
import { ContentRefusalError } from '../errors.js'
import { describeSchemaIssues, safeParse } from '../schema.js'
import { pathProblem } from './paths.js'

/** The manifest's file name at the package root. */
export const MANIFEST_FILE = 'upgossip.json'

/** Largest manifest accepted, in bytes. */
export const MAX_MANIFEST_BYTES = 64 * 1024

/** The manifest is not valid JSON or does not match the schema. */
export class ManifestInvalidError extends ContentRefusalError {
  static override name = 'ManifestInvalidError'
}

/** The package has no `upgossip.json` at its root. */
export class ManifestMissingError extends ContentRefusalError {
  static override name = 'ManifestMissingError'
}

/** A file the manifest names (`main`, a transform, a simulation object, a schedule module) is not in the package. */
export class ManifestFileMissingError extends ContentRefusalError {
  static override name = 'ManifestFileMissingError'
}

const APP_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/

const duration = z.string().refine(isDuration, { message: 'expected a duration such as 500ms, 20s, 5m, 1h or 30d' })
const packagePath = z.string().superRefine((value, ctx) => {
  const problem = pathProblem(value)
  if (problem != null) ctx.addIssue({ code: 'custom', message: `expected a relative path inside the package, got ${problem}` })
})
const fraction = z.number().gt(0).lte(1)
const labelMap = z.record(z.string().min(1).max(64), z.string().max(256))
const HHMM = '([01]\\d|2[0-3]):[0-5]\\d'
const dailyWindow = z.string().regex(new RegExp(`^${HHMM}-${HHMM}$`), { message: 'expected a daily window such as "02:00-04:00"' })
const timeZone = z.string().refine(tz => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz }).format(0)
    return true
  } catch {
    return false
  }
}, { message: 'expected an IANA time zone such as "UTC" or "Europe/Paris"' })

/** One schedule rule (docs/manifest.md, "Schedule rules"); used by manifests and local policies. */
export const ScheduleRuleSchema = z.discriminatedUnion('rule', [
  z.strictObject({ rule: z.literal('immediate') }),
  z.strictObject({ rule: z.literal('at'), time: z.iso.datetime({ offset: true }) }),
  z.strictObject({ rule: z.literal('window'), daily: dailyWindow, tz: timeZone.default('UTC') }),
  z.strictObject({ rule: z.literal('jitter'), max: duration }),
  z.strictObject({ rule: z.literal('rolling'), max: z.number().int().positive().optional(), maxFraction: fraction.optional() })
    .refine(r => (r.max == null) !== (r.maxFraction == null), { message: 'rolling needs exactly one of "max" or "maxFraction"' }),
  z.strictObject({ rule: z.literal('canary'), fraction: fraction.optional(), labels: labelMap.optional(), soak: duration })
    .refine(r => (r.fraction == null) !== (r.labels == null), { message: 'canary needs exactly one of "fraction" or "labels"' }),
  z.strictObject({ rule: z.literal('after'), fraction }),
  z.strictObject({ rule: z.literal('idle'), maxInFlight: z.number().int().min(0).default(0), for: duration }),
  z.strictObject({ rule: z.literal('approve') }),
  z.strictObject({ rule: z.literal('labels'), match: labelMap }),
  z.strictObject({ rule: z.literal('halt-on-failures'), max: z.number().int().positive() }),
  z.strictObject({ rule: z.literal('module'), path: packagePath, timeLimit: duration.optional() })
])

/** A schedule rule after validation. */
export type ScheduleRule = z.infer<typeof ScheduleRuleSchema>

/** An argv: a program and its arguments, run without a shell. */
const argv = z.array(z.string().min(1).max(4096)).min(1, { message: 'expected a command: a program and its arguments, such as ["python3", "server.py"]' }).max(64)

/** A process app's program (docs/manifest.md, "Process apps"). */
export const RunSchema = z.strictObject({
  command: argv,
  wire: z.enum(['http', 'tcp'])
})

/** The manifest schema; defaults as docs/manifest.md says. */
export const ManifestSchema = z.strictObject({
  app: z.string().regex(APP_NAME, { message: 'expected a lowercase app name: letters, digits, ".", "_" or "-", at most 63 characters' }),
  version: z.string().refine(v => semver.valid(v) === v, { message: 'expected a semver version such as "1.2.0"' }),
  main: packagePath.optional(),
  run: RunSchema.optional(),
  protocol: z.number().int().positive().max(1_000_000),
  upgrades: z.string().refine(r => semver.validRange(r) != null, { message: 'expected a semver range such as "^1.0.0"' }).optional(),
  transform: z.strictObject({ up: packagePath, down: packagePath.optional() }).optional(),
  simulation: z.strictObject({ past: packagePath.optional(), future: packagePath.optional() }).optional(),
  schedule: z.array(ScheduleRuleSchema).max(32).default([{ rule: 'immediate' }]),
  health: z.strictObject({
    readyWithin: duration.default('30s'),
    stableFor: duration.default('5s'),
    // a process app is healthy while GET <path> on its port answers 2xx (without it: while the port accepts connections)
    http: z.string().regex(/^\/[\x21-\x7e]{0,1023}$/, { message: 'expected a path such as "/healthz"' }).optional()
  }).default({ readyWithin: '30s', stableFor: '5s' })
}).superRefine((m, ctx) => {
  if ((m.main == null) === (m.run == null)) {
    ctx.addIssue({ code: 'custom', path: ['main'], message: 'a manifest names exactly one of "main" (a Node.js module using the SDK) or "run" (any program)' })
  }
  if (m.main != null && m.health.http != null) {
    ctx.addIssue({ code: 'custom', path: ['health', 'http'], message: '"health.http" is for process apps ("run"); an SDK app reports its health with ready() and unhealthy()' })
  }
})

/** A validated manifest with defaults filled in. */
export type Manifest = z.infer<typeof ManifestSchema>

/** Validate a manifest value (already parsed JSON); throws {@link ManifestInvalidError}. */
export function parseManifest (value: unknown, where = MANIFEST_FILE): Manifest {
  const result = safeParse(ManifestSchema, value)
  if (!result.success) throw new ManifestInvalidError(describeSchemaIssues(where, result.error))
  return result.data
}

/** Parse the bytes of `upgossip.json`; returns the raw JSON (as the record carries it) and the validated manifest. */
export function readManifestBytes (bytes: Uint8Array, where = MANIFEST_FILE): { json: unknown, manifest: Manifest } {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new ManifestInvalidError(`${where}: ${bytes.byteLength} bytes is larger than the ${MAX_MANIFEST_BYTES}-byte limit`)
  }
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new ManifestInvalidError(`${where}: not valid UTF-8 JSON (${(err as Error).message})`)
  }
  return { json, manifest: parseManifest(json, where) }
}

/** Every package path a manifest refers to, with the field that names it. */
export function manifestFiles (manifest: Manifest): Array<{ field: string, path: string }> {
  const files = manifest.main == null ? [] : [{ field: 'main', path: manifest.main }]
  // a program given as ./name is part of the package; any other is looked up on PATH
  const program = manifest.run?.command[0]
  if (program?.startsWith('./') === true) files.push({ field: 'run.command[0]', path: program.slice(2) })
  if (manifest.transform != null) {
    files.push({ field: 'transform.up', path: manifest.transform.up })
    if (manifest.transform.down != null) files.push({ field: 'transform.down', path: manifest.transform.down })
  }
  if (manifest.simulation?.past != null) files.push({ field: 'simulation.past', path: manifest.simulation.past })
  if (manifest.simulation?.future != null) files.push({ field: 'simulation.future', path: manifest.simulation.future })
  manifest.schedule.forEach((rule, i) => {
    if (rule.rule === 'module') files.push({ field: `schedule[${i}].path`, path: rule.path })
  })
  return files
}

/** Throw {@link ManifestFileMissingError} unless every file the manifest names is among `present`. */
export function assertManifestFilesPresent (manifest: Manifest, present: ReadonlySet<string>): void {
  for (const { field, path } of manifestFiles(manifest)) {
    if (!present.has(path)) {
      throw new ManifestFileMissingError(`${MANIFEST_FILE}: "${field}" names ${path}, which is not in the package`)
    }
  }
}
