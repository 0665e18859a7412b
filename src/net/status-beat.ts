/**
 * Status beats: the small record each peer gossips every few seconds on
 * `upgossip/<network>/status`, and the network view built from them.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { z } from 'zod'
import { decodeDagCbor } from '../dag-cbor.js'
import { MalformedInputError } from '../errors.js'
import { describeSchemaIssues, safeParse } from '../schema.js'

/** A status beat that is not dag-cbor or does not match the schema. */
export class MalformedBeatError extends MalformedInputError {
  static override name = 'MalformedBeatError'
}

/** Largest encoded beat. */
export const MAX_BEAT_BYTES = 16 * 1024

/** Longest idle interval a beat may announce (`idle`): 10 minutes. */
export const MAX_IDLE_BEAT_MS = 10 * 60_000

/**
 * How many idle intervals a peer may stay silent before others drop it from their view,
 * when that is longer than their `peerTimeout`: one lost beat and a late one.
 */
export const IDLE_BEATS_TO_EXPIRE = 3

/**
 * The interval between idle beats for a view of `viewSize` peers: long enough that the
 * whole network sends at most `rate` idle beats per second (every peer takes in every
 * beat, so at a fixed interval the work grows with the square of the network), never
 * shorter than `minMs` nor longer than {@link MAX_IDLE_BEAT_MS}.
 */
export function idleBeatIntervalFor (viewSize: number, minMs: number, rate: number): number {
  return Math.min(MAX_IDLE_BEAT_MS, Math.max(minMs, Math.ceil(viewSize * 1000 / rate)))
}

/** What a timer tick knows when it decides whether to beat. */
export interface BeatTick {
  /** The beat's body now, with a download's progress in tenths; and with progress only as done or not. */
  body: string
  steady: string
  /** The same of the last beat sent. */
  lastBody: string
  lastSteady: string
  /** ms since the last beat was sent. */
  since: number
  /** The idle interval now, and the one the last beat announced (others expect a beat within it). */
  idle: number
  lastIdle: number
  /** Half the tick: a beat due within it goes out now. */
  slack: number
}

/**
 * Whether a timer tick sends a beat: when the status changed — a download's progress alone
 * at most ten times per idle interval (every tick at the default interval) — or when the
 * idle interval has passed. Never later than the interval the last beat announced: others
 * keep this peer in view on that promise, even if the interval has grown since.
 */
export function beatNow (t: BeatTick): boolean {
  const idle = Math.min(t.idle, t.lastIdle)
  if (t.since >= idle - t.slack) return true
  if (t.body === t.lastBody) return false
  if (t.steady !== t.lastSteady) return true
  return t.since >= idle / 10 - t.slack
}

/** How long a peer's entry stays in the view after its last beat: `peerTimeout`, or longer when it announced long idle intervals. */
export function entryLifetime (beat: StatusBeat, peerTimeoutMs: number): number {
  return Math.max(peerTimeoutMs, IDLE_BEATS_TO_EXPIRE * (beat.idle ?? 0))
}

/** Longest `build` a beat may carry (`0.1.0 (1a2b3c4)` is 15 characters). */
export const MAX_BEAT_BUILD = 64

/** Longest `waiting.reason` a beat carries; senders cut longer ones. */
export const MAX_WAITING_REASON = 256

/** A reason cut to fit `waiting.reason` (UTF-16 units, as the schema counts; never half a surrogate pair). */
export function cutWaitingReason (reason: string): string {
  if (reason.length <= MAX_WAITING_REASON) return reason
  let cut = reason.slice(0, MAX_WAITING_REASON - 1)
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1)
  return `${cut}…`
}

// schedule rule names (`rolling`, `halt-on-failures`, …) and the daemon's own (`hold`, `schedule`)
const RULE_NAME = /^[a-z][a-z0-9-]{0,63}$/

const WaitingSchema = z.object({
  id: z.string().max(128),
  on: z.string().regex(RULE_NAME, { message: 'a rule name: lowercase letters, digits and "-", at most 64' }),
  reason: z.string().max(MAX_WAITING_REASON).optional()
})

const PEER_STATES = ['installing', 'running', 'upgrading', 'rolling-back', 'failed'] as const

// Keys this build does not know are dropped, not refused: a network upgrades upgossip
// itself peer by peer, and an older daemon must keep reading a newer one's beats (the
// 16 KiB limit bounds what an extra key can cost).
const BeatSchema = z.object({
  v: z.literal(1),
  seq: z.number().int().min(0),
  app: z.string().max(64).nullable(),
  version: z.string().max(256).nullable(),
  state: z.enum(PEER_STATES),
  labels: z.record(z.string().max(64), z.string().max(256)).refine(l => Object.keys(l).length <= 32, { message: 'at most 32 labels' }),
  addrs: z.array(z.string().max(256)).max(16),
  heads: z.record(z.string().max(64), z.string().max(128)).refine(h => Object.keys(h).length <= 32, { message: 'at most 32 apps' }),
  held: z.array(z.object({ id: z.string().max(128), have: z.number().int().min(0), size: z.number().int().min(0) })).max(32),
  /** The running version's own app protocol version. */
  protocol: z.number().int().positive().nullable().optional(),
  /** When the peer started running its current version (ms since the epoch). */
  since: z.number().int().min(0).nullable().optional(),
  /** The release the peer is switching to now. */
  upgrading: z.string().max(128).nullable().optional(),
  /** The release the peer claims a start slot for (the claim step of rolling and canary). */
  claim: z.string().max(128).nullable().optional(),
  /** Releases that failed on this peer: the halt-on-failures rule counts them. */
  failed: z.array(z.string().max(128)).max(16).optional(),
  /** The release this peer waits to switch to, and the schedule rule it waits on (for dashboards). */
  waiting: WaitingSchema.nullable().optional(),
  /** The sequence of each app's trust policy where a rotation was adopted (absent: 0); a peer behind syncs. */
  trust: z.record(z.string().max(64), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).refine(t => Object.keys(t).length <= 32, { message: 'at most 32 apps' }).optional(),
  /**
   * The longest this peer stays silent while nothing changes (ms): others keep it in view
   * for {@link IDLE_BEATS_TO_EXPIRE} × this when that is longer than their `peerTimeout`.
   * Absent in beats of daemons from before it (they beat at a fixed interval).
   */
  idle: z.number().int().min(0).max(MAX_IDLE_BEAT_MS).optional(),
  /**
   * The upgossip build of the peer's daemon, `0.1.0 (1a2b3c4)`: printable ASCII, at most
   * {@link MAX_BEAT_BUILD} characters. Absent in beats of daemons from before it.
   */
  build: z.string().regex(/^[\x20-\x7e]+$/, { message: 'printable ASCII' }).max(MAX_BEAT_BUILD).optional(),
  /** The peer's last beat before a planned stop: it holds no slot, and shows as stopped until it beats again. */
  stopping: z.literal(true).optional()
})

/** What a peer says about itself. */
export type StatusBeat = z.infer<typeof BeatSchema>

/** Encode a beat. */
export function encodeBeat (beat: StatusBeat): Uint8Array {
  return dagCbor.encode(beat)
}

/**
 * The `waiting` field of this peer's beat: the reason cut to fit, and null when a value
 * would not pass the schema, so a dashboard-only field can never keep a beat from going out.
 */
export function beatWaiting (id: string, on: string, reason?: string): z.infer<typeof WaitingSchema> | null {
  const result = safeParse(WaitingSchema, { id, on, ...(reason == null ? {} : { reason: cutWaitingReason(reason) }) })
  return result.success ? result.data : null
}

/** Decode and validate a beat; throws {@link MalformedBeatError}. */
export function decodeBeat (bytes: Uint8Array): StatusBeat {
  if (bytes.byteLength > MAX_BEAT_BYTES) throw new MalformedBeatError(`status beat of ${bytes.byteLength} bytes is over the ${MAX_BEAT_BYTES}-byte limit`)
  let value: unknown
  try {
    value = decodeDagCbor(bytes)
  } catch (err) {
    throw new MalformedBeatError(`status beat is not dag-cbor: ${(err as Error).message}`)
  }
  const result = safeParse(BeatSchema, value)
  if (!result.success) throw new MalformedBeatError(describeSchemaIssues('status beat', result.error))
  return result.data
}

/** One peer as the network view holds it. */
export interface ViewEntry {
  peerId: string
  beat: StatusBeat
  /** When the last beat arrived (ms since the epoch, local clock). */
  seen: number
}

/**
 * The other peers, from their beats; silent peers age out, and the view is bounded: past
 * `maxPeers` the stalest entry leaves, unless it is a peer `kept` names (the directly
 * connected ones), so that ids relayed by gossip, which cost nothing, cannot push out a
 * peer that holds a connection.
 */
export class NetworkView {
  private readonly peers = new Map<string, ViewEntry>()
  private readonly maxPeers: number
  private readonly kept: () => ReadonlySet<string>

  constructor (maxPeers = 4096, kept: () => ReadonlySet<string> = () => new Set()) {
    this.maxPeers = maxPeers
    this.kept = kept
  }

  /**
   * Record a beat. Returns false for a replay (a sequence number not above the last
   * one seen from that peer), which callers treat as IGNORE.
   */
  update (peerId: string, beat: StatusBeat, now: number): boolean {
    const known = this.peers.get(peerId)
    if (known != null && beat.seq <= known.beat.seq) return false
    this.peers.delete(peerId)
    this.peers.set(peerId, { peerId, beat, seen: now })
    if (this.peers.size > this.maxPeers) this.dropStalest()
    return true
  }

  /** The map keeps insertion order and updates re-insert: the first entry not kept is the stalest that may go. */
  private dropStalest (): void {
    const kept = this.kept()
    let first: string | undefined
    for (const id of this.peers.keys()) {
      first ??= id
      if (!kept.has(id)) {
        this.peers.delete(id)
        return
      }
    }
    if (first != null) this.peers.delete(first)
  }

  /**
   * Forget peers silent for longer than `peerTimeout`, or than {@link IDLE_BEATS_TO_EXPIRE}
   * of their announced idle intervals where that is longer; returns the ids removed.
   */
  expire (now: number, peerTimeoutMs: number): string[] {
    const gone: string[] = []
    for (const [id, entry] of this.peers) {
      if (now - entry.seen > entryLifetime(entry.beat, peerTimeoutMs)) {
        this.peers.delete(id)
        gone.push(id)
      }
    }
    return gone
  }

  /** One peer. */
  get (peerId: string): ViewEntry | undefined {
    return this.peers.get(peerId)
  }

  /** Every peer in view. */
  list (): ViewEntry[] {
    return [...this.peers.values()]
  }

  /** Whether every peer in view announces its idle interval (runs a daemon that reads `idle`). */
  allAnnounceIdle (): boolean {
    for (const entry of this.peers.values()) if (entry.beat.idle == null) return false
    return true
  }

  /** Number of peers in view. */
  get size (): number {
    return this.peers.size
  }
}
