/**
 * Talking to a running daemon's control API, found through `--data DIR` (its
 * `control.json`) or given as `--daemon URL --token T`.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { RemoteNamedError, UpgossipError } from '../errors.js'
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

/** Find the control endpoint from the options. */
export async function resolveEndpoint (target: DaemonTarget): Promise<ControlEndpoint> {
  if (target.daemon != null) {
    if (target.token == null) throw new UsageError('--daemon URL needs --token T')
    return { url: target.daemon.replace(/\/+$/, ''), token: target.token }
  }
  const data = path.resolve(target.data ?? process.env.UPGOSSIP_DATA ?? path.join(os.homedir(), '.upgossip'))
  const file = path.join(data, 'control.json')
  let json: { url?: unknown, token?: unknown } | null
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8'))
  } catch {
    throw new DaemonUnreachableError(`no daemon is running on ${data} (no readable ${file}); start one with "upgossip daemon --data ${data}"`)
  }
  if (typeof json?.url !== 'string' || typeof json.token !== 'string') throw new DaemonUnreachableError(`${file} is damaged; restart the daemon`)
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
