/**
 * Peer ids as host names, for apps that reach peers through the daemon's HTTP proxy:
 * the peer id as a CIDv1 (libp2p-key codec) in base36, `k51…` — lower-case and one DNS
 * label of at most 63 characters, as IPFS subdomain gateways write peer ids (HTTP clients
 * lower-case host names, which base58 ids do not survive).
 *
 * @example
 * ```ts
 * peerHost('12D3KooW…')            // 'k51qzi5uqu5d…'
 * peerFromHost('k51qzi5uqu5d…')    // '12D3KooW…', or undefined for anything else
 * ```
 */
import { peerIdFromCID, peerIdFromString } from '@libp2p/peer-id'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'

/** The host name of a peer id. */
export function peerHost (peerId: string): string {
  return peerIdFromString(peerId).toCID().toString(base36)
}

/** The peer id a host name stands for, or `undefined` when it is not one. */
export function peerFromHost (host: string): string | undefined {
  const name = host.toLowerCase()
  if (!/^k[0-9a-z]{1,100}$/.test(name)) return undefined
  try {
    return peerIdFromCID(CID.parse(name, base36)).toString()
  } catch {
    return undefined
  }
}
