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

/** A file the manifest names (`main`, a transform or its `./` program, a simulation object, a schedule module) is not in the package. */
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
const appName = z.string().regex(APP_NAME, { message: 'expected a lowercase app name: letters, digits, ".", "_" or "-", at most 63 characters' })
const semverRange = z.string().max(256).refine(r => semver.validRange(r) != null, { message: 'expected a semver range such as ">=2.0.0" or "^2.1.0"' })
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

/** The most arguments a command may have. */
export const MAX_COMMAND_ARGS = 64
/** The longest argument of a command, in characters. */
export const MAX_COMMAND_ARG_LENGTH = 4096

/**
 * A command's argv, run without a shell in the package directory: a program `./x` is a
 * file of the package (listed by {@link manifestFiles}), a bare name is looked up on PATH,
 * an absolute path is used as is. `x/y` would be taken from the package directory without
 * being checked to be in the package, so it must be written `./x/y`.
 */
export const CommandArgvSchema = z.array(
  z.string().min(1).max(MAX_COMMAND_ARG_LENGTH).refine(a => !a.includes('\0'), { message: 'expected no NUL byte in an argument' })
).min(1, { message: 'expected a command: a program and its arguments, such as ["python3", "server.py"]' }).max(MAX_COMMAND_ARGS).superRefine((argv, ctx) => {
  const program = argv[0] ?? ''
  if (program.startsWith('./')) {
    const problem = pathProblem(program.slice(2))
    if (problem != null) ctx.addIssue({ code: 'custom', path: [0], message: `a program starting with "./" must be a file inside the package, got ${problem}` })
  } else if (program.includes('/') && !program.startsWith('/')) {
    ctx.addIssue({ code: 'custom', path: [0], message: `write "./${program}" for a program in the package, or a bare name to look it up on PATH` })
  }
})

/** A transform given as a command: argv run in the package directory (docs/manifest.md, "Transforms: a module or a command"). */
export const TransformCommandSchema = z.strictObject({ command: CommandArgvSchema })

/** A transform entry after validation: the package path of an ES module, or a command. */
export type TransformEntry = string | z.infer<typeof TransformCommandSchema>

/**
 * A transform entry. The form is chosen by the value's type, not with `z.union`: a union
 * whose every branch fails on something zod treats as fatal (an argv of 65) reports only
 * "Invalid input", where this names the field and what is wrong with it.
 */
export const TransformEntrySchema = z.unknown().transform((value, ctx): TransformEntry => {
  const schema = typeof value === 'string'
    ? packagePath
    : value != null && typeof value === 'object' && !Array.isArray(value) ? TransformCommandSchema : undefined
  if (schema == null) {
    ctx.addIssue({ code: 'custom', message: 'expected a package path such as "migrate/up.js" or { "command": ["python3", "up.py"] }' })
    return z.NEVER
  }
  const result = schema.safeParse(value)
  if (result.success) return result.data
  for (const issue of result.error.issues) ctx.addIssue({ ...issue })
  return z.NEVER
})

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
  z.strictObject({ rule: z.literal('after'), fraction, app: appName.optional(), version: semverRange.optional() })
    .refine(r => (r.app == null) === (r.version == null), { message: 'after names another app with both "app" and "version" (a semver range), or neither' }),
  z.strictObject({ rule: z.literal('idle'), maxInFlight: z.number().int().min(0).default(0), for: duration }),
  z.strictObject({ rule: z.literal('approve') }),
  z.strictObject({ rule: z.literal('labels'), match: labelMap }),
  z.strictObject({ rule: z.literal('halt-on-failures'), max: z.number().int().positive() }),
  z.strictObject({ rule: z.literal('module'), path: packagePath, timeLimit: duration.optional() })
])

/** A schedule rule after validation. */
export type ScheduleRule = z.infer<typeof ScheduleRuleSchema>

/** A process app's program (docs/manifest.md, "Process apps"). */
export const RunSchema = z.strictObject({
  command: CommandArgvSchema,
  wire: z.enum(['http', 'tcp'])
})

/** The manifest schema; defaults as docs/manifest.md says. */
export const ManifestSchema = z.strictObject({
  app: z.string().regex(APP_NAME, { message: 'expected a lowercase app name: letters, digits, ".", "_" or "-", at most 63 characters' }),
  version: z.string().refine(v => semver.valid(v) === v, { message: 'expected a semver version such as "1.2.0"' }),
  main: packagePath.optional(),
  run: RunSchema.optional(),
  protocol: z.number().int().positive().max(1_000_000),
  // the protocol versions of other classes (apps) this version speaks when it calls their peers
  calls: z.record(appName, z.number().int().positive().max(1_000_000)).refine(c => Object.keys(c).length <= 32, { message: 'at most 32 apps' }).optional(),
  upgrades: z.string().refine(r => semver.validRange(r) != null, { message: 'expected a semver range such as "^1.0.0"' }).optional(),
  transform: z.strictObject({ up: TransformEntrySchema, down: TransformEntrySchema.optional() }).optional(),
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
  if (m.calls?.[m.app] != null) {
    ctx.addIssue({ code: 'custom', path: ['calls', m.app], message: `"calls" names other apps; calls within ${m.app} use its own "protocol"` })
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

/** A package path a manifest refers to; `program` when it is run as a command (so it must be executable). */
export interface ManifestFile {
  field: string
  path: string
  program?: boolean
}

/** Every package path a manifest refers to, with the field that names it. */
export function manifestFiles (manifest: Manifest): ManifestFile[] {
  const files: ManifestFile[] = manifest.main == null ? [] : [{ field: 'main', path: manifest.main }]
  // a program given as ./name is part of the package (and made executable); any other is looked up on PATH
  const program = manifest.run?.command[0]
  if (program?.startsWith('./') === true) files.push({ field: 'run.command[0]', path: program.slice(2), program: true })
  for (const direction of ['up', 'down'] as const) {
    const entry = manifest.transform?.[direction]
    if (typeof entry === 'string') files.push({ field: `transform.${direction}`, path: entry })
    else if (entry?.command[0]?.startsWith('./') === true) files.push({ field: `transform.${direction}.command[0]`, path: entry.command[0].slice(2), program: true })
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
