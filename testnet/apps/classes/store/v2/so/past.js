/**
 * Past simulation object of store 2.0.0: lets a 2.0.0 store serve callers that speak
 * protocol 1 — the clients of 1.0.0, whose manifest says `"calls": { "store": 1 }`. The
 * daemon loads it into this version's app process.
 */
import { toV1, toV1Response, toV2, toV2Response } from './wire.js'

export default {
  version: 1,
  // a protocol 1 request reached this store; local() is this store's own (protocol 2) app
  async serve (req1, local) { return toV1Response(await local(toV2(req1))) },
  // this store calls a peer spoken to in 1 (stores call nobody today; here for completeness)
  async call (req2, remote) { return toV2Response(await remote(toV1(req2))) }
}
