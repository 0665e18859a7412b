/**
 * Past simulation object of tcpchat 2.0.0: lets a 2.0.0 node speak protocol 1, to peers
 * that still run 1.0.0. The daemon runs it, on the connection's bytes (a process app has
 * no SDK to load it into).
 */
import { lines, replyToV1, replyToV2, requestToV1, requestToV2 } from './wire.js'

export default {
  version: 1,
  // a 1.0.0 peer connected to this node: its requests come in, this node's replies go out
  serve: () => ({ in: lines(requestToV2), out: lines(replyToV1) }),
  // this node connected to a 1.0.0 peer: this node's requests go out, the peer's replies come in
  call: () => ({ out: lines(requestToV1), in: lines(replyToV2) })
}
