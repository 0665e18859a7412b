/**
 * Future simulation object of pykv 2.0.0: loaded by the daemons of peers still on 1.0.0 as
 * soon as 2.0.0 is staged there, so they can serve and call peers that already switched.
 */
import { toV1Request, toV1Response, toV2Request, toV2Response } from './wire.js'

export default {
  version: 2,
  // a protocol 2 request reached a 1.0.0 node; local() is its (protocol 1) app
  async serve (req2, local) { return toV2Response(await local(toV1Request(req2))) },
  // the 1.0.0 app calls a peer spoken to in 2; remote() sends to it
  async call (req1, remote) { return toV1Response(await remote(toV2Request(req1))) }
}
