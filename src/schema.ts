/**
 * Turning zod validation failures into one readable line that names the field,
 * shared by every schema (manifest, trust file, config, control API bodies).
 *
 * @example
 * ```ts
 * const result = ManifestSchema.safeParse(json)
 * if (!result.success) throw new ManifestInvalidError(describeSchemaIssues('upgossip.json', result.error))
 * ```
 */
import type { z } from 'zod'

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
