/**
 * The demo apps a testnet runs: `kv` (Node.js, the SDK; testnet/apps/kv/) and `pykv`
 * (Python, a process app with no SDK; testnet/apps/pykv/). Each comes with its clients'
 * codecs, one per protocol version, so the load, the seeds and the common checks speak to
 * either the same way.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { UpgossipError } from '../errors.js'
import { kvCodec } from './load.js'
import type { KvClientCodec } from './load.js'

/** A demo app the testnet can run. */
export interface TestnetApp {
  /** The app's name (trust file, bundles, releases). */
  name: string
  /** Where its versions live (`v1/`, `v2/`, …). */
  dir: string
  /** Requests and answers of protocol `protocol`, as a client of one peer's app sends them through `POST /call`. */
  codec: (protocol: number) => KvClientCodec
  /** The protocol a version speaks natively. */
  native: (version: string) => number
}

function major (version: string): number {
  const n = Number(version.split('.')[0])
  return Number.isFinite(n) ? n : 1
}

/** The demo app (testnet/apps/kv). */
export const KV_APP: TestnetApp = {
  name: 'kv',
  dir: fileURLToPath(new URL('../../testnet/apps/kv/', import.meta.url)),
  codec: kvCodec,
  // v4 keeps v3's protocol
  native: version => Math.min(3, Math.max(1, major(version)))
}

/** An answer of `POST /call` from a process app: the HTTP response, its body as text. */
interface PrintedResponse { status: number, body?: string }

function httpAnswer (response: unknown): PrintedResponse {
  const r = response as PrintedResponse | null
  if (r == null || typeof r !== 'object' || typeof r.status !== 'number') throw new Error(`answer ${JSON.stringify(response)?.slice(0, 120)} is not an HTTP response`)
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${String(r.body ?? '').trim().slice(0, 200)}`)
  return r
}

const keyPath = (prefix: string, key: string): string => `${prefix}${encodeURIComponent(key)}`

/** pykv's wire formats (testnet/apps/pykv/README.md), as HTTP request messages for `POST /call`. */
export const PYKV_CODECS: Record<number, KvClientCodec> = {
  1: {
    protocol: 1,
    put: (key, value) => ({ method: 'PUT', path: keyPath('/kv/', key), headers: { 'content-type': 'text/plain; charset=utf-8' }, body: String(value) }),
    get: key => ({ method: 'GET', path: keyPath('/kv/', key), headers: {} }),
    value: response => httpAnswer(response).body
  },
  2: {
    protocol: 2,
    put: (key, value) => ({ method: 'PUT', path: keyPath('/v2/kv/', key), headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value }) }),
    get: key => ({ method: 'GET', path: keyPath('/v2/kv/', key), headers: {} }),
    value: response => pykvEntry(response).value
  }
}

/** A pykv 2 entry from an answer in protocol 2: `{ value, updated }`. */
export function pykvEntry (response: unknown): { value: unknown, updated: unknown } {
  const body = httpAnswer(response).body ?? ''
  try {
    const entry = JSON.parse(body) as { value?: unknown, updated?: unknown }
    return { value: entry.value, updated: entry.updated }
  } catch {
    throw new Error(`pykv 2 answered ${JSON.stringify(body.slice(0, 120))}, not JSON`)
  }
}

/** The Python demo app (testnet/apps/pykv). */
export const PYKV_APP: TestnetApp = {
  name: 'pykv',
  dir: fileURLToPath(new URL('../../testnet/apps/pykv/', import.meta.url)),
  codec: protocol => {
    const codec = PYKV_CODECS[protocol]
    if (codec == null) throw new Error(`pykv has no protocol ${protocol}`)
    return codec
  },
  native: version => Math.min(2, Math.max(1, major(version)))
}

/** Something a scenario needs is not on this machine. */
export class MissingPrerequisiteError extends UpgossipError {
  static override name = 'MissingPrerequisiteError'
}

/** The version `python3 --version` prints; throws {@link MissingPrerequisiteError} when there is no python3 on PATH that runs. */
export async function requirePython (why: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile('python3', ['--version'], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err == null) {
        resolve((stdout + stderr).trim())
        return
      }
      const code = (err as NodeJS.ErrnoException).code
      reject(new MissingPrerequisiteError(code === 'ENOENT'
        ? `${why}: python3 was not found on PATH; install Python 3 (Debian: apt-get install python3) and run again`
        : `${why}: python3 --version failed (${String(code ?? err.message)}): ${stderr.trim().slice(0, 200)}`))
    })
  })
}
