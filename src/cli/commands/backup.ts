/**
 * `upgossip backup`: a data directory into one archive file (a gzip tar). With a daemon
 * running on it, the daemon pauses switching for the copy (a lease renewed while it
 * lasts, checked once more before the archive is completed); without one, the
 * directory's lock is held for the copy, so no daemon starts in the middle of it.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { Command } from 'commander'
import { UpgossipError } from '../../errors.js'
import type { BackupTotals, DataDirLock } from '../../store/index.js'
import { DaemonUnreachableError, callDaemon, dataDirOption, resolveEndpoint } from '../control-client.js'
import type { ControlEndpoint } from '../control-client.js'
import { UsageError, formatBytes, note, say, sayJson } from '../output.js'
import { buildString } from '../../build-info.js'
import type { BackupLeaseResult } from '../../daemon/index.js'

/** `--data` names no data directory. */
export class NotADataDirError extends UpgossipError {
  static override name = 'NotADataDirError'
}

/** The backup was stopped (Ctrl-C, SIGTERM) before it was complete: nothing was written. */
export class BackupInterruptedError extends UpgossipError {
  static override name = 'BackupInterruptedError'
}

interface BackupOptions {
  data?: string
  out: string
  takeOver?: boolean
  json?: boolean
}

/** What the daemon answers to `POST /backup/begin` and `/backup/renew`. */
type Lease = BackupLeaseResult

/** How often a held lease is renewed (the daemon lets one go after 2 minutes without a word). */
const RENEW_MS = 30_000

async function exists (file: string): Promise<boolean> {
  return await fs.lstat(file).then(() => true, () => false)
}

/** The daemon holding `data`, if one runs on it (its lock live, its control.json its own). */
async function runningDaemon (data: string): Promise<ControlEndpoint | undefined> {
  const { readDataDirLock, lockHolderState, DataDirLockedError } = await import('../../store/index.js')
  const holder = await readDataDirLock(data)
  if (holder == null || await lockHolderState(data, holder) !== 'live') return undefined
  try {
    return await resolveEndpoint({ data })
  } catch (err) {
    if (!(err instanceof DaemonUnreachableError)) throw err
    throw new DataDirLockedError(`${data} is locked by process ${holder.pid}, which has no control API to pause (a daemon still starting, or another backup or restore); try again when it is done`)
  }
}

/** Throttled progress on stderr: at most one line every 2 seconds. */
function progress (estimate: BackupTotals): (done: BackupTotals) => void {
  let last = Date.now()
  return done => {
    if (Date.now() - last < 2000) return
    last = Date.now()
    const share = estimate.bytes > 0 ? ` (${Math.min(99, Math.floor(100 * done.bytes / estimate.bytes))}%)` : ''
    note(`backup: ${done.files} of ~${estimate.files} files, ${formatBytes(done.bytes)} of ~${formatBytes(estimate.bytes)}${share}`)
  }
}

async function backup (opts: BackupOptions): Promise<void> {
  const store = await import('../../store/index.js')
  const data = dataDirOption(opts.data)
  const dir = new store.DataDir(data)
  const out = path.resolve(opts.out)
  if (!await store.isDirectory(data) || !(await exists(dir.peerKey) || await exists(dir.nodeState))) {
    throw new NotADataDirError(`${data} is not an upgossip data directory (it has no peer.key or node.json); nothing to back up`)
  }
  if (out.startsWith(data + path.sep)) throw new UsageError(`--out ${opts.out} is inside the data directory it backs up; write it elsewhere`)
  if (await exists(out)) throw new store.ArchiveExistsError(`${out} exists; a backup never replaces a file: choose another name or remove it`)

  const endpoint = await runningDaemon(data)
  let lock: DataDirLock | undefined
  let lease: Lease | undefined
  let renewFailed: Error | undefined
  let renewal: NodeJS.Timeout | undefined
  let interrupted = false
  const interrupt = (): void => { interrupted = true }
  process.on('SIGINT', interrupt).on('SIGTERM', interrupt)
  const renew = async (): Promise<void> => {
    if (endpoint == null || lease == null) return
    lease = await (await callDaemon(endpoint, 'POST', '/backup/renew', Buffer.from(JSON.stringify({ lease: lease.lease })), 'application/json')).json() as Lease
  }
  try {
    if (endpoint != null) {
      note(`a daemon runs on ${data}: it pauses switching for the backup (a switch in progress finishes first)`)
      lease = await (await callDaemon(endpoint, 'POST', '/backup/begin')).json() as Lease
      renewal = setInterval(() => { renew().catch((err: Error) => { renewFailed = err }) }, RENEW_MS)
    } else {
      lock = await store.lockDataDir(data, { takeOver: opts.takeOver })
      if (lock.tookOver != null) note(store.describeTakeOver(data, lock.tookOver))
    }
    const { readPeerId } = await import('../../net/index.js')
    const { readNodeState } = await import('../../daemon/index.js')
    const node = lease == null ? await readNodeState(dir.nodeState).catch(() => undefined) : undefined
    const created = new Date().toISOString()
    const manifest = {
      upgossip: buildString(),
      created,
      peerId: lease?.peerId ?? await readPeerId(dir.peerKey),
      app: lease != null ? lease.app : node?.app ?? null,
      version: lease != null ? lease.version : node?.current?.version ?? null,
      daemon: lease == null ? 'stopped' as const : 'running' as const
    }
    const report = progress(await store.measureDataDir(data))
    const started = Date.now()
    const { totals, archiveBytes } = await store.writeBackup({
      root: data,
      out,
      manifest,
      onProgress: done => {
        if (interrupted) throw new BackupInterruptedError('the backup was stopped before it was complete; nothing was written')
        if (renewFailed != null) throw renewFailed
        report(done)
      },
      // the lease still held: switching stayed paused for the whole copy
      beforeFinish: renew,
      onSkipped: (rel, why) => { note(`left out ${rel}: ${why}`) }
    })
    let pausedMs: number | undefined
    if (endpoint != null && lease != null) {
      const ended = await (await callDaemon(endpoint, 'POST', '/backup/end', Buffer.from(JSON.stringify({ lease: lease.lease })), 'application/json')).json() as { pausedMs: number }
      pausedMs = ended.pausedMs
      lease = undefined
    }
    const result = { out, data, ...manifest, ...totals, archiveBytes, ms: Date.now() - started, ...(pausedMs == null ? {} : { pausedMs }) }
    if (opts.json === true) {
      sayJson(result)
      return
    }
    const who = `peer ${manifest.peerId ?? '(no peer.key)'}${manifest.app == null ? '' : `, ${manifest.app} ${manifest.version ?? '(none installed)'}`}`
    say(`backed up ${data} to ${out}: ${who}; ${totals.files} files, ${formatBytes(totals.bytes)} (${formatBytes(archiveBytes)} compressed)`)
    note(pausedMs == null ? 'no daemon ran on it; its lock was held for the copy' : `the daemon paused switching for ${(pausedMs / 1000).toFixed(1)}s`)
  } finally {
    clearInterval(renewal)
    process.off('SIGINT', interrupt).off('SIGTERM', interrupt)
    if (endpoint != null && lease != null) {
      await callDaemon(endpoint, 'POST', '/backup/end', Buffer.from(JSON.stringify({ lease: lease.lease })), 'application/json').catch(() => {})
    }
    await lock?.release()
  }
}

/** Register `backup` on the program. */
export function backupCommand (program: Command): void {
  program.command('backup')
    .description('copy a data directory into one archive file (gzip tar), consistent even while its daemon runs')
    .option('--data <dir>', 'the data directory (default $UPGOSSIP_DATA or ~/.upgossip)')
    .requiredOption('--out <file>', 'the archive to write (it must not exist); it holds the peer\'s private key: keep it as safe as the directory')
    .option('--take-over', 'with no daemon running: take over a lock written on another host that no longer uses the directory')
    .option('--json', 'print a JSON summary')
    .addHelpText('after', `
With a daemon running on DIR, the daemon pauses switching for the copy (a switch in
progress finishes first; the pause ends by itself 2 minutes after the backup stops
renewing it); its app keeps serving. Without one, the directory's lock is held for the
copy. The lock, control.json and temporary files are left out. Progress goes to stderr.

Example:
  $ upgossip backup --data ./a --out a-$(date +%F).tar.gz
  $ upgossip restore a-2026-11-27.tar.gz --data ./a2`)
    .action(async (opts: BackupOptions) => { await backup(opts) })
}
