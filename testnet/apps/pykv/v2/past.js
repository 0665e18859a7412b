/**
 * Past simulation object of pykv 2.0.0: lets a 2.0.0 node speak protocol 1, to peers that
 * still run 1.0.0. The daemon runs it (a process app has no SDK to load it into).
 */
import { toV1Request, toV1Response, toV2Request, toV2Response } from './wire.js'

export default {
  version: 1,
  // a protocol 1 request reached this node; local() is this node's own (protocol 2) app
  async serve (req1, local) { return toV1Response(await local(toV2Request(req1))) },
  // this node's app calls a peer that speaks 1; remote() sends to it
  async call (req2, remote) { return toV2Response(await remote(toV1Request(req2))) }
}
