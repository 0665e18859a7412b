/** `upgossip inspect`: what a release bundle holds. */
import type { Command } from 'commander'
import { readBundleFile, say, sayJson } from '../output.js'

/** Register `inspect` on the program. */
export function inspectCommand (program: Command): void {
  program.command('inspect')
    .description('show a release bundle: record, signers, files and sizes (no trust decision; use verify for that)')
    .argument('<bundle>', 'release bundle (.car)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ upgossip inspect kv-v2.car --json | jq .record.version')
    .action(async (file: string, opts: { json?: boolean }) => {
      const { bundleFiles, bundlePackageBlocks, checkSignature, readBundle } = await import('../../release/index.js')
      const bundle = await readBundle(await readBundleFile(file))
      const { record } = bundle.signed
      const signers = []
      for (const s of bundle.signed.signatures) signers.push({ key: s.key, valid: await checkSignature(bundle.id, s) })
      const files = await bundleFiles(bundle)
      const { cids, size } = await bundlePackageBlocks(bundle)
      const info = {
        id: bundle.id.toString(),
        record: {
          app: record.app,
          version: record.version,
          previous: record.previous?.toString() ?? null,
          package: record.package.toString(),
          size: record.size,
          issued: record.issued,
          expires: record.expires,
          manifest: record.manifest
        },
        signers,
        blocks: cids.length,
        blocksSize: size,
        files: files.map(f => ({ path: f.path, bytes: f.bytes, cid: f.cid.toString() }))
      }
      if (opts.json === true) {
        sayJson(info)
        return
      }
      const m = record.manifest as { protocol?: number, upgrades?: string, main?: string }
      say(`release   ${info.id}`)
      say(`app       ${record.app} ${record.version} (protocol ${m.protocol ?? '?'}, upgrades ${m.upgrades ?? 'any older version'}, main ${m.main ?? '?'})`)
      say(`package   ${info.record.package} (${record.size} bytes in ${cids.length} blocks)`)
      say(`previous  ${info.record.previous ?? '-'}`)
      say(`issued    ${record.issued}`)
      say(`expires   ${record.expires}`)
      say(signers.length === 0 ? 'signers   (none)' : 'signers')
      for (const s of signers) say(`  ${s.key} ${s.valid ? 'valid signature' : 'INVALID signature'}`)
      say(`files     ${files.length}`)
      const width = Math.max(...files.map(f => String(f.bytes).length), 1)
      for (const f of files) say(`  ${String(f.bytes).padStart(width)}  ${f.path}`)
    })
}
