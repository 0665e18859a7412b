/**
 * What the peer runs: its app and current release, kept durably in `node.json`.
 */
import { EventEmitter } from 'node:events'
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

/** `node.json` is not valid JSON or does not match its schema. */
export class NodeStateDamagedError extends UpgossipError {
  static override name = 'NodeStateDamagedError'
}

/** The app this peer serves and the release it runs. */
export type NodeState = z.infer<typeof NodeStateSchema>

/** Read `node.json`, or the empty state on first start; throws {@link NodeStateDamagedError}. */
export async function readNodeState (file: string): Promise<NodeState> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch {
    return { app: null, current: null, previous: null, since: null }
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new NodeStateDamagedError(`${file} is not valid JSON; restore it from a backup or start with a fresh --data directory`)
  }
  const result = safeParse(NodeStateSchema, json)
  if (!result.success) throw new NodeStateDamagedError(`${file} is damaged; restore it from a backup or start with a fresh --data directory`)
  return result.data
}

/** Write `node.json` durably. */
export async function writeNodeState (file: string, state: NodeState): Promise<void> {
  await writeJsonAtomic(file, state)
}

/**
 * The node state in force, kept durably: every part reads it here, and only
 * {@link NodeStateStore.set} changes it (listeners hear `change` after the write).
 */
export class NodeStateStore extends EventEmitter<{ change: [after: NodeState, before: NodeState] }> {
  private current: NodeState

  constructor (private readonly file: string, state: NodeState) {
    super()
    this.current = state
  }

  /** Open the store of a data directory (the empty state on first start). */
  static async open (file: string): Promise<NodeStateStore> {
    return new NodeStateStore(file, await readNodeState(file))
  }

  /** The state in force. */
  get state (): NodeState {
    return this.current
  }

  /** The app this peer serves. */
  get app (): string | null {
    return this.current.app
  }

  /** The version of `app` this peer runs; releases must be newer to be admitted. */
  floor (app: string): string | undefined {
    return this.current.app === app ? this.current.current?.version : undefined
  }

  /** Write a new state durably, then tell listeners. */
  async set (state: NodeState): Promise<void> {
    const before = this.current
    await writeNodeState(this.file, state)
    this.current = state
    this.emit('change', state, before)
  }
}
