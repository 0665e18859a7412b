/**
 * Turning zod validation failures into one readable line that names the field,
 * shared by every schema (manifest, trust file, config, control API bodies).
 *
 * @example
 * ```ts
 * const result = safeParse(ManifestSchema, json)
 * if (!result.success) throw new ManifestInvalidError(describeSchemaIssues('upgossip.json', result.error))
 * ```
 */
import fs from 'node:fs/promises'
import { z } from 'zod'
import { didYouMean, nearestName } from './nearest-name.js'

/**
 * Read a JSON file a user named (`what` says which, e.g. "trust file"); a missing or
 * unreadable file and bad JSON become `makeError(message)`, the caller's named error.
 */
export async function readJsonFile (file: string, what: string, makeError: (message: string) => Error): Promise<unknown> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err) {
    throw makeError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw makeError(`${what} ${file} is not valid JSON`)
  }
}

/**
 * `schema.safeParse(value)` that never throws. zod 4 runs a length check even on a value
 * of the wrong type when it has a `length`, and comparing a `length` that is itself a map
 * (`{ "length": { "valueOf": 0 } }`, valid JSON and dag-cbor) throws a TypeError: from
 * outside input that must be a failed parse, like any other. Issues keep the value that
 * was wrong, so {@link describeSchemaIssues} can echo it and suggest the nearest valid one.
 */
export function safeParse<S extends z.ZodType> (schema: S, value: unknown): z.ZodSafeParseResult<z.output<S>> {
  try {
    return schema.safeParse(value, { reportInput: true, error: suggestKnownKeys })
  } catch (err) {
    const error = new z.ZodError([{ code: 'custom', path: [], input: value, message: `a value of the wrong type cannot be checked (${(err as Error).message})` }])
    return { success: false, error: error as z.ZodError<z.output<S>> }
  }
}

/** Marks the message {@link suggestKnownKeys} gives an unknown key: the suggestion, placed after the key's location. */
const SUGGESTION = '\u0000suggest:'

/**
 * An unknown key's issue does not list the keys the object takes; only zod's error map
 * sees the object schema, so it writes the suggestion ("treshold" → "threshold") there.
 */
function suggestKnownKeys (issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code !== 'unrecognized_keys') return undefined
  const shape = (issue.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape
  if (shape == null) return undefined
  const known = Object.keys(shape)
  const near = issue.keys.map(key => ({ key, near: nearestName(key, known) })).filter(k => k.near != null)
  if (near.length === 0) return undefined
  if (issue.keys.length === 1) return `${SUGGESTION}; did you mean "${near[0]?.near ?? ''}"?`
  return `${SUGGESTION}; did you mean ${near.map(k => `"${k.near ?? ''}" for "${k.key}"`).join(', ')}?`
}

function fieldName (path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return ''
  return path.map((part, i) => typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`).join('')
}

/** A value a user wrote, as it is echoed back: JSON, cut short. */
function echo (value: unknown): string {
  let text: string
  try {
    // decoded CBOR may hold bigints and objects without a prototype: neither may throw here
    text = JSON.stringify(value, (_key, v: unknown) => typeof v === 'bigint' ? v.toString() : v) ?? safeString(value)
  } catch {
    text = safeString(value)
  }
  return text.length > 60 ? `${text.slice(0, 57)}…` : text
}

function safeString (value: unknown): string {
  try {
    return String(value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}

function oneOf (values: readonly unknown[]): string {
  return values.map(v => echo(v)).join(', ')
}

/** `rule "rollling" in "schedule[1]" is not a rule; did you mean "rolling"?` */
function describeDiscriminator (issue: z.core.$ZodIssueInvalidUnion & { discriminator?: string, options?: unknown[] }, input: unknown): string {
  const key = issue.discriminator ?? String(issue.path[issue.path.length - 1] ?? '')
  const parent = fieldName(issue.path.slice(0, -1))
  const where = parent === '' ? '' : ` in "${parent}"`
  const options = (issue.options ?? []).map(String)
  const value = input != null && typeof input === 'object' && !Array.isArray(input) ? (input as Record<string, unknown>)[key] : undefined
  if (value === undefined) return `"${key}" is missing${where}: expected one of ${oneOf(options)}`
  const near = didYouMean(value, options)
  return `${key} ${echo(value)}${where} is not a ${key}${near !== '' ? near : `: expected one of ${oneOf(options)}`}`
}

/** `"run.wire": "htp" is not one of "http", "tcp"; did you mean "http"?` */
function describeValue (issue: z.core.$ZodIssueInvalidValue, input: unknown): string {
  const values = issue.values
  if (input === undefined) return `missing: expected ${values.length === 1 ? echo(values[0]) : `one of ${oneOf(values)}`}`
  if (values.length === 1) return `expected ${echo(values[0])}, got ${echo(input)}`
  const near = didYouMean(input, values.filter(v => typeof v === 'string'))
  return `${echo(input)} is not one of ${oneOf(values)}${near}`
}

/** One line per issue, each naming the field: `upgossip.json: unknown key "foo" in "schedule[0]"`. */
export function describeSchemaIssues (what: string, error: z.ZodError): string {
  const lines = error.issues.slice(0, 5).map(issue => {
    const field = fieldName(issue.path)
    const hasInput = 'input' in issue
    if (issue.code === 'invalid_key') {
      const parent = fieldName(issue.path.slice(0, -1))
      const key = String(issue.path[issue.path.length - 1] ?? '')
      const why = issue.issues[0]?.message ?? issue.message
      return `key "${key}"${parent === '' ? '' : ` in "${parent}"`} is not allowed: ${why}`
    }
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map(k => `"${k}"`).join(', ')
      const suggestion = issue.message.startsWith(SUGGESTION) ? issue.message.slice(SUGGESTION.length) : ''
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}${field === '' ? '' : ` in "${field}"`}${suggestion}`
    }
    if (issue.code === 'invalid_union' && 'discriminator' in issue && hasInput) return describeDiscriminator(issue, issue.input)
    const message = issue.code === 'invalid_value' && hasInput ? describeValue(issue, issue.input) : issue.message
    return field === '' ? message : `"${field}": ${message}`
  })
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : ''
  return `${what}: ${lines.join('; ')}${more}`
}
