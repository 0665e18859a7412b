/** `upgossip sign`: add a co-signature to a release bundle. */
import type { Command } from 'commander'
import { note, passphraseFromEnv, readInput, say, sayJson } from '../output.js'

/** Register `sign` on the program. */
export function signCommand (program: Command): void {
  program.command('sign')
    .description('add a co-signature to a release bundle; the release id does not change')
    .argument('<bundle>', 'release bundle (.car)')
    .requiredOption('--key <file>', 'publisher key file')
    .option('--out <file.car>', 'write the co-signed bundle here instead of in place')
    .option('--passphrase-env <var>', 'passphrase for an encrypted key file, from this environment variable')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample (a 2-of-3 release, second signer offline):\n  $ upgossip sign kv-v2.car --key alice.key')
    .action(async (file: string, opts: { key: string, out?: string, passphraseEnv?: string, json?: boolean }) => {
      const { coSign, readBundle, readKeyFile, writeBundle } = await import('../../release/index.js')
      const { walkPackageBlocks } = await import('../../package/index.js')
      const { writeFileAtomic } = await import('../../store/index.js')
      const key = await readKeyFile(opts.key, passphraseFromEnv(opts.passphraseEnv))
      const bundle = await readBundle(await readInput(file))
      const signed = await coSign(bundle.signed, key)
      const { cids } = await walkPackageBlocks(signed.record.package, bundle.blocks)
      const out = opts.out ?? file
      await writeFileAtomic(out, await writeBundle(signed, bundle.blocks, cids))
      if (opts.json === true) {
        sayJson({ id: bundle.id.toString(), signers: signed.signatures.map(s => s.key), out })
      } else {
        say(bundle.id.toString())
        note(`signed by ${key.id}; the bundle now carries ${signed.signatures.length} signature(s); wrote ${out}`)
      }
    })
}
