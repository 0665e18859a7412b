/** `upgossip keygen`: a new Ed25519 publisher key. */
import type { Command } from 'commander'
import { note, passphraseFromEnv, say } from '../output.js'

/** Register `keygen` on the program. */
export function keygenCommand (program: Command): void {
  program.command('keygen')
    .description('make a new Ed25519 publisher key; prints only its public key (z6Mk…)')
    .requiredOption('--out <file>', 'where to write the key file (mode 0600; never overwritten)')
    .option('--passphrase-env <var>', 'encrypt the key file with the passphrase in this environment variable')
    .addHelpText('after', '\nExample:\n  $ upgossip keygen --out publisher.key\n  z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK')
    .action(async (opts: { out: string, passphraseEnv?: string }) => {
      const { generatePublisherKey, writeKeyFile } = await import('../../release/index.js')
      const passphrase = passphraseFromEnv(opts.passphraseEnv)
      const key = await generatePublisherKey()
      await writeKeyFile(opts.out, key, passphrase)
      say(key.id)
      note(`wrote ${passphrase == null ? 'publisher key' : 'encrypted publisher key'} to ${opts.out}; put the public key above in your peers' trust file`)
    })
}
