/** `upgossip revoke`: a revocation signed by a threshold of publishers, gossiped through a daemon. */
import type { Command } from 'commander'
import { callDaemon, daemonRelease, resolveEndpoint } from '../control-client.js'
import type { DaemonTarget } from '../control-client.js'
import { passphraseFromEnv, say, sayJson } from '../output.js'
import { collect } from '../program-options.js'

/** Register `revoke`. */
export function revokeCommand (program: Command): void {
  program.command('revoke')
    .description('revoke RELEASE: peers running it roll back, peers that have not switched drop it')
    .argument('<release>', 'release id (bafyrei…) or APP@VERSION')
    .requiredOption('--key <file>', 'publisher key file; repeat until the trust threshold is met', collect)
    .option('--reason <text>', 'why, for operators (kept in every peer\'s event log)', '')
    .option('--passphrase-env <var>', 'passphrase for encrypted key files, from this environment variable')
    .option('--data <dir>', "the daemon's data directory (default $UPGOSSIP_DATA or ~/.upgossip)")
    .option('--daemon <url>', 'control API URL, instead of --data')
    .option('--token <token>', 'control API token, with --daemon')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nThe revocation needs signatures by as many trusted publishers as the app\'s threshold;\nbelow that, every peer refuses it.\n\nExample:\n  $ upgossip revoke kv@2.0.0 --key alice.key --key bob.key --reason "corrupts data" --data ./a')
    .action(async (release: string, opts: DaemonTarget & { key: string[], reason: string, passphraseEnv?: string, json?: boolean }) => {
      const { readKeyFile, signRevocation, encodeRevocation, parseReleaseId } = await import('../../release/index.js')
      const passphrase = passphraseFromEnv(opts.passphraseEnv)
      const keys = []
      for (const file of opts.key) keys.push(await readKeyFile(file, passphrase))
      const endpoint = await resolveEndpoint(opts)
      const found = await daemonRelease(endpoint, release)
      const signed = await signRevocation({ app: found.app, release: parseReleaseId(found.id), issued: new Date().toISOString(), reason: opts.reason }, keys)
      const res = await callDaemon(endpoint, 'POST', '/revoke', encodeRevocation(signed), 'application/cbor')
      const result = await res.json() as { status: string, release: string }
      if (opts.json === true) sayJson({ ...result, app: found.app, version: found.version })
      else say(`${result.status === 'revoked' ? 'revoked' : 'already revoked:'} ${found.app}@${found.version} ${result.release}`)
    })
}
