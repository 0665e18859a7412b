/**
 * Where the chaos run's daemons live. As root with iproute2, each daemon runs in a network
 * namespace of its own, joined to one bridge by a veth pair, its data directory on a small
 * tmpfs; then the nemesis can cut a peer off (its veth down), slow its link (tc tbf), make
 * it lossy (tc netem, when the kernel has it) and fill its disk. Elsewhere every daemon
 * listens on loopback and only process and clock faults are struck. `remove()` undoes
 * everything made here, also after a failure.
 *
 * A daemon's control API listens on its namespace's own 127.0.0.1, so the run reaches it
 * through a small forwarder started inside the namespace on a Unix socket (a path in the
 * file system, which every namespace sees).
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { LOOPBACK_KINDS } from './plan.ts'
import type { FaultKind } from './plan.ts'

const FORWARDER = fileURLToPath(new URL('./forwarder.ts', import.meta.url))
const TMPFS_SIZE = '64m'

function run (cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

function tryRun (cmd: string, args: string[]): boolean {
  try { run(cmd, args); return true } catch { return false }
}

/** Why namespaces cannot be used here, or undefined when they can. */
export function namespacesUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'not root'
  if (!tryRun('ip', ['netns', 'list'])) return 'no iproute2 ("ip netns")'
  return undefined
}

/** One daemon's place: how to start it and how to reach it. */
export interface HostSlot {
  name: string
  dataDir: string
  /** `--listen` for this daemon. */
  listen: string
  /** The address other daemons dial it on (its multiaddrs are filtered by it). */
  address: string
  wrapper?: string[]
  fetch?: (url: string, init: RequestInit) => Promise<Response>
}

/** The daemons' hosts and the network and disk faults on them. */
export interface Hosts {
  readonly mode: 'netns' | 'loopback'
  /** The fault kinds this mode can strike. */
  readonly kinds: FaultKind[]
  /** What this mode lacks, for the report (`lossy-link: no netem in this kernel`). */
  readonly notes: string[]
  slot: (i: number) => HostSlot
  cut: (name: string) => void
  mend: (name: string) => void
  shape: (name: string, how: 'slow' | 'lossy') => void
  unshape: (name: string) => void
  fillDisk: (name: string) => Promise<void>
  freeDisk: (name: string) => Promise<void>
  remove: () => Promise<void>
}

/** Every daemon on loopback: process and clock faults only. */
export class LoopbackHosts implements Hosts {
  readonly mode = 'loopback'
  readonly kinds = LOOPBACK_KINDS
  readonly notes: string[]
  private readonly root: string
  constructor (root: string, why: string) {
    this.root = root
    this.notes = [`loopback mode (${why}): no partitions, shaped links or full disks`]
  }

  slot (i: number): HostSlot {
    return { name: `peer-${i + 1}`, dataDir: path.join(this.root, `peer-${i + 1}`), listen: '/ip4/127.0.0.1/tcp/0', address: '127.0.0.1' }
  }

  cut (): void { throw new Error('loopback mode cannot partition') }
  mend (): void {}
  shape (): void { throw new Error('loopback mode cannot shape links') }
  unshape (): void {}
  async fillDisk (): Promise<void> { throw new Error('loopback mode cannot fill a disk') }
  async freeDisk (): Promise<void> {}
  async remove (): Promise<void> {}
}

/** One namespace per daemon on a bridge, data directories on tmpfs. */
export class NamespaceHosts implements Hosts {
  readonly mode = 'netns'
  readonly kinds: FaultKind[]
  readonly notes: string[] = []
  private readonly tag = randomBytes(3).toString('hex')
  private readonly bridge = `ucb${this.tag}`
  private readonly subnet = `10.213.${parseInt(this.tag.slice(0, 2), 16)}`
  private readonly namespaces: string[] = []
  private readonly mounts: string[] = []
  private readonly forwarders: ChildProcess[] = []
  private readonly shaped = new Set<string>()

  private readonly root: string
  private constructor (root: string) {
    this.root = root
    const netem = NamespaceHosts.probeNetem()
    if (netem != null) this.notes.push(`lossy-link not struck: ${netem}`)
    this.kinds = NamespaceHosts.kindsHere(netem)
  }

  /** The kinds a namespace run strikes on this machine (lossy links only where the kernel has netem). */
  static kindsHere (netem = NamespaceHosts.probeNetem()): FaultKind[] {
    return [...LOOPBACK_KINDS, 'partition', 'slow-link', 'disk-full', ...(netem == null ? ['lossy-link' as const] : [])]
  }

  /** Make the bridge, `peers` namespaces with their links, tmpfs data directories and forwarders. */
  static async create (root: string, peers: number): Promise<NamespaceHosts> {
    const hosts = new NamespaceHosts(root)
    try {
      run('ip', ['link', 'add', hosts.bridge, 'type', 'bridge'])
      run('ip', ['link', 'set', hosts.bridge, 'up'])
      for (let i = 0; i < peers; i++) await hosts.add(i)
    } catch (err) {
      await hosts.remove()
      throw err
    }
    return hosts
  }

  private ns (i: number): string { return `ugc${this.tag}p${i + 1}` }
  private hostDev (i: number): string { return `uc${this.tag}h${i + 1}` }
  private nsDev (i: number): string { return `uc${this.tag}n${i + 1}` }
  private index (name: string): number { return Number(name.replace(/^peer-/, '')) - 1 }
  private socket (i: number): string { return path.join(this.root, `peer-${i + 1}.sock`) }

  private async add (i: number): Promise<void> {
    const ns = this.ns(i)
    run('ip', ['netns', 'add', ns])
    this.namespaces.push(ns)
    run('ip', ['link', 'add', this.hostDev(i), 'type', 'veth', 'peer', 'name', this.nsDev(i)])
    run('ip', ['link', 'set', this.hostDev(i), 'master', this.bridge])
    run('ip', ['link', 'set', this.hostDev(i), 'up'])
    run('ip', ['link', 'set', this.nsDev(i), 'netns', ns])
    run('ip', ['-n', ns, 'addr', 'add', `${this.subnet}.${i + 1}/24`, 'dev', this.nsDev(i)])
    run('ip', ['-n', ns, 'link', 'set', this.nsDev(i), 'up'])
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    const dataDir = path.join(this.root, `peer-${i + 1}`)
    await fs.mkdir(dataDir, { recursive: true })
    run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0700`, 'tmpfs', dataDir])
    this.mounts.push(dataDir)
    const forwarder = spawn('ip', ['netns', 'exec', ns, process.execPath, FORWARDER, this.socket(i), dataDir], { stdio: ['ignore', 'ignore', 'inherit'] })
    this.forwarders.push(forwarder)
    for (let t = 0; t < 100; t++) {
      if (await fs.stat(this.socket(i)).then(() => true, () => false)) return
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    throw new Error(`the control forwarder of peer-${i + 1} did not start`)
  }

  slot (i: number): HostSlot {
    const address = `${this.subnet}.${i + 1}`
    return {
      name: `peer-${i + 1}`,
      dataDir: path.join(this.root, `peer-${i + 1}`),
      listen: `/ip4/${address}/tcp/0`,
      address,
      wrapper: ['ip', 'netns', 'exec', this.ns(i)],
      fetch: socketFetch(this.socket(i))
    }
  }

  cut (name: string): void { run('ip', ['link', 'set', this.hostDev(this.index(name)), 'down']) }
  mend (name: string): void { run('ip', ['link', 'set', this.hostDev(this.index(name)), 'up']) }

  shape (name: string, how: 'slow' | 'lossy'): void {
    const i = this.index(name)
    const qdisc = how === 'slow' ? ['tbf', 'rate', '48kbit', 'burst', '4kb', 'latency', '800ms'] : ['netem', 'delay', '80ms', '40ms', 'loss', '8%']
    run('tc', ['qdisc', 'replace', 'dev', this.hostDev(i), 'root', ...qdisc])
    run('ip', ['netns', 'exec', this.ns(i), 'tc', 'qdisc', 'replace', 'dev', this.nsDev(i), 'root', ...qdisc])
    this.shaped.add(name)
  }

  unshape (name: string): void {
    const i = this.index(name)
    tryRun('tc', ['qdisc', 'del', 'dev', this.hostDev(i), 'root'])
    tryRun('ip', ['netns', 'exec', this.ns(i), 'tc', 'qdisc', 'del', 'dev', this.nsDev(i), 'root'])
    this.shaped.delete(name)
  }

  /** Fill `name`'s tmpfs to the last block with a filler file. */
  async fillDisk (name: string): Promise<void> {
    const dir = path.join(this.root, name)
    const s = await fs.statfs(dir)
    await fs.writeFile(path.join(dir, 'chaos-filler'), Buffer.alloc(s.bavail * s.bsize)).catch(() => {})
  }

  async freeDisk (name: string): Promise<void> {
    await fs.rm(path.join(this.root, name, 'chaos-filler'), { force: true })
  }

  /** Stop the forwarders, unmount, delete the namespaces (and so their links) and the bridge. Daemons must be stopped first. */
  async remove (): Promise<void> {
    for (const f of this.forwarders) if (f.exitCode == null && f.signalCode == null) f.kill('SIGKILL')
    for (const dir of this.mounts) if (!tryRun('umount', [dir])) tryRun('umount', ['-l', dir])
    this.mounts.length = 0
    for (const ns of this.namespaces) tryRun('ip', ['netns', 'del', ns])
    this.namespaces.length = 0
    tryRun('ip', ['link', 'del', this.bridge])
  }

  /** Namespaces, links and mounts of this run still on the machine (empty after `remove`). */
  leftovers (): string[] {
    const out = execFileSync('ip', ['-o', 'link', 'show']).toString() + execFileSync('ip', ['netns', 'list']).toString() + execFileSync('mount').toString()
    return out.split('\n').filter(l => l.includes(this.tag) || l.includes(this.root))
  }

  private static probeNetem (): string | undefined {
    const dev = `ucq${randomBytes(3).toString('hex')}`
    if (!tryRun('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}x`])) return 'cannot make a probe link'
    try {
      return tryRun('tc', ['qdisc', 'add', 'dev', dev, 'root', 'netem', 'loss', '1%']) ? undefined : 'this kernel has no netem qdisc'
    } finally {
      tryRun('ip', ['link', 'del', dev])
    }
  }
}

/**
 * A `fetch` that sends every request over the Unix socket `socketPath` (to the forwarder),
 * with the Host header of the URL, which the control API checks.
 */
export function socketFetch (socketPath: string): (url: string, init: RequestInit) => Promise<Response> {
  return async (url, init) => {
    const target = new URL(url)
    const headers: Record<string, string> = { host: target.host }
    for (const [k, v] of new Headers(init.headers).entries()) headers[k] = v
    const body = init.body == null ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : Buffer.from(init.body as Uint8Array)
    if (body != null) headers['content-length'] = String(body.length)
    return await new Promise<Response>((resolve, reject) => {
      const req = http.request({ socketPath, method: init.method ?? 'GET', path: target.pathname + target.search, headers, signal: init.signal ?? undefined }, res => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => { resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 502, statusText: res.statusMessage })) })
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(body)
    })
  }
}
