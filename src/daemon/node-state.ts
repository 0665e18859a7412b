/**
 * What the peer runs: its app and current release, kept durably in `node.json`.
 */
import fs from 'node:fs/promises'
import { z } from 'zod'
import { UpgossipError } from '../errors.js'
import { safeParse } from '../schema.js'
import { writeJsonAtomic } from '../store/index.js'

const Installed = z.strictObject({ id: z.string(), version: z.string() })
const NodeStateSchema = z.strictObject({
  app: z.string().nullable(),
  current: Installed.nullable(),
  /** The release `current` replaced, kept (package and state) for rollback. */
  previous: Installed.nullable().default(null),
  /** When `current` started running (ms since the epoch). */
  since: z.number().nullable().default(null)
})

/** The app this peer serves and the release it runs. */
export type NodeState = z.infer<typeof NodeStateSchema>

/** Read `node.json`, or the empty state on first start. */
export async function readNodeState (file: string): Promise<NodeState> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch {
    return { app: null, current: null, previous: null, since: null }
  }
  const result = safeParse(NodeStateSchema, JSON.parse(text))
  if (!result.success) throw new UpgossipError(`${file} is damaged; restore it from a backup or start with a fresh --data directory`)
  return result.data
}

/** Write `node.json` durably. */
export async function writeNodeState (file: string, state: NodeState): Promise<void> {
  await writeJsonAtomic(file, state)
}
