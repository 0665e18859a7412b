/**
 * The frames of `/upgossip/blocks/2.0.0`, its limits and its named errors. One frame is
 * one dag-cbor map carrying any of: want-lists (`wantHave`, `wantBlock`, `cancel`),
 * announcements (`have`, `dontHave`), and at most one `block`. Small messages of one tick
 * travel together in one frame; a block travels with whatever small messages were queued
 * when it went out. docs/wire.md ("Block exchange") has the table; their bytes are
 * written and read in `block-frame-codec.ts`.
 *
 * @example
 * ```ts
 * countMessages(frame, (kind, n) => { metrics.blockMessages(kind, n) })
 * if (isEmptyFrame(frame)) throw new BlockProtocolError('an empty frame')
 * ```
 */
import type { CID } from 'multiformats/cid'
import { UpgossipError } from '../errors.js'

/** A block-exchange message that breaks the protocol. */
export class BlockProtocolError extends UpgossipError {
  static override name = 'BlockProtocolError'
}

/** A peer did not answer a block request in time (slow or stalling: not proof of lying). */
export class BlockTimeoutError extends UpgossipError {
  static override name = 'BlockTimeoutError'
}

/** Most CIDs in one `have` request (1.x), and in one list of a 2.0.0 frame. */
export const MAX_HAVE_CIDS = 1024
/** Most CIDs in one `get` request (1.x), and most `wantBlock`s one peer may have unanswered (2.0.0). */
export const MAX_GET_CIDS = 32
/** Largest block exchanged. */
export const MAX_BLOCK_BYTES = 1024 * 1024
/** Most CIDs on the want-list a 2.0.0 peer keeps for another (waiting to push `have`). */
export const MAX_WANT_LIST = 1024
/** Most CIDs one peer may name in `wantHave` and `wantBlock` per second, over a burst of as many (2.0.0). */
export const MAX_WANTS_PER_SECOND = 4096
/** Largest 2.0.0 frame: a block, plus a full list of each small kind. */
export const MAX_BLOCK_FRAME = MAX_BLOCK_BYTES + 5 * MAX_HAVE_CIDS * 48 + 256

/** One frame of blocks 2.0.0; every key optional, none unknown. */
export interface BlockFrame {
  /** Which of these do you hold? Answer each (`have` / `dontHave`); tell me `have` when one you lack arrives. */
  wantHave?: CID[]
  /** Send me these (each answered by a `block`, or `dontHave`: not from me now). */
  wantBlock?: CID[]
  /** I no longer want these: off the want-list, and not sent if not sent yet. */
  cancel?: CID[]
  /** I hold these. */
  have?: CID[]
  /** I do not hold these (or, for a `wantBlock`: not from me now). */
  dontHave?: CID[]
  /** One block. */
  block?: { cid: CID, bytes: Uint8Array }
}

/** The kinds of message a frame carries, as counted (`upgossip_block_messages_total{kind}`). */
export type BlockMessageKind = 'want-have' | 'want-block' | 'cancel' | 'have' | 'dont-have' | 'block'

const LISTS = ['wantHave', 'wantBlock', 'cancel', 'have', 'dontHave'] as const
/** The counted kind of each list. */
export const KIND_OF: Record<typeof LISTS[number], BlockMessageKind> = { wantHave: 'want-have', wantBlock: 'want-block', cancel: 'cancel', have: 'have', dontHave: 'dont-have' }

/** Each message of a frame, counted by kind. */
export function countMessages (frame: BlockFrame, count: (kind: BlockMessageKind, n: number) => void): void {
  for (const list of LISTS) {
    const n = frame[list]?.length ?? 0
    if (n > 0) count(KIND_OF[list], n)
  }
  if (frame.block != null) count('block', 1)
}

/** Whether a frame carries nothing. */
export function isEmptyFrame (frame: BlockFrame): boolean {
  return frame.block == null && LISTS.every(list => (frame[list]?.length ?? 0) === 0)
}
