/**
 * One `upgossip daemon` as a child process with its own data directory, reached through
 * the control API named in its `control.json`.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { UpgossipError } from '../errors.js'
import type { DaemonStatus } from '../daemon/index.js'

/** The `upgossip` executable of this installation. */
export const UPGOSSIP_BIN = fileURLToPath(new URL('../../bin/upgossip.js', import.meta.url))

/** A daemon did not start, or stopped answering. */
export class DaemonProcessError extends UpgossipError {
  static override name = 'DaemonProcessError'
}

/** A control API call was answered with an error; `remote` is the daemon's error name. */
export class ControlCallError extends UpgossipError {
  static override name = 'ControlCallError'
  constructor (message: string, readonly remote: string, readonly status: number) {
    super(message)
  }
}

/** What `control.json` holds. */
export interface ControlFile {
  url: string
  token: string
  peerId: string
  multiaddrs: string[]
  /** A process app's daemon: its forward proxy, `http://upgossip:TOKEN@127.0.0.1:PORT` (`UPGOSSIP_PROXY`). */
  proxy?: string
}

/** How to start one daemon. */
export interface DaemonProcessInit {
  /** A short name for people: `peer-3`. */
  name: string
  dataDir: string
  /** Where the daemon's stdout and stderr go. */
  logFile: string
  /** Arguments after `upgossip daemon`. */
  args: string[]
  env?: Record<string, string>
  /** Leave the daemon running when this process exits (`--keep`). */
  detached?: boolean
  /** Give up waiting for `control.json` after this long. */
  startTimeoutMs?: number
  /**
   * A command the daemon runs under, which must exec it in place so that the process is
   * the daemon (`['ip', 'netns', 'exec', NS]`: a daemon in a network namespace).
   */
  wrapper?: string[]
  /** How control API calls reach the daemon (default: the global `fetch`; a daemon in a namespace is reached through a forwarder). */
  fetch?: (url: string, init: RequestInit) => Promise<Response>
}

/** A running daemon. */
export class DaemonProcess {
  control!: ControlFile
  private exitCode: number | null | undefined
  private readonly proc: ChildProcess

  private constructor (readonly init: DaemonProcessInit) {
    const out = openSync(init.logFile, 'a')
    const argv = [process.execPath, UPGOSSIP_BIN, 'daemon', '--data', init.dataDir, ...init.args]
    const [command, ...args] = [...init.wrapper ?? [], ...argv] as [string, ...string[]]
    this.proc = spawn(command, args, {
      env: { ...process.env, ...init.env },
      stdio: ['ignore', out, out],
      detached: init.detached === true
    })
    closeSync(out)
    this.proc.on('exit', code => { this.exitCode = code })
    if (init.detached === true) this.proc.unref()
  }

  /** Start a daemon and wait until its control API is up. */
  static async start (init: DaemonProcessInit): Promise<DaemonProcess> {
    await fs.mkdir(path.dirname(init.logFile), { recursive: true })
    await fs.rm(path.join(init.dataDir, 'control.json'), { force: true })
    const daemon = new DaemonProcess(init)
    const deadline = Date.now() + (init.startTimeoutMs ?? 30_000)
    while (true) {
      if (daemon.exitCode !== undefined) throw new DaemonProcessError(`${init.name} exited with ${String(daemon.exitCode)} while starting; see ${init.logFile}:\n${await tail(init.logFile)}`)
      try {
        daemon.control = JSON.parse(await fs.readFile(path.join(init.dataDir, 'control.json'), 'utf8')) as ControlFile
        return daemon
      } catch {}
      if (Date.now() > deadline) {
        await daemon.kill()
        throw new DaemonProcessError(`timed out after ${Math.round((init.startTimeoutMs ?? 30_000) / 1000)} s waiting for ${init.name} to start; see ${init.logFile}`)
      }
      await sleep(100)
    }
  }

  get name (): string { return this.init.name }
  get peerId (): string { return this.control.peerId }
  get pid (): number | undefined { return this.proc.pid }
  /** A multiaddr other daemons can bootstrap from (loopback first). */
  get addr (): string { return this.control.multiaddrs[0] as string }
  /** True once the process has exited. */
  get exited (): boolean { return this.exitCode !== undefined }
  /** The dashboard URL that logs in with the token. */
  get dashboardUrl (): string { return `${this.control.url}/?token=${encodeURIComponent(this.control.token)}` }

  /** A control API call; resolves with the parsed JSON body, throws {@link ControlCallError} on a 4xx/5xx. */
  async api<T = unknown> (method: string, route: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    const binary = body instanceof Uint8Array
    const res = await (this.init.fetch ?? fetch)(this.control.url + route, {
      method,
      headers: {
        authorization: `Bearer ${this.control.token}`,
        ...(body == null ? {} : { 'content-type': binary ? 'application/octet-stream' : 'application/json' })
      },
      body: body == null ? undefined : binary ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs)
    })
    const text = await res.text()
    let json: unknown
    try {
      json = text === '' ? null : JSON.parse(text)
    } catch {
      json = text
    }
    if (!res.ok) {
      const error = (json as { error?: { message?: unknown, code?: unknown } } | null)?.error
      throw new ControlCallError(`${this.name}: ${method} ${route}: ${String(error?.message ?? res.statusText)}`, String(error?.code ?? res.status), res.status)
    }
    return json as T
  }

  async status (): Promise<DaemonStatus> {
    return await this.api<DaemonStatus>('GET', '/status', undefined, 5000)
  }

  async history (): Promise<Array<Record<string, unknown>>> {
    return await this.api('GET', '/history')
  }

  /** One request to this peer's app (`protocol`: the request's version) or, with `peer`, from it to another peer's app. */
  async call (request: unknown, opts: { peer?: string, protocol?: number, timeoutMs?: number } = {}): Promise<unknown> {
    const body = { peer: opts.peer ?? null, request, ...(opts.protocol == null ? {} : { protocol: opts.protocol }) }
    return (await this.api<{ response: unknown }>('POST', '/call', body, opts.timeoutMs ?? 60_000)).response
  }

  /** SIGTERM, and SIGKILL if it has not exited within `graceMs`. */
  async stop (graceMs = 10_000): Promise<void> {
    if (this.exited) return
    const done = new Promise(resolve => this.proc.once('exit', resolve))
    this.proc.kill('SIGTERM')
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs)
    await done
    clearTimeout(timer)
  }

  /** Send `signal` (SIGSTOP, SIGCONT…) unless the process has exited. */
  signal (signal: NodeJS.Signals): void {
    if (!this.exited) this.proc.kill(signal)
  }

  /** Resolves when the process has exited (at once if it has). */
  async exit (): Promise<void> {
    if (this.exited) return
    await new Promise(resolve => this.proc.once('exit', resolve))
  }

  /** SIGKILL at once. */
  async kill (): Promise<void> {
    if (this.exited) return
    const done = new Promise(resolve => this.proc.once('exit', resolve))
    this.proc.kill('SIGKILL')
    await done
  }
}

async function tail (file: string, lines = 15): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '')
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

/** Wait `ms`. */
export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/**
 * Call `check` every `intervalMs` until it holds (resolves `undefined`) or `timeoutMs`
 * has passed (resolves with a message naming `what` and the last error `check` threw).
 */
export async function pollUntil (what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 250): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    try {
      if (await check()) return undefined
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(intervalMs)
  }
  return `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last === '' ? '' : ` (last error: ${last})`}`
}
