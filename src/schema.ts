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
 * outside input that must be a failed parse, like any other.
 */
export function safeParse<S extends z.ZodType> (schema: S, value: unknown): z.ZodSafeParseResult<z.output<S>> {
  try {
    return schema.safeParse(value)
  } catch (err) {
    const error = new z.ZodError([{ code: 'custom', path: [], input: value, message: `a value of the wrong type cannot be checked (${(err as Error).message})` }])
    return { success: false, error: error as z.ZodError<z.output<S>> }
  }
}

function fieldName (path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return ''
  return path.map((part, i) => typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`).join('')
}

/** One line per issue, each naming the field: `upgossip.json: unknown key "foo" in schedule[0]`. */
export function describeSchemaIssues (what: string, error: z.ZodError): string {
  const lines = error.issues.slice(0, 5).map(issue => {
    const field = fieldName(issue.path)
    if (issue.code === 'invalid_key') {
      const parent = fieldName(issue.path.slice(0, -1))
      const key = String(issue.path[issue.path.length - 1] ?? '')
      const why = issue.issues[0]?.message ?? issue.message
      return `key "${key}"${parent === '' ? '' : ` in "${parent}"`} is not allowed: ${why}`
    }
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map(k => `"${k}"`).join(', ')
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}${field === '' ? '' : ` in "${field}"`}`
    }
    return field === '' ? issue.message : `"${field}": ${issue.message}`
  })
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : ''
  return `${what}: ${lines.join('; ')}${more}`
}
