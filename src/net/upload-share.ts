/**
 * Sharing a peer's upload among the peers fetching the same package: a large block sent
 * to one connected peer lately is answered `missing` ("not from me now") the first time
 * another peer asks for it, so fetching peers take it from each other instead of all
 * from the publisher. Asked again by the same peer (it looked elsewhere and did not find
 * it), it is sent. Pure and clock-injected; the block exchange serves through it.
 *
 * @example
 * ```ts
 * const share = new UploadShare({ connected: peer => node.getPeers().some(p => p.toString() === peer) })
 * if (!share.leaveToOthers(cid.toString(), from, bytes.byteLength)) { send(bytes); share.sent(cid.toString(), from, bytes.byteLength) }
 * ```
 */

/** What the share needs. */
export interface UploadShareInit {
  /** Whether this peer is connected to `peer` now (a peer that left cannot pass a block on). */
  connected: (peer: string) => boolean
  /** How long a block sent to one peer is left to that peer (0: never). */
  shareMs?: number
  now?: () => number
}

/** Default of {@link UploadShareInit.shareMs}. */
export const DEFAULT_SHARE_MS = 30_000
/**
 * Smallest block left to others: directory and file nodes and small files are on every
 * fetch's critical path and cost less to send than a detour costs in round trips.
 */
export const SHARE_MIN_BYTES = 64 * 1024
/** Most blocks whose last recipient is remembered. */
const MAX_SHARED = 4096
/** Most askers remembered per block. */
const MAX_DECLINED = 256

/** A large block sent lately: to whom, when, and who was since told to look elsewhere. */
interface Shared {
  peer: string
  at: number
  declined: Set<string>
}

/** Which blocks to leave to the peers they were sent to. */
export class UploadShare {
  private readonly init: UploadShareInit
  private readonly shared = new Map<string, Shared>()
  /** Blocks fetched here lately, and when: passed on to every asker. */
  private readonly fresh = new Map<string, number>()

  constructor (init: UploadShareInit) {
    this.init = init
  }

  private now (): number {
    return this.init.now?.() ?? Date.now()
  }

  private get shareMs (): number {
    return this.init.shareMs ?? DEFAULT_SHARE_MS
  }

  /**
   * Whether to answer `missing` to `to` for the block `key` of `size` bytes: it was sent
   * to another peer lately, that peer is still connected, and `to` has not been told so
   * before (it counts as told from now on).
   */
  leaveToOthers (key: string, to: string, size: number): boolean {
    const last = this.shared.get(key)
    if (this.shareMs <= 0 || size < SHARE_MIN_BYTES || last == null || last.peer === to || last.declined.has(to) || this.now() - last.at >= this.shareMs) return false
    if (this.now() - (this.fresh.get(key) ?? -Infinity) < this.shareMs) return false
    if (!this.init.connected(last.peer)) return false
    if (last.declined.size < MAX_DECLINED) last.declined.add(to)
    return true
  }

  /**
   * The block `key` came here from a peer: for a while it is sent to every peer that asks. A
   * block spreads through the peers that just got it; only a seed's uplink (the
   * publisher's, a peer's that held the package before) is left to others.
   */
  fetched (key: string): void {
    if (this.shareMs <= 0) return
    this.fresh.delete(key)
    this.fresh.set(key, this.now())
    if (this.fresh.size > MAX_SHARED) this.fresh.delete(this.fresh.keys().next().value as string)
  }

  /** The block `key` was sent to `to`. */
  sent (key: string, to: string, size: number): void {
    if (size < SHARE_MIN_BYTES) return
    const last = this.shared.get(key)
    if (last != null && this.now() - last.at < this.shareMs) return
    this.shared.delete(key)
    this.shared.set(key, { peer: to, at: this.now(), declined: new Set() })
    if (this.shared.size > MAX_SHARED) this.shared.delete(this.shared.keys().next().value as string)
  }
}
