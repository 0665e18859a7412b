/**
 * Talking to a running daemon's control API, found through `--data DIR` (its
 * `control.json`) or given as `--daemon URL --token T`. A `control.json` is trusted only
 * while the daemon that wrote it holds the directory's lock: a live process on this host,
 * the lock this directory's own (not copied in with it), the same pid in both.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { RemoteNamedError, UpgossipError } from '../errors.js'
import { lockHolderState, readDataDirLock } from '../store/index.js'
import { UsageError } from './output.js'

/** No daemon answers for that data directory or URL. */
export class DaemonUnreachableError extends UpgossipError {
  static override name = 'DaemonUnreachableError'
}

/** The daemon answered with an error (named after the daemon's error). */
export class DaemonRefusedError extends RemoteNamedError {
  static override name = 'DaemonRefusedError'
}

/** Options every command that talks to a daemon takes. */
export interface DaemonTarget {
  data?: string
  daemon?: string
  token?: string
}

/** Where and how to reach the daemon. */
export interface ControlEndpoint {
  url: string
  token: string
}

/** The data directory `--data` names (default `$UPGOSSIP_DATA`, else `~/.upgossip`), absolute. */
export function dataDirOption (data: string | undefined): string {
  return path.resolve(data ?? process.env.UPGOSSIP_DATA ?? path.join(os.homedir(), '.upgossip'))
}

/** Why the `control.json` of `data` does not belong to the daemon holding its lock, or undefined when it does. */
async function staleControl (data: string, pid: unknown): Promise<string | undefined> {
  const holder = await readDataDirLock(data)
  if (holder == null) return 'the directory has no lock, so the daemon that wrote it has stopped'
  switch (await lockHolderState(data, holder)) {
    case 'other-host': return `the lock was written on ${holder.host}, not on this host`
    case 'copied': return `it was copied in with the directory, with the lock of process ${holder.pid}, which holds the directory it was copied from`
    case 'gone': return `process ${holder.pid}, which held the lock, no longer runs`
    case 'live':
      // a control.json of a daemon older than the pid field: the live lock is all there is to go by
      return typeof pid === 'number' && pid !== holder.pid ? `it was written by process ${pid}, but process ${holder.pid} holds the lock` : undefined
  }
}

/** Find the control endpoint from the options. */
export async function resolveEndpoint (target: DaemonTarget): Promise<ControlEndpoint> {
  if (target.daemon != null) {
    if (target.token == null) throw new UsageError('--daemon URL needs --token T')
    return { url: target.daemon.replace(/\/+$/, ''), token: target.token }
  }
  const data = dataDirOption(target.data)
  const file = path.join(data, 'control.json')
  let json: { url?: unknown, token?: unknown, pid?: unknown } | null
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8'))
  } catch {
    throw new DaemonUnreachableError(`no daemon is running on ${data} (no readable ${file}); start one with "upgossip daemon --data ${data}"`)
  }
  if (typeof json?.url !== 'string' || typeof json.token !== 'string') throw new DaemonUnreachableError(`${file} is damaged; restart the daemon`)
  const stale = await staleControl(data, json.pid)
  if (stale != null) throw new DaemonUnreachableError(`no daemon runs on ${data} (control.json is stale: ${stale}); start one with "upgossip daemon --data ${data}"`)
  return { url: json.url, token: json.token }
}

/** Call the control API; throws {@link DaemonRefusedError} with the daemon's reason on a 4xx/5xx. */
export async function callDaemon (endpoint: ControlEndpoint, method: string, route: string, body?: Uint8Array, contentType = 'application/vnd.ipld.car'): Promise<Response> {
  let res: Response
  try {
    res = await fetch(endpoint.url + route, {
      method,
      headers: { authorization: `Bearer ${endpoint.token}`, ...(body == null ? {} : { 'content-type': contentType }) },
      body
    })
  } catch (err) {
    throw new DaemonUnreachableError(`the daemon at ${endpoint.url} does not answer (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); is it running?`)
  }
  if (!res.ok) {
    let code = ''
    let message = `${res.status} ${res.statusText}`
    try {
      const json = await res.json() as { error?: { code?: string, message?: string } }
      code = json.error?.code ?? ''
      message = json.error?.message ?? message
    } catch {}
    throw new DaemonRefusedError(code, message)
  }
  return res
}

/**
 * The release RELEASE names (a release id, or `APP@VERSION`) among those the daemon knows
 * (`GET /status`), as status shows it; `UnknownReleaseError` when it knows none such.
 */
export async function daemonRelease<R extends { id: string, app: string, version: string }> (endpoint: ControlEndpoint, ref: string): Promise<R> {
  const status = await (await callDaemon(endpoint, 'GET', '/status')).json() as { releases: R[] }
  const at = ref.lastIndexOf('@')
  const found = status.releases.find(r => at > 0 ? `${r.app}@${r.version}` === ref : r.id === ref)
  if (found != null) return found
  const { UnknownReleaseError } = await import('../daemon/index.js')
  throw new UnknownReleaseError(`the daemon does not know ${ref}; "upgossip status" lists its releases`)
}
