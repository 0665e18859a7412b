/**
 * Future simulation object of kv 2.0.0: loaded by peers still on 1.0.0 as soon as 2.0.0
 * is staged there, so they can serve and call peers that already switched.
 */
import { toV1, toV1Response, toV2, toV2Response } from './wire.js'

export default {
  version: 2,
  // a protocol 2 request reached a 1.0.0 node; local() is its (protocol 1) app
  async serve (req2, local) { return toV2Response(await local(toV1(req2))) },
  // the 1.0.0 app calls a peer spoken to in 2; remote() sends to it
  async call (req1, remote) { return toV1Response(await remote(toV2(req1))) }
}
