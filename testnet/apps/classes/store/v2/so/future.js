/**
 * Future simulation object of store 2.0.0: loaded by stores still on 1.0.0 as soon as
 * 2.0.0 is staged there, so they can serve callers that already speak protocol 2 — clients
 * of 2.0.0 (`"calls": { "store": 2 }`), should a store be rolled back under them.
 */
import { toV1, toV1Response, toV2, toV2Response } from './wire.js'

export default {
  version: 2,
  // a protocol 2 request reached a 1.0.0 store; local() is its (protocol 1) app
  async serve (req2, local) { return toV2Response(await local(toV1(req2))) },
  // the 1.0.0 store calls a peer spoken to in 2
  async call (req1, remote) { return toV1Response(await remote(toV2(req1))) }
}
