/**
 * The operator's local policy (`--policy FILE`): schedule rules that apply to every
 * release on this peer, on top of the release's own. `{ "rules": [ … ] }`.
 */
import { z } from 'zod'
import { UpgossipError } from '../errors.js'
import { ScheduleRuleSchema } from '../package/index.js'
import type { ScheduleRule } from '../package/index.js'
import { describeSchemaIssues, readJsonFile, safeParse } from '../schema.js'

/** A policy file is unreadable or invalid. */
export class PolicyInvalidError extends UpgossipError {
  static override name = 'PolicyInvalidError'
}

const PolicySchema = z.strictObject({ rules: z.array(ScheduleRuleSchema).max(32) })

/** Read a local policy file. `module` rules are refused: a local policy has no package to load them from. */
export async function readPolicy (file: string): Promise<ScheduleRule[]> {
  const json = await readJsonFile(file, 'policy', message => new PolicyInvalidError(message))
  const result = safeParse(PolicySchema, json)
  if (!result.success) throw new PolicyInvalidError(describeSchemaIssues(`policy ${file}`, result.error))
  if (result.data.rules.some(r => r.rule === 'module')) throw new PolicyInvalidError(`policy ${file}: "module" rules belong in a release's manifest, not in a local policy`)
  return result.data.rules
}
