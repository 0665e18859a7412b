/**
 * Bootstrap addresses, as `--bootstrap` takes them: complete (`/ip4/…/tcp/PORT/p2p/PEERID`,
 * as another peer's control.json lists them), or a transport address alone
 * (`/ip4/…/tcp/PORT`, `/dns4/host/tcp/PORT`), whose peer id is learned when the connection
 * is secured: the noise handshake proves the remote key.
 *
 * @example
 * ```ts
 * hasPeerId('/ip4/127.0.0.1/tcp/4001')            // false: the peer keeper dials it
 * isBootstrapAddress('/ip4/127.0.0.1/tcp/4001')   // true
 * isBootstrapAddress('/ip4/127.0.0.1')            // false: nothing to dial
 * ```
 */
import { multiaddr } from '@multiformats/multiaddr'

/** A TCP address this node can dial: an IP address or a DNS name, and a port. */
const DIALABLE = /^\/(ip4|ip6|dns|dns4|dns6)\/[^/]+\/tcp\/\d{1,5}$/

/** Whether a multiaddr names its peer (`/p2p/PEERID`); false for one that does not parse. */
export function hasPeerId (addr: string): boolean {
  try {
    return multiaddr(addr).getPeerId() != null
  } catch {
    return false
  }
}

/** Whether `addr` can be a bootstrap address: a multiaddr with `/p2p/PEERID`, or a TCP address to dial without one. */
export function isBootstrapAddress (addr: string): boolean {
  let parsed
  try {
    parsed = multiaddr(addr)
  } catch {
    return false
  }
  if (parsed.getPeerId() != null) return true
  const text = parsed.toString()
  const port = Number(/\/tcp\/(\d+)$/.exec(text)?.[1])
  return DIALABLE.test(text) && port > 0 && port <= 65535
}
