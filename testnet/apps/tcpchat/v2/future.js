/**
 * Future simulation object of tcpchat 2.0.0: loaded by 1.0.0 nodes once 2.0.0 is staged
 * there, it lets them speak protocol 2, to peers that already run 2.0.0.
 */
import { lines, replyToV1, replyToV2, requestToV1, requestToV2 } from './wire.js'

export default {
  version: 2,
  // a 2.0.0 peer connected to this 1.0.0 node: its requests come in, this node's replies go out
  serve: () => ({ in: lines(requestToV1), out: lines(replyToV2) }),
  // this 1.0.0 node connected to a 2.0.0 peer: this node's requests go out, the peer's replies come in
  call: () => ({ out: lines(requestToV2), in: lines(replyToV1) })
}
