/**
 * Peer ids as people type them on the command line: the full id, any unique prefix of at
 * least 8 characters, or the short form `status` prints (`12D3KooWAb…x7Yz9Q`, also with
 * `...`), resolved against the peers a daemon knows (its view and itself).
 *
 * @example
 * ```ts
 * resolvePeerId('12D3KooWAbCdEf', known) // the one known id that starts so
 * ```
 */
import { UpgossipError } from '../errors.js'
import { editDistance } from '../nearest-name.js'
import type { DaemonStatus } from '../daemon/index.js'
import { callDaemon } from './control-client.js'
import type { ControlEndpoint } from './control-client.js'
import { shortId } from '../short-id.js'

/** Shortest prefix taken for a peer id (every Ed25519 peer id starts with the same 8: `12D3KooW`). */
export const MIN_PEER_PREFIX = 8

/** A peer id that no known peer has. */
export class UnknownPeerError extends UpgossipError {
  static override name = 'UnknownPeerError'
}

/** A peer id (a prefix, a short form) that more than one known peer matches. */
export class AmbiguousPeerError extends UpgossipError {
  static override name = 'AmbiguousPeerError'
}

/** A peer the id is resolved against. */
export interface KnownPeer {
  peerId: string
  app?: string | null
  version?: string | null
  self?: boolean
}

/** The short form `status` prints: the first 10 characters, `…`, the last 6. */
export const shortPeerId = shortId

/** Edit distance, as the "did you mean" of every schema error counts it (a swap of two neighbours is one edit). */
export { editDistance }

/** The parts of a short form (`head…tail` or `head...tail`), or undefined for a plain id or prefix. */
function shortForm (input: string): { head: string, tail: string } | undefined {
  const m = /^([^.…]*)(?:…|\.{2,3})([^.…]*)$/.exec(input)
  return m == null ? undefined : { head: m[1] as string, tail: m[2] as string }
}

/** How far `input` is from `id`: edit distance to the part of the id it stands for. */
function distance (input: string, id: string): number {
  const short = shortForm(input)
  if (short != null) return editDistance(short.head, id.slice(0, short.head.length)) + editDistance(short.tail, id.slice(id.length - short.tail.length))
  return editDistance(input, id.slice(0, input.length))
}

function describe (p: KnownPeer): string {
  const notes = [[p.app, p.version].filter(x => x != null).join(' '), p.self === true ? 'this peer' : ''].filter(n => n !== '')
  return `${p.peerId}${notes.length === 0 ? '' : ` (${notes.join(', ')})`}`
}

/** The `count` known peers closest to what was typed, on one line (a refusal is one line: docs/cli.md, "Exit codes"). */
function closest (input: string, known: KnownPeer[], count = 3): string {
  const ranked = known.map(p => ({ p, d: distance(input, p.peerId) })).sort((a, b) => a.d !== b.d ? a.d - b.d : a.p.peerId.localeCompare(b.p.peerId))
  return ranked.slice(0, count).map(({ p }) => describe(p)).join(', ')
}

/** A whole peer id as libp2p prints them (base58btc, 46 characters or more): not a prefix. */
const FULL_PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{46,}$/

/**
 * The one known peer `input` names; throws {@link UnknownPeerError} or {@link AmbiguousPeerError}
 * listing the closest ones. A whole id is taken as it is even when no beat of that peer
 * was heard (a peer connected but not in view yet, a node that is no daemon): the daemon
 * tries it, and says so when it cannot reach it.
 */
export function resolvePeerId (input: string, known: KnownPeer[]): string {
  const typed = input.trim()
  const exact = known.find(p => p.peerId === typed)
  if (exact != null) return exact.peerId
  if (FULL_PEER_ID.test(typed)) return typed
  const short = shortForm(typed)
  const length = short == null ? typed.length : short.head.length + short.tail.length
  if (length < MIN_PEER_PREFIX) {
    throw new UnknownPeerError(`"${input}" is too short for a peer id: give the full id, a prefix of at least ${MIN_PEER_PREFIX} characters or the short form "upgossip status" prints${known.length === 0 ? '' : `; known peers: ${closest(typed, known)}`}`)
  }
  const matches = known.filter(p => short == null ? p.peerId.startsWith(typed) : p.peerId.length >= length && p.peerId.startsWith(short.head) && p.peerId.endsWith(short.tail))
  if (matches.length === 1) return (matches[0] as KnownPeer).peerId
  if (matches.length > 1) {
    throw new AmbiguousPeerError(`"${input}" matches ${matches.length} peers; give more characters (${closest(typed, matches, 5)})`)
  }
  if (known.length === 0) throw new UnknownPeerError(`no peer "${input}" is known to this daemon, which has heard of no other peer yet`)
  throw new UnknownPeerError(`no peer "${input}" is known to this daemon; the closest known: ${closest(typed, known)}`)
}

/** The peers a daemon knows: itself and its view of the network. */
export function knownPeers (status: DaemonStatus): KnownPeer[] {
  return [{ peerId: status.peerId, app: status.app, version: status.version, self: true }, ...status.network.map(p => ({ peerId: p.peerId, app: p.app, version: p.version }))]
}

/** Resolve a peer id typed on the command line against the daemon's view (`GET /status`). */
export async function resolvePeerOption (endpoint: ControlEndpoint, input: string): Promise<string> {
  const res = await callDaemon(endpoint, 'GET', '/status')
  return resolvePeerId(input, knownPeers(await res.json() as DaemonStatus))
}
