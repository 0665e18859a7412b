/** `upgossip publish`: hand a release bundle to a running daemon, which verifies, imports and gossips it. */
import type { Command } from 'commander'
import { callDaemon, resolveEndpoint } from '../control-client.js'
import { readInput, say, sayJson } from '../output.js'

/** Register `publish` on the program. */
export function publishCommand (program: Command): void {
  program.command('publish')
    .description('verify, import and gossip a release bundle through a running daemon')
    .argument('<bundle>', 'release bundle (.car)')
    .option('--data <dir>', "the daemon's data directory (default $UPGOSSIP_DATA or ~/.upgossip)")
    .option('--daemon <url>', 'control API URL, instead of --data')
    .option('--token <token>', 'control API token, with --daemon')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nPublishing a release the daemon already has is not an error (exit 0).\n\nExample:\n  $ upgossip publish kv-2.0.0.car --data ./a\n  published kv@2.0.0 bafyrei…')
    .action(async (file: string, opts: { data?: string, daemon?: string, token?: string, json?: boolean }) => {
      const bytes = await readInput(file)
      const endpoint = await resolveEndpoint(opts)
      const res = await callDaemon(endpoint, 'POST', '/publish', bytes)
      const result = await res.json() as { status: string, id: string, app: string, version: string }
      if (opts.json === true) {
        sayJson(result)
      } else {
        const verb = result.status === 'published' ? 'published' : result.status === 'merged' ? 'merged new signatures into' : 'already known:'
        say(`${verb} ${result.app}@${result.version} ${result.id}`)
      }
    })
}
