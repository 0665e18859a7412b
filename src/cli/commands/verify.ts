/** `upgossip verify`: everything a peer checks before admitting a bundle. */
import type { Command } from 'commander'
import { readBundleFile, say, sayJson } from '../output.js'

/** Register `verify` on the program. */
export function verifyCommand (program: Command): void {
  program.command('verify')
    .description('check a release bundle: signatures, threshold, expiry, manifest, every block against its CID')
    .argument('<bundle>', 'release bundle (.car)')
    .requiredOption('--trust <file>', 'trust file: {"apps": {"kv": {"publishers": ["z6Mk…"], "threshold": 1}}}')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExit code 0 when valid, 1 when not (with a one-line reason on stderr).\n\nExample:\n  $ upgossip verify kv-v2.car --trust trust.json')
    .action(async (file: string, opts: { trust: string, json?: boolean }) => {
      const { TrustPolicy, verifyBundle } = await import('../../release/index.js')
      const trust = await TrustPolicy.read(opts.trust)
      const verified = await verifyBundle(await readBundleFile(file), { trust })
      const { record } = verified
      if (opts.json === true) {
        sayJson({ valid: true, id: verified.id.toString(), app: record.app, version: record.version, signers: verified.signers, threshold: verified.threshold, expires: record.expires, blocks: verified.packageBlocks.length, size: record.size })
      } else {
        say(`valid: ${record.app}@${record.version} ${verified.id.toString()} (${verified.signers.length} valid signature${verified.signers.length === 1 ? '' : 's'}, ${verified.threshold} required, ${verified.packageBlocks.length} blocks checked, expires ${record.expires})`)
      }
    })
}
