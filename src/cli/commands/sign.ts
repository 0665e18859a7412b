/** `upgossip sign`: add co-signatures to a release bundle. */
import type { Command } from 'commander'
import { UpgossipError } from '../../errors.js'
import { note, passphraseFromEnv, readBundleFile, say, sayJson } from '../output.js'
import { collect } from '../program-options.js'

/** A signer refused to sign what it checked. */
export class SignRefusedError extends UpgossipError {
  static override name = 'SignRefusedError'
}

/** Register `sign` on the program. */
export function signCommand (program: Command): void {
  program.command('sign')
    .description('add co-signatures to a release bundle after checking it; the release id does not change')
    .argument('<bundle>', 'release bundle (.car)')
    .requiredOption('--key <file>', 'publisher key file; repeat to sign with several keys', collect)
    .option('--out <file.car>', 'write the co-signed bundle here instead of in place')
    .option('--passphrase-env <var>', 'passphrase for encrypted key files, from this environment variable')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nBefore signing, the package is checked against the record (every block, size, manifest)\nand the release must not have expired: a co-signer never signs what peers would refuse.\n\nExample (a 2-of-3 release, second signer offline):\n  $ upgossip sign kv-v2.car --key alice.key')
    .action(async (file: string, opts: { key: string[], out?: string, passphraseEnv?: string, json?: boolean }) => {
      const { MAX_SIGNATURES, coSign, readBundle, readKeyFile, verifyBundlePackage, writeBundle, ReleaseExpiredError } = await import('../../release/index.js')
      const { writeFileAtomic } = await import('../../store/index.js')
      const passphrase = passphraseFromEnv(opts.passphraseEnv)
      const keys = []
      for (const keyFile of opts.key) keys.push(await readKeyFile(keyFile, passphrase))
      const bundle = await readBundle(await readBundleFile(file))
      const { record } = bundle.signed
      if (Date.parse(record.expires) <= Date.now()) throw new ReleaseExpiredError(`${record.app}@${record.version} expired at ${record.expires}; make a new release instead of signing this one`)
      const cids = await verifyBundlePackage(bundle)
      let signed = bundle.signed
      for (const key of keys) signed = await coSign(signed, key)
      if (signed.signatures.length > MAX_SIGNATURES) {
        throw new SignRefusedError(`the bundle would carry ${signed.signatures.length} signatures; peers accept at most ${MAX_SIGNATURES}`)
      }
      const out = opts.out ?? file
      await writeFileAtomic(out, await writeBundle(signed, bundle.blocks, cids))
      if (opts.json === true) {
        sayJson({ id: bundle.id.toString(), signers: signed.signatures.map(s => s.key), out })
      } else {
        say(bundle.id.toString())
        note(`signed by ${keys.map(k => k.id).join(', ')}; the bundle now carries ${signed.signatures.length} signature(s); wrote ${out}`)
      }
    })
}
