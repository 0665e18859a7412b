/**
 * Future simulation object of 2.0.0: the daemons of peers still on 1.0.0 load it as soon
 * as 2.0.0 is staged there (before they switch), so they can serve and call peers already
 * on 2.0.0. Messages are HTTP messages, as in so/past.js.
 *
 * As written it passes messages through unchanged; translate as in so/past.js, from the
 * other side.
 */
const toV2 = (req1) => req1 // TODO: a protocol 1 request as protocol 2
const toV1 = (req2) => req2 // TODO: a protocol 2 request as protocol 1
const toV1Response = (res2) => res2 // TODO: a protocol 2 response as protocol 1
const toV2Response = (res1) => res1 // TODO: a protocol 1 response as protocol 2

export default {
  // the version this SO lets the node speak: the release's own protocol
  version: 2,
  // a protocol 2 request reached a 1.0.0 node; local() asks its 1.0.0 app
  async serve (req2, local) { return toV2Response(await local(toV1(req2))) },
  // the 1.0.0 app calls a peer spoken to in protocol 2; remote() sends to it
  async call (req1, remote) { return toV1Response(await remote(toV2(req1))) }
}
