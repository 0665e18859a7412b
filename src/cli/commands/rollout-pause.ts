/**
 * `upgossip rollout pause` and `upgossip rollout resume`: a record signed by a threshold
 * of the app's publishers that stops (or lets go again) the rollout of one release on
 * every peer, handed to a daemon, which gossips it; sync brings it to peers that missed it.
 */
import type { Command } from 'commander'
import { UpgossipError } from '../../errors.js'
import { callDaemon, daemonRelease, resolveEndpoint } from '../control-client.js'
import type { DaemonTarget } from '../control-client.js'
import { passphraseFromEnv, say, sayJson } from '../output.js'
import { collect } from '../program-options.js'

/** `rollout resume` of a release whose rollout is not paused (as far as the daemon knows). */
export class RolloutNotPausedError extends UpgossipError {
  static override name = 'RolloutNotPausedError'
}

interface PauseOptions extends DaemonTarget {
  key: string[]
  reason: string
  passphraseEnv?: string
  json?: boolean
}

interface KnownRelease {
  id: string
  app: string
  version: string
  pause?: { action: 'pause' | 'resume', sequence: number }
}

async function send (action: 'pause' | 'resume', ref: string, opts: PauseOptions): Promise<void> {
  const { readKeyFile, signPause, encodePause, nextPauseSequence, parseReleaseId } = await import('../../release/index.js')
  const passphrase = passphraseFromEnv(opts.passphraseEnv)
  const keys = []
  for (const file of opts.key) keys.push(await readKeyFile(file, passphrase))
  const endpoint = await resolveEndpoint(opts)
  const found = await daemonRelease<KnownRelease>(endpoint, ref)
  const name = `${found.app}@${found.version}`
  if (action === 'resume' && found.pause?.action !== 'pause') {
    throw new RolloutNotPausedError(`the rollout of ${name} is not paused on this peer; nothing to resume ("upgossip status" shows a paused release as waiting on paused)`)
  }
  const issued = new Date()
  const sequence = nextPauseSequence(issued, found.pause?.sequence)
  const signed = await signPause({ app: found.app, release: parseReleaseId(found.id), action, sequence, issued: issued.toISOString(), reason: opts.reason }, keys)
  const res = await callDaemon(endpoint, 'POST', '/pause', encodePause(signed), 'application/cbor')
  const result = await res.json() as { status: string, id: string, sequence: number, signers: string[] }
  if (opts.json === true) {
    sayJson({ ...result, release: found.id, app: found.app, version: found.version })
    return
  }
  const done = result.status === 'known' ? `already ${action === 'pause' ? 'paused' : 'resumed'}:` : result.status
  say(`${done} ${name} ${found.id} (signed by ${result.signers.length} publisher${result.signers.length === 1 ? '' : 's'})`)
}

function addOptions (command: Command): Command {
  return command
    .argument('<release>', 'release id (bafyrei…) or APP@VERSION')
    .requiredOption('--key <file>', 'publisher key file; repeat until the trust threshold is met', collect)
    .option('--passphrase-env <var>', 'passphrase for encrypted key files, from this environment variable')
    .option('--data <dir>', "the daemon's data directory (default $UPGOSSIP_DATA or ~/.upgossip)")
    .option('--daemon <url>', 'control API URL, instead of --data')
    .option('--token <token>', 'control API token, with --daemon')
    .option('--json', 'print JSON')
}

/** Register `pause` and `resume` on the `rollout` command group. */
export function rolloutPauseCommands (rollout: Command): void {
  addOptions(rollout.command('pause')
    .description('pause the rollout of RELEASE on every peer: none starts switching to it (peers already on it stay)'))
    .option('--reason <text>', 'why, for operators (shown as the release\'s reason on every peer)', '')
    .addHelpText('after', '\nThe record needs signatures by as many trusted publishers as the app\'s threshold;\nbelow that, every peer refuses it. Gossiped at once; peers that missed it get it by sync.\nWhile paused, every peer shows the release waiting on "paused" with the reason.\n\nExample:\n  $ upgossip rollout pause kv@2.0.0 --key alice.key --key bob.key --reason "p99 doubled on the canaries" --data ./a')
    .action(async (release: string, opts: PauseOptions) => { await send('pause', release, opts) })
  addOptions(rollout.command('resume')
    .description('lift a pause of the rollout of RELEASE: peers switch to it again as their schedules allow'))
    .option('--reason <text>', 'why, for operators (kept in every peer\'s event log)', '')
    .addHelpText('after', '\nSigned like the pause (a threshold of the app\'s publishers). "upgossip resume" without\n"rollout" lifts a local hold on one peer only.\n\nExample:\n  $ upgossip rollout resume kv@2.0.0 --key alice.key --key bob.key --data ./a')
    .action(async (release: string, opts: PauseOptions) => { await send('resume', release, opts) })
}
