/**
 * Helpers for e2e tests of process apps (the manifest's `run`): whether python3 is here,
 * requests made as an app makes them (through its daemon's proxy), and the app processes
 * of a data directory as the kernel sees them, so that a test can tell an orphan from the
 * one process that should run.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import type { Peer } from './testnet.js'

/** True when python3 runs here (CI installs it; elsewhere the tests are skipped without it). */
export const hasPython = ((): boolean => {
  try {
    execFileSync('python3', ['--version'])
    return true
  } catch {
    return false
  }
})()

/** Throw in CI when python3 is missing: the tests must not be skipped there. */
export function requirePythonInCi (file: string): void {
  if (!hasPython && process.env.CI === 'true') throw new Error(`${file} needs python3 (CI=true): .ci/run installs it with apt`)
}

/** An HTTP answer. */
export interface Answer { status: number, headers: http.IncomingHttpHeaders, body: string }

/** The proxy URL of a peer's daemon (control.json's `proxy`). */
export function proxyOf (peer: Peer): string {
  return (peer.control as unknown as { proxy: string }).proxy
}

/** A request as an app makes it: to the proxy, an absolute URL, the proxy's credentials (unless `anonymous`). */
export async function viaProxy (proxy: string, method: string, url: string, body?: string | Uint8Array, options: { anonymous?: boolean, headers?: Record<string, string> } = {}): Promise<Answer> {
  const p = new URL(proxy)
  const auth = Buffer.from(`${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`).toString('base64')
  const headers = { ...(options.anonymous === true ? {} : { 'proxy-authorization': `Basic ${auth}` }), ...options.headers }
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: p.hostname, port: p.port, method, path: url, headers, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** The peers as a peer's proxy lists them (`http://upgossip/peers`). */
export async function proxyPeers (peer: Peer): Promise<{ self: string, selfHost: string, peers: Array<{ id: string, host: string, app: string, version: string, protocol: number }> }> {
  const answer = await viaProxy(proxyOf(peer), 'GET', 'http://upgossip/peers')
  if (answer.status !== 200) throw new Error(`GET http://upgossip/peers: ${answer.status} ${answer.body}`)
  return JSON.parse(answer.body)
}

/** True while a process with this pid exists. */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** True once a process is gone: no such pid, or a zombie (dead, waiting to be reaped by init). */
export async function gone (pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8')
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))
  } catch {
    return true
  }
}

/** A process that a daemon started for its app. */
export interface AppProcessInfo { pid: number, pgid: number, state: string, cmdline: string }

/**
 * Every live process whose environment names a state directory under `dataDir`
 * (`UPGOSSIP_STATE`): the process apps of that daemon, and whatever they started,
 * found through /proc whether or not a daemon recorded them. Zombies are left out.
 */
export async function appProcesses (dataDir: string): Promise<AppProcessInfo[]> {
  const prefix = `UPGOSSIP_STATE=${path.resolve(dataDir)}${path.sep}`
  const out: AppProcessInfo[] = []
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const environ = await fs.readFile(`/proc/${name}/environ`, 'utf8')
      if (!environ.split('\0').some(e => e.startsWith(prefix))) continue
      const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8')
      // pid (comm) state ppid pgrp …: comm may hold spaces and parens, so split after the last ')'
      const [state = '?', , pgrp = '0'] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (state === 'Z' || state === 'X') continue
      const cmdline = (await fs.readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').join(' ').trim()
      out.push({ pid: Number(name), pgid: Number(pgrp), state, cmdline })
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out
}

/** SIGKILL every app process under `root` (a test's own directory), for clean-up; returns those it found. */
export async function killAppProcesses (root: string): Promise<AppProcessInfo[]> {
  const found = await appProcesses(root)
  for (const p of found) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {}
  }
  return found
}

/** The process group recorded in the data directory (`app.pgid`), if any. */
export async function recordedGroup (dataDir: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await fs.readFile(path.join(dataDir, 'app.pgid'), 'utf8'), 10)
    return Number.isInteger(pid) ? pid : undefined
  } catch {
    return undefined
  }
}

/** The daemon's app.log. */
export async function appLog (peer: Peer): Promise<string> {
  return await fs.readFile(path.join(peer.dataDir, 'app.log'), 'utf8').catch(() => '')
}

/** The daemon's events (events.jsonl), parsed. */
export async function events (peer: Peer): Promise<Array<{ type: string, message: string, [key: string]: unknown }>> {
  const text = await fs.readFile(path.join(peer.dataDir, 'events.jsonl'), 'utf8').catch(() => '')
  const out: Array<{ type: string, message: string, [key: string]: unknown }> = []
  for (const line of text.split('\n')) {
    try {
      out.push(JSON.parse(line))
    } catch {
      // a line cut short by a crash, or an empty one
    }
  }
  return out
}
