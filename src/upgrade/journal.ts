/**
 * The upgrade journal (`journal.json`): before each step of a switch, the step is
 * written durably, so a daemon that crashes mid-switch knows on start what to finish
 * or undo. Interrupted attempts are counted per release so a crash loop stops.
 */
import fs from 'node:fs/promises'
import { z } from 'zod'
import { UpgossipError } from '../errors.js'
import { safeParse } from '../schema.js'
import { writeJsonAtomic } from '../store/index.js'

/** The steps of a switch, in order (docs/apps.md, "The steps of a switch"). */
export const UPGRADE_STEPS = ['buffer', 'drain', 'stop', 'snapshot', 'transform', 'start', 'verify', 'commit', 'rollback'] as const

/** One step. */
export type UpgradeStep = typeof UPGRADE_STEPS[number]

/** The journal file is damaged. */
export class JournalDamagedError extends UpgossipError {
  static override name = 'JournalDamagedError'
}

const Version = z.strictObject({ id: z.string(), version: z.string() })
const JournalSchema = z.strictObject({
  attempt: z.strictObject({
    /** `upgrade`: to a newer release; `downgrade`: an operator rollback or a revocation. */
    kind: z.enum(['upgrade', 'downgrade']),
    from: Version,
    to: Version,
    step: z.enum(UPGRADE_STEPS),
    started: z.string(),
    reason: z.string().optional(),
    /** Cut short by a planned stop of the daemon (SIGTERM) past its stop timeout: undone on the next start, not counted. */
    planned: z.boolean().optional()
  }).nullable(),
  /** Interrupted attempts per release id. */
  interrupted: z.record(z.string(), z.number().int().min(0))
})

/** The journal's content. */
export type Journal = z.infer<typeof JournalSchema>
/** A switch in progress. */
export type UpgradeAttempt = NonNullable<Journal['attempt']>

/** Read the journal (empty when absent); throws {@link JournalDamagedError}. */
export async function readJournal (file: string): Promise<Journal> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch {
    return { attempt: null, interrupted: {} }
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new JournalDamagedError(`${file} is not valid JSON; it is written atomically, so this is outside damage: restore it or remove it (the old version then runs)`)
  }
  const result = safeParse(JournalSchema, json)
  if (!result.success) throw new JournalDamagedError(`${file} does not match the journal schema`)
  return result.data
}

/** Write the journal durably. */
export async function writeJournal (file: string, journal: Journal): Promise<void> {
  await writeJsonAtomic(file, journal)
}
