/**
 * Release ids this peer turned down, so beats that name them do not trigger syncs
 * forever. Bounded; cleared whenever what would be admitted may have changed (a
 * rotation, a revocation, another running version).
 */
import type { UpgossipError } from '../errors.js'
import { VersionNotNewerError } from '../release/index.js'

/** Most ids remembered. */
const MAX_TURNED_DOWN = 1024

/** Ids of releases turned down. */
export class TurnedDown {
  private readonly ids = new Set<string>()

  /**
   * Remember a refusal. Not one turned down as "not newer": that depends on what runs
   * here, which a rollback in progress is about to change (a twin of a revoked release
   * must get in).
   */
  remember (refusal: { id?: string, error: UpgossipError }): void {
    const id = refusal.id
    if (id == null || refusal.error instanceof VersionNotNewerError) return
    this.ids.add(id)
    if (this.ids.size > MAX_TURNED_DOWN) this.ids.delete(this.ids.values().next().value as string)
  }

  /** Whether `id` was turned down. */
  has (id: string): boolean {
    return this.ids.has(id)
  }

  /** Forget every refusal: what this peer admits may have changed. */
  clear (): void {
    this.ids.clear()
  }
}
