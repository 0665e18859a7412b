/**
 * Past simulation object of 2.0.0: lets a 2.0.0 node serve and call peers still on
 * protocol 1. The daemon runs it, not the Python app: simulation objects are JavaScript
 * whatever the app is written in, and for `wire: "http"` they see HTTP messages:
 *
 *   request   { method, path, headers, body }   path with its query: "/kv/a?x=1"
 *   response  { status, headers, body }
 *
 * Header names are lower case; `body` is a Uint8Array (new TextDecoder().decode(body) for
 * text, new TextEncoder().encode(text) back). The daemon sets Content-Length on what it
 * forwards, so leave it out.
 *
 * As written it passes messages through unchanged. When 2.0.0 changes its paths or bodies,
 * translate in the four functions below (testnet/apps/pykv/v2/wire.js in upgossip's
 * repository is a worked example). A translation that throws becomes an error response for
 * that request alone.
 */
const toV2 = (req1) => req1 // TODO: a protocol 1 request as protocol 2, e.g. { ...req1, path: req1.path.replace(/^\/kv\//, '/v2/kv/') }
const toV1 = (req2) => req2 // TODO: a protocol 2 request as protocol 1
const toV1Response = (res2) => res2 // TODO: a protocol 2 response as protocol 1
const toV2Response = (res1) => res1 // TODO: a protocol 1 response as protocol 2

export default {
  // the version this SO lets the node speak: one below the release's own protocol
  version: 1,
  // a protocol 1 request reached this node; local() asks this node's own 2.0.0 app
  async serve (req1, local) { return toV1Response(await local(toV2(req1))) },
  // this node's app calls a peer spoken to in protocol 1; remote() sends to it
  async call (req2, remote) { return toV2Response(await remote(toV1(req2))) }
}
