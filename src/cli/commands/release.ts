/** `upgossip release`: build and sign a release bundle. */
import type { Command } from 'commander'
import { note, passphraseFromEnv, say, sayJson } from '../output.js'
import { collect, positiveDurationOption } from '../program-options.js'

/** Register `release` on the program. */
export function releaseCommand (program: Command): void {
  program.command('release')
    .description('pack DIR, sign a release of it and write a release bundle (one CAR file)')
    .argument('<dir>', 'package directory (must hold upgossip.json)')
    .requiredOption('--key <file>', 'publisher key file; repeat for several signers', collect)
    .requiredOption('--out <file.car>', 'where to write the release bundle')
    .option('--previous <id>', 'release id this one follows (advisory history, not enforced)')
    .option('--expires <duration>', 'how long peers may admit it, e.g. 30d (default 90d)', positiveDurationOption)
    .option('--passphrase-env <var>', 'passphrase for encrypted key files, from this environment variable')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ upgossip release ./kv-v2 --key publisher.key --expires 30d --out kv-v2.car\n  bafyrei…   (the release id)')
    .action(async (dir: string, opts: { key: string[], out: string, previous?: string, expires?: number, passphraseEnv?: string, json?: boolean }) => {
      const { createRelease, readKeyFile, writeBundle } = await import('../../release/index.js')
      const { MemoryBlockStore, writeFileAtomic } = await import('../../store/index.js')
      const passphrase = passphraseFromEnv(opts.passphraseEnv)
      const keys = []
      for (const file of opts.key) keys.push(await readKeyFile(file, passphrase))
      const store = new MemoryBlockStore()
      const { signed, id, pack, blocks } = await createRelease({ dir, store, keys, previous: opts.previous, expiresIn: opts.expires })
      await writeFileAtomic(opts.out, await writeBundle(signed, store, blocks))
      const summary = {
        id: id.toString(),
        app: signed.record.app,
        version: signed.record.version,
        package: pack.cid.toString(),
        size: pack.size,
        blocks: blocks.length,
        signers: signed.signatures.map(s => s.key),
        expires: signed.record.expires,
        out: opts.out
      }
      if (opts.json === true) {
        sayJson(summary)
      } else {
        say(summary.id)
        note(`${summary.app}@${summary.version}: ${summary.blocks} blocks, ${summary.size} bytes, ${summary.signers.length} signature(s), expires ${summary.expires}; wrote ${opts.out}`)
      }
    })
}
