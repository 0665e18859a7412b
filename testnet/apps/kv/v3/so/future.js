/**
 * Future simulation object of kv 3.0.0: loaded by peers still on 2.0.0 once 3.0.0 is
 * staged there. It serves protocol 3 requests on the 2.0.0 app, including `incr`, which
 * that app does not have: it becomes a fetch and a set on the local app.
 */
import { incrOnV2, isIncr, toV2, toV2Response, toV3, toV3Response } from './wire.js'

export default {
  version: 3,
  // a protocol 3 request reached a 2.0.0 node; local() is its (protocol 2) app
  async serve (req3, local) {
    if (isIncr(req3)) return await incrOnV2(req3, local)
    return toV3Response(await local(toV2(req3)))
  },
  // the 2.0.0 app calls a peer spoken to in 3
  async call (req2, remote) { return toV2Response(await remote(toV3(req2))) }
}
