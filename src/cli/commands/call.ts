/** `upgossip call`: one request to the app, through the daemon, as the app's own `node.call`. */
import type { Command } from 'commander'
import { callDaemon, resolveEndpoint } from '../control-client.js'
import type { DaemonTarget } from '../control-client.js'
import { UsageError, sayJson } from '../output.js'

/** Register `call`. */
export function callCommand (program: Command): void {
  program.command('call')
    .description("send one request to the app on PEER (default: this peer's own app) and print the response as JSON")
    .argument('<json>', 'the request, as JSON')
    .option('--peer <peerId>', 'the peer whose app answers (default: this peer)')
    .option('--data <dir>', "the daemon's data directory (default $UPGOSSIP_DATA or ~/.upgossip)")
    .option('--daemon <url>', 'control API URL, instead of --data')
    .option('--token <token>', 'control API token, with --daemon')
    .addHelpText('after', '\nExample:\n  $ upgossip call --data ./a \'{"op":"put","key":"a","value":1}\'')
    .action(async (json: string, opts: DaemonTarget & { peer?: string }) => {
      let request: unknown
      try {
        request = JSON.parse(json)
      } catch {
        throw new UsageError(`the request is not valid JSON: ${json.slice(0, 80)}`)
      }
      const body = new TextEncoder().encode(JSON.stringify({ peer: opts.peer ?? null, request }))
      const res = await callDaemon(await resolveEndpoint(opts), 'POST', '/call', body, 'application/json')
      const { response } = await res.json() as { response: unknown }
      // a handler that returns nothing answers null
      sayJson(response ?? null)
    })
}
