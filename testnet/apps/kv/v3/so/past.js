/**
 * Past simulation object of kv 3.0.0: lets a 3.0.0 node speak protocol 2, to peers still
 * on 2.0.0. (Peers on 1.0.0 are reached too: the chain continues through 2.0.0's past SO.)
 */
import { incrOnV2, isIncr, toV2, toV2Response, toV3, toV3Response } from './wire.js'

export default {
  version: 2,
  // a protocol 2 request reached this node; local() is this node's own (protocol 3) app
  async serve (req2, local) { return toV2Response(await local(toV3(req2))) },
  // this node's app calls a peer that speaks 2: an incr becomes a fetch and a set over there
  async call (req3, remote) {
    if (isIncr(req3)) return await incrOnV2(req3, remote)
    return toV3Response(await remote(toV2(req3)))
  }
}
