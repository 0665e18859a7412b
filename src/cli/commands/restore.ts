/**
 * `upgossip restore`: a backup (`upgossip backup`) into an absent or empty data directory,
 * under the directory's lock. Whatever goes wrong — a truncated or damaged archive, an
 * unsafe path, a full disk, Ctrl-C — the directory is left as it was found.
 */
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import type { Command } from 'commander'
import { UpgossipError } from '../../errors.js'
import { dataDirOption } from '../control-client.js'
import { InputFileError, UsageError, formatBytes, note, say, sayJson } from '../output.js'

/** The target of a restore is not an absent or empty directory. */
export class RestoreTargetNotEmptyError extends UpgossipError {
  static override name = 'RestoreTargetNotEmptyError'
}

/** The restore was stopped (Ctrl-C, SIGTERM) before it was complete: what it wrote was removed. */
export class RestoreInterruptedError extends UpgossipError {
  static override name = 'RestoreInterruptedError'
}

interface RestoreOptions {
  in?: string
  data?: string
  takeOver?: boolean
  json?: boolean
}

/** Refuse a target that is a file, or a directory with anything in it but a lock. */
async function checkTarget (data: string): Promise<void> {
  const stat = await fs.stat(data).catch(() => undefined)
  if (stat == null) return
  if (!stat.isDirectory()) throw new RestoreTargetNotEmptyError(`${data} is not a directory; restore into a new or empty directory`)
  const names = (await fs.readdir(data)).filter(n => n !== 'lock')
  if (names.length > 0) throw new RestoreTargetNotEmptyError(`${data} is not empty (it holds ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}); a restore never mixes into a directory in use: restore into a new or empty directory`)
}

async function restore (argument: string | undefined, opts: RestoreOptions): Promise<void> {
  if ((argument == null) === (opts.in == null)) throw new UsageError('name the backup once: "upgossip restore FILE --data DIR" (or --in FILE)')
  const file = path.resolve(argument ?? opts.in ?? '')
  const stat = await fs.stat(file).catch(() => undefined)
  if (stat?.isFile() !== true) throw new InputFileError(`cannot read ${file}: ${stat == null ? 'no such file' : 'not a file'}`)
  const data = dataDirOption(opts.data)
  await checkTarget(data)
  const store = await import('../../store/index.js')
  const lock = await store.lockDataDir(data, { takeOver: opts.takeOver })
  if (lock.tookOver != null) note(store.describeTakeOver(data, lock.tookOver))
  let interrupted = false
  const interrupt = (): void => { interrupted = true }
  process.on('SIGINT', interrupt).on('SIGTERM', interrupt)
  let result: Awaited<ReturnType<typeof store.restoreBackup>>
  try {
    // something came in between the look and the lock
    if (lock.before === 'used') throw new RestoreTargetNotEmptyError(`${data} is not empty; restore into a new or empty directory`)
    let last = Date.now()
    result = await store.restoreBackup({
      archive: createReadStream(file),
      root: data,
      onProgress: done => {
        if (interrupted) throw new RestoreInterruptedError(`the restore was stopped before it was complete; ${data} is left as it was`)
        if (Date.now() - last < 2000) return
        last = Date.now()
        note(`restore: ${done.files} files, ${formatBytes(done.bytes)}`)
      }
    })
  } catch (err) {
    // a directory absent or empty before is so again; one in use was never touched
    await lock.release({ undo: lock.before !== 'used' })
    throw err
  } finally {
    process.off('SIGINT', interrupt).off('SIGTERM', interrupt)
  }
  await lock.release()
  const { manifest, totals } = result
  if (opts.json === true) {
    sayJson({ in: file, data, ...manifest, ...totals })
  } else {
    const who = `peer ${manifest.peerId ?? '(no peer.key)'}${manifest.app == null ? '' : `, ${manifest.app} ${manifest.version ?? '(none installed)'}`}`
    say(`restored ${file} into ${data}: ${who}; ${totals.files} files, ${formatBytes(totals.bytes)} (backed up ${manifest.created}${manifest.daemon === 'running' ? ' from a running daemon' : ''})`)
  }
  note(`start it with "upgossip daemon --data ${data}"; it is the same peer as the one backed up (same peer id): never run both`)
}

/** Register `restore` on the program. */
export function restoreCommand (program: Command): void {
  program.command('restore')
    .description('unpack a backup (upgossip backup) into a new or empty data directory')
    .argument('[file]', 'the backup archive')
    .option('--in <file>', 'the backup archive, instead of the argument')
    .option('--data <dir>', 'the data directory to restore into: absent or empty (default $UPGOSSIP_DATA or ~/.upgossip)')
    .option('--take-over', 'take over a lock in the target written on another host that no longer uses it')
    .option('--json', 'print a JSON summary')
    .addHelpText('after', `
Every path in the archive is checked before anything is written; a truncated or damaged
archive is refused and the directory left as it was. Directories are created 0700, files
0600. The restored directory has no lock and no control.json: start a daemon on it.

Example:
  $ upgossip restore a-2026-11-27.tar.gz --data ./a2
  $ upgossip daemon --data ./a2`)
    .action(async (file: string | undefined, opts: RestoreOptions) => { await restore(file, opts) })
}
