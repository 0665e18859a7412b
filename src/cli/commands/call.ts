/** `upgossip call`: one request to the app, through the daemon, as the app's own `node.call`. */
import type { Command } from 'commander'
import { callDaemon, resolveEndpoint } from '../control-client.js'
import type { DaemonTarget } from '../control-client.js'
import { UsageError, sayJson } from '../output.js'
import { resolvePeerOption } from '../peer-ids.js'
import { positiveInteger } from '../program-options.js'

/** Register `call`. */
export function callCommand (program: Command): void {
  program.command('call')
    .description("send one request to the app on PEER (default: this peer's own app) and print the response as JSON")
    .argument('<json>', 'the request, as JSON')
    .option('--peer <peerId>', 'the peer whose app answers (default: this peer): its full id, a unique prefix of at least 8 characters, or the short form "upgossip status" prints')
    .option('--protocol <n>', "the request is in this protocol version (default: the app's own); it is delivered like a request from a peer of that version, translated by simulation objects — for clients written against one version", positiveInteger)
    .option('--data <dir>', "the daemon's data directory (default $UPGOSSIP_DATA or ~/.upgossip)")
    .option('--daemon <url>', 'control API URL, instead of --data')
    .option('--token <token>', 'control API token, with --daemon')
    .addHelpText('after', '\nExamples:\n  $ upgossip call --data ./a \'{"op":"put","key":"a","value":1}\'\n  $ upgossip call --data ./a --protocol 1 \'{"op":"get","key":"a"}\'   # a v1 client, whatever version runs\n  $ upgossip call --data ./a --peer 12D3KooWSg1X \'{"op":"get","key":"a"}\'   # the app on the one peer whose id starts so')
    .action(async (json: string, opts: DaemonTarget & { peer?: string, protocol?: number }) => {
      let request: unknown
      try {
        request = JSON.parse(json)
      } catch {
        throw new UsageError(`the request is not valid JSON: ${json.slice(0, 80)}`)
      }
      const endpoint = await resolveEndpoint(opts)
      // a prefix or a short form becomes the full id of a peer this daemon knows
      const peer = opts.peer == null ? null : await resolvePeerOption(endpoint, opts.peer)
      const body = new TextEncoder().encode(JSON.stringify({ peer, request, ...(opts.protocol == null ? {} : { protocol: opts.protocol }) }))
      const res = await callDaemon(endpoint, 'POST', '/call', body, 'application/json')
      const { response } = await res.json() as { response: unknown }
      // a handler that returns nothing answers null
      sayJson(response ?? null)
    })
}
