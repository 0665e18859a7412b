/**
 * Garbage collection of packages and state directories after a switch: what the current
 * and previous versions, releases still to come and older peers' SO chains need is kept,
 * the rest removed.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { ReleaseBook } from '../release/index.js'
import { removeTree } from '../store/index.js'
import type { DataDir } from '../store/index.js'
import type { NodeStateStore } from './node-state.js'

/** What the collection reads. */
export interface PackageGarbageComponents {
  dataDir: Pick<DataDir, 'packages' | 'states'>
  book: Pick<ReleaseBook, 'summaries'>
  nodeState: Pick<NodeStateStore, 'state'>
}

/** Keep the packages and states of the current and previous versions, and of releases still to come; remove the rest. */
export async function collectGarbage (c: PackageGarbageComponents): Promise<void> {
  const state = c.nodeState.state
  const keepStates = new Set([state.current?.id, state.previous?.id].filter((x): x is string => x != null))
  // releases still to come, and those whose simulation objects older peers' chains need
  const keepPackages = new Set([...keepStates, ...c.book.summaries().filter(e => ['fetching', 'staged', 'waiting', 'upgrading'].includes(e.state) ||
    e.simulation).map(e => e.id)])
  for (const [dir, keep] of [['state', keepStates], ['packages', keepPackages]] as const) {
    const root = dir === 'state' ? c.dataDir.states : c.dataDir.packages
    for (const name of await fs.readdir(root).catch(() => [] as string[])) {
      if (name.startsWith('.') || keep.has(name)) continue
      await removeTree(path.join(root, name))
    }
  }
}
