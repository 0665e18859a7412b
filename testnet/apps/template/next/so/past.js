/**
 * Past simulation object of 2.0.0: lets a 2.0.0 node serve and call peers still on
 * protocol 1. It runs inside the 2.0.0 app's process.
 *
 * As written it passes requests and answers through unchanged. When 2.0.0 changes the
 * wire format, translate in the four functions below (testnet/apps/kv/v2/so/ does).
 * Values must stay what dag-cbor carries: no `undefined`, functions, Maps or Dates.
 */
const toV2 = (req1) => req1 // TODO: a protocol 1 request as protocol 2
const toV1 = (req2) => req2 // TODO: a protocol 2 request as protocol 1
const toV1Response = (res2) => res2 // TODO: a protocol 2 answer as protocol 1
const toV2Response = (res1) => res1 // TODO: a protocol 1 answer as protocol 2

export default {
  // the version this SO lets the node speak: one below the release's own protocol
  version: 1,
  // a protocol 1 request reached this node; local() asks this node's own 2.0.0 app
  async serve (req1, local) { return toV1Response(await local(toV2(req1))) },
  // this node's app calls a peer spoken to in protocol 1; remote() sends to it
  async call (req2, remote) { return toV2Response(await remote(toV1(req2))) }
}
