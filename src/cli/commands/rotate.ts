/** `upgossip rotate`: a new trust policy for an app, signed by a threshold of its current publishers, adopted by the whole network. */
import type { Command } from 'commander'
import { UpgossipError } from '../../errors.js'
import type { DaemonStatus, RotateResult } from '../../daemon/index.js'
import { callDaemon, resolveEndpoint } from '../control-client.js'
import type { ControlEndpoint, DaemonTarget } from '../control-client.js'
import { UsageError, note, passphraseFromEnv, readInput, say, sayJson } from '../output.js'
import { collect, positiveInteger } from '../program-options.js'

/** The daemon cannot say which trust sequence comes next (too old a daemon, or the app is not trusted there). */
export class RotationBaseUnknownError extends UpgossipError {
  static override name = 'RotationBaseUnknownError'
}

interface RotateOptions extends DaemonTarget {
  publisher?: string[]
  publisherKey?: string[]
  threshold?: number
  key?: string[]
  reason?: string
  sequence?: number
  in?: string
  out?: string
  passphraseEnv?: string
  json?: boolean
}

/** The sequence the next rotation of `app` takes on this daemon. */
async function nextSequence (endpoint: ControlEndpoint, app: string): Promise<number> {
  const status = await (await callDaemon(endpoint, 'GET', '/status')).json() as Partial<DaemonStatus>
  if (status.trust == null) throw new RotationBaseUnknownError('this daemon does not report its trust policy (an older upgossip); give --sequence N, or upgrade it')
  const current = status.trust[app]
  if (current == null) throw new RotationBaseUnknownError(`the daemon does not trust app "${app}", so it cannot take a rotation of it; check the app name`)
  return current.sequence + 1
}

/** Register `rotate`. */
export function rotateCommand (program: Command): void {
  program.command('rotate')
    .description('replace the trust policy of APP (publishers and threshold) on every peer: signed by a threshold of the current publishers')
    .argument('<app>', 'the app whose publishers change')
    .option('--publisher <key>', 'a new publisher key (z6Mk…); repeat for each', collect)
    .option('--publisher-key <file>', "a new publisher's key file (only its public key is read); repeat for each", collect)
    .option('--threshold <n>', 'how many of the new publishers must sign from now on', positiveInteger)
    .option('--key <file>', "a current publisher's key file to sign with; repeat until the current threshold is met", collect)
    .option('--reason <text>', "why, for operators (kept in every peer's event log)")
    .option('--sequence <n>', 'the sequence of the new policy (default: the daemon\'s current one + 1); needed with --out when no daemon runs', positiveInteger)
    .option('--in <file>', 'add signatures to a rotation written by --out, instead of making a new one')
    .option('--out <file>', 'write the signed rotation to FILE instead of handing it to a daemon (for more signatures, or to submit later)')
    .option('--passphrase-env <var>', 'passphrase for encrypted key files, from this environment variable')
    .option('--data <dir>', "the daemon's data directory (default $UPGOSSIP_DATA or ~/.upgossip)")
    .option('--daemon <url>', 'control API URL, instead of --data')
    .option('--token <token>', 'control API token, with --daemon')
    .option('--json', 'print JSON')
    .addHelpText('after', `
The rotation is signed by the current publishers (--key) and names the new ones; every
peer checks it against the policy it holds, adopts it, keeps it across restarts (also
with the old --trust file) and passes it on. From then on only the new keys count, for
releases and revocations alike. Below the current threshold, every peer refuses it.

Examples:
  $ upgossip rotate kv --publisher z6MkBob… --publisher z6MkCarol… --threshold 2 --key alice.key --reason "alice leaves" --data ./a
  rotated kv to sequence 1: 2 of 2 keys z6MkBob…, z6MkCarol… (bafyrei…)

  Two current keys held by two people (threshold 2):
  $ upgossip rotate kv --publisher-key carol.key --threshold 1 --key alice.key --out kv-rotation.cbor --data ./a
  $ upgossip rotate kv --in kv-rotation.cbor --key bob.key --data ./b`)
    .action(async (app: string, opts: RotateOptions) => {
      const { decodeRotation, encodeRotation, isPublicKeyString, readKeyFile, readKeyFilePublicKey, rotationId, signRotation } = await import('../../release/index.js')
      const { writeFileAtomic } = await import('../../store/index.js')
      const passphrase = passphraseFromEnv(opts.passphraseEnv)
      const publisherOptions = opts.publisher ?? []
      const notAKey = publisherOptions.find(k => !isPublicKeyString(k))
      if (notAKey != null) throw new UsageError(`--publisher "${notAKey.slice(0, 80)}" is not a publisher key (z6Mk…, as keygen prints it)`)
      const keys = []
      for (const file of opts.key ?? []) keys.push(await readKeyFile(file, passphrase))
      let endpoint: ControlEndpoint | undefined
      const daemon = async (): Promise<ControlEndpoint> => (endpoint ??= await resolveEndpoint(opts))

      let signed
      if (opts.in != null) {
        if (publisherOptions.length > 0 || opts.publisherKey != null || opts.threshold != null || opts.sequence != null || opts.reason != null) {
          throw new UsageError('--in FILE takes the rotation from the file: leave out --publisher, --publisher-key, --threshold, --sequence and --reason')
        }
        signed = decodeRotation(await readInput(opts.in))
        if (signed.record.app !== app) throw new UsageError(`${opts.in} rotates the trust of ${signed.record.app}, not ${app}`)
        if (keys.length > 0) signed = await signRotation(signed, keys)
      } else {
        const publishers = [...publisherOptions]
        for (const file of opts.publisherKey ?? []) publishers.push(await readKeyFilePublicKey(file))
        if (publishers.length === 0) throw new UsageError('name the new publishers with --publisher KEY or --publisher-key FILE')
        const twice = publishers.find((k, i) => publishers.indexOf(k) !== i)
        if (twice != null) throw new UsageError(`the new publisher ${twice} is named twice`)
        if (opts.threshold == null) throw new UsageError('--threshold N is needed: how many of the new publishers must sign from now on')
        if (opts.threshold > publishers.length) throw new UsageError(`--threshold ${opts.threshold} is more than the ${publishers.length} new publisher${publishers.length === 1 ? '' : 's'}, so nothing could ever be admitted`)
        if (keys.length === 0) throw new UsageError('--key FILE is needed: the rotation is signed by the current publishers')
        const sequence = opts.sequence ?? await nextSequence(await daemon(), app)
        signed = await signRotation({ app, publishers, threshold: opts.threshold, sequence, issued: new Date().toISOString(), reason: opts.reason ?? '' }, keys)
      }
      const { record } = signed

      if (opts.out != null) {
        await writeFileAtomic(opts.out, encodeRotation(signed))
        const id = (await rotationId(record)).toString()
        if (opts.json === true) {
          sayJson({ id, app, sequence: record.sequence, publishers: record.publishers, threshold: record.threshold, signers: signed.signatures.map(s => s.key), out: opts.out })
        } else {
          say(id)
          note(`wrote the rotation of ${app} to sequence ${record.sequence} (${record.threshold} of ${record.publishers.length} keys) to ${opts.out}; it carries ${signed.signatures.length} signature(s). More: "upgossip rotate ${app} --in ${opts.out} --key FILE"; submit: the same without --out`)
        }
        return
      }
      const res = await callDaemon(await daemon(), 'POST', '/rotate', encodeRotation(signed), 'application/cbor')
      const result = await res.json() as RotateResult
      if (opts.json === true) sayJson(result)
      else if (result.status === 'rotated') say(`rotated ${result.app} to sequence ${result.sequence}: ${result.threshold} of ${result.publishers.length} key${result.publishers.length === 1 ? '' : 's'} ${result.publishers.join(', ')} (${result.id})`)
      else say(`already adopted: ${result.app} sequence ${result.sequence} (${result.id})`)
    })
}
