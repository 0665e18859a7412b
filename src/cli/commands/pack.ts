/** `upgossip pack`: a directory's contents as a content-addressed package. */
import type { Command } from 'commander'
import { note, say, sayJson } from '../output.js'

/** Register `pack` on the program. */
export function packCommand (program: Command): void {
  program.command('pack')
    .description('pack the contents of DIR into a UnixFS package and print its CID')
    .argument('<dir>', 'package directory (must hold upgossip.json)')
    .option('--out <file.car>', 'also write every block to a CAR file rooted at the package')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nSame file names and bytes give the same CID, whatever mtimes, modes, order or Unicode\nnormalisation; executable bits and empty directories are not kept.\n\nExample:\n  $ upgossip pack ./kv-v2 --out kv-v2.car')
    .action(async (dir: string, opts: { out?: string, json?: boolean }) => {
      const { packDirectory, walkPackageBlocks, writeCar } = await import('../../package/index.js')
      const { MemoryBlockStore, writeFileAtomic } = await import('../../store/index.js')
      const store = new MemoryBlockStore()
      const result = await packDirectory(dir, store)
      if (opts.out != null) {
        const { cids } = await walkPackageBlocks(result.cid, store)
        const car = await writeCar([result.cid], (async function * () {
          for (const cid of cids) yield { cid, bytes: await store.get(cid) }
        })())
        await writeFileAtomic(opts.out, car)
        if (opts.json !== true) note(`wrote ${cids.length} blocks to ${opts.out}`)
      }
      if (opts.json === true) {
        sayJson({ cid: result.cid.toString(), size: result.size, blocks: result.blocks, app: result.manifest.app, version: result.manifest.version, files: result.files, out: opts.out ?? null })
      } else {
        say(result.cid.toString())
      }
    })
}
