/**
 * Two network namespaces joined by a veth pair, for tests that need real separate hosts
 * on one machine (multicast, partitions). Root and iproute2 only: `netnsUnavailable()`
 * says why not, for a skip message. Every namespace and link made here is removed by
 * `remove()`, which the test calls in `afterAll`, also after a failure.
 *
 * @example
 * ```ts
 * const pair = NetnsPair.create()
 * spawnIn(pair.ns[0], ['daemon', '--listen', `/ip4/${pair.addr[0]}/tcp/0`, …])
 * pair.linkDown(1)   // cut the link from side 1
 * pair.linkUp(1)
 * pair.remove()
 * ```
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { BIN } from './testnet.js'

function ip (...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' })
}

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'it needs root to make network namespaces'
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' })
    return undefined
  } catch {
    return 'it needs iproute2 ("ip netns") to make network namespaces'
  }
}

/** Two namespaces, `ns[0]` and `ns[1]`, each with one end of a veth pair at `addr[0]` / `addr[1]` (one /24). */
export class NetnsPair {
  readonly ns: [string, string]
  readonly dev: [string, string]
  readonly addr: [string, string]
  private removed = false

  private constructor (tag: string) {
    this.ns = [`ug${tag}a`, `ug${tag}b`]
    this.dev = [`v${tag}a`, `v${tag}b`]
    const subnet = `10.211.${parseInt(tag.slice(0, 2), 16)}`
    this.addr = [`${subnet}.1`, `${subnet}.2`]
  }

  /** Make the namespaces and the link, both ends up; `multicast` adds a route for 224.0.0.0/4 (mDNS). */
  static create (options: { multicast?: boolean } = {}): NetnsPair {
    const pair = new NetnsPair(randomBytes(3).toString('hex'))
    try {
      for (const n of pair.ns) ip('netns', 'add', n)
      ip('link', 'add', pair.dev[0], 'type', 'veth', 'peer', 'name', pair.dev[1])
      for (const i of [0, 1] as const) {
        const n = pair.ns[i]
        ip('link', 'set', pair.dev[i], 'netns', n)
        ip('-n', n, 'addr', 'add', `${pair.addr[i]}/24`, 'dev', pair.dev[i])
        ip('-n', n, 'link', 'set', pair.dev[i], 'up')
        ip('-n', n, 'link', 'set', 'lo', 'up')
        if (options.multicast === true) ip('-n', n, 'route', 'add', '224.0.0.0/4', 'dev', pair.dev[i])
      }
    } catch (err) {
      pair.remove()
      throw err
    }
    return pair
  }

  /** Take side `i`'s end of the link down, inside its namespace (the other end loses its carrier). */
  linkDown (i: 0 | 1): void {
    ip('-n', this.ns[i], 'link', 'set', this.dev[i], 'down')
  }

  /** Bring side `i`'s end of the link up again. */
  linkUp (i: 0 | 1): void {
    ip('-n', this.ns[i], 'link', 'set', this.dev[i], 'up')
  }

  /** Delete both namespaces (which deletes the veth pair in them); safe to call twice. */
  remove (): void {
    if (this.removed) return
    this.removed = true
    for (const n of this.ns) { try { ip('netns', 'del', n) } catch {} }
    // a pair never moved into a namespace lives in the root namespace
    try { ip('link', 'del', this.dev[0]) } catch {}
  }

  /** Namespaces and links of this pair still present on the machine (empty once removed). */
  leftovers (): string[] {
    const namespaces = execFileSync('ip', ['netns', 'list']).toString()
    const links = execFileSync('ip', ['-o', 'link', 'show']).toString()
    return [...this.ns.filter(n => namespaces.includes(n)), ...this.dev.filter(d => links.includes(`${d}@`) || links.includes(`${d}:`))]
  }
}

/** Start `upgossip ARGS…` inside namespace `ns` (the CLI finds the daemon's control API on that namespace's loopback). */
export function spawnIn (ns: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options })
}

/** Run `upgossip ARGS…` inside namespace `ns` to the end. */
export async function runIn (ns: string, args: string[], timeoutMs = 30_000): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawnIn(ns, args)
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', d => { stdout += String(d) })
    child.stderr?.on('data', d => { stderr += String(d) })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', code => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }) })
  })
}

/** SIGTERM each process, wait for it to exit (SIGKILL after `graceMs`). */
export async function stopProcesses (procs: ChildProcess[], graceMs = 10_000): Promise<void> {
  await Promise.all(procs.map(async p => {
    if (p.exitCode != null || p.signalCode != null) return
    const exited = new Promise(resolve => p.once('exit', resolve))
    p.kill('SIGTERM')
    const timer = setTimeout(() => p.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
  }))
}
