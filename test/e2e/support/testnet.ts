/**
 * Real daemon processes on loopback for e2e tests: each peer is `upgossip daemon` as a
 * child process with its own data directory, found through its control.json.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { MemoryBlockStore } from '../../../src/store/index.js'
import { createRelease, generatePublisherKey, writeBundle, writeKeyFile } from '../../../src/release/index.js'
import type { PublisherKey } from '../../../src/release/index.js'
import type { DaemonStatus } from '../../../src/daemon/index.js'
import { samplePackage, tempDir, writeTree } from '../../helpers.js'

export const BIN = fileURLToPath(new URL('../../../bin/upgossip.js', import.meta.url))

/** Poll `check` until it returns a value (not undefined/false) or time runs out. */
export async function waitFor<T> (what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      last = err
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last != null ? ` (last error: ${(last as Error).message})` : ''}`)
}

/** Run the CLI once. */
export async function runCli (args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += String(d) })
    child.stderr.on('data', d => { stderr += String(d) })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', code => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }) })
  })
}

interface Control { url: string, token: string, peerId: string, multiaddrs: string[] }

/** One daemon process. */
export class Peer {
  control!: Control
  log = ''
  exited: number | null | undefined

  constructor (readonly name: string, readonly dataDir: string, readonly proc: ChildProcess) {
    proc.stdout?.on('data', d => { this.log += String(d) })
    proc.stderr?.on('data', d => { this.log += String(d) })
    proc.on('exit', code => { this.exited = code })
  }

  get peerId (): string { return this.control.peerId }
  get addr (): string { return this.control.multiaddrs[0] as string }

  /** A control API call. */
  async api (route: string, init: RequestInit = {}): Promise<Response> {
    return await fetch(this.control.url + route, { ...init, headers: { authorization: `Bearer ${this.control.token}`, ...(init.headers ?? {}) } })
  }

  async status (): Promise<DaemonStatus> {
    const res = await this.api('/status')
    if (!res.ok) throw new Error(`status ${res.status}`)
    return await res.json() as DaemonStatus
  }

  /** This peer's upgrades, rollbacks and failures (`GET /history`). */
  async history (): Promise<Array<{ type: string, [key: string]: unknown }>> {
    const res = await this.api('/history')
    if (!res.ok) throw new Error(`history ${res.status}`)
    return await res.json() as Array<{ type: string, [key: string]: unknown }>
  }

  async metrics (): Promise<string> {
    return await (await this.api('/metrics')).text()
  }

  /** A counter's value from /metrics (0 when absent). */
  async metric (name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await this.metrics()
    let sum = 0
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue
      const [series, value] = line.split(' ')
      if (series == null || value == null) continue
      if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`)) && (series === name || series.startsWith(`${name}{`))) sum += Number(value)
    }
    return sum
  }

  /** One request to this peer's app through the control API. */
  async call (request: unknown): Promise<any> {
    return await this.callPeer(null, request)
  }

  /** One request from this peer's app to the app on `peer`, through the shim (POST /call). */
  async callPeer (peer: string | null, request: unknown): Promise<any> {
    const res = await this.api('/call', { method: 'POST', body: JSON.stringify({ peer, request }), headers: { 'content-type': 'application/json' } })
    const body = await res.json() as { response?: unknown, error?: { message: string } }
    if (!res.ok) throw new Error(`call${peer == null ? '' : ` to ${peer}`} failed: ${res.status} ${body.error?.message ?? ''}`)
    return body.response
  }

  /** Wait until the peer runs `version` (state running). */
  async waitVersion (version: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(`${this.name} to run ${version}`, async () => {
      const s = await this.status()
      return s.version === version && s.state === 'running'
    }, timeoutMs)
  }

  /** Wait until release `id` is staged (or active) with every byte held. */
  async waitStaged (id: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(`${this.name} to stage ${id}`, async () => {
      const r = (await this.status()).releases.find(x => x.id === id)
      return r != null && ['staged', 'waiting', 'active', 'superseded'].includes(r.state) && r.have === r.size
    }, timeoutMs)
  }

  /** SIGTERM and wait for the exit. */
  async stop (): Promise<void> {
    if (this.exited !== undefined) return
    const done = new Promise(resolve => this.proc.once('exit', resolve))
    this.proc.kill('SIGTERM')
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000)
    await done
    clearTimeout(timer)
  }
}

/** A publisher key, a trust file, and daemons in one temporary root. */
export class TestNet {
  readonly peers: Peer[] = []
  root!: string
  key!: PublisherKey
  keyFile!: string
  trustFile!: string
  configFile!: string

  static async create (config: Record<string, unknown> = {}): Promise<TestNet> {
    const net = new TestNet()
    net.root = await tempDir('upgossip-e2e-net-')
    net.key = await generatePublisherKey()
    net.keyFile = path.join(net.root, 'publisher.key')
    await writeKeyFile(net.keyFile, net.key)
    net.trustFile = path.join(net.root, 'trust.json')
    await fs.writeFile(net.trustFile, JSON.stringify({ apps: { kv: { publishers: [net.key.id], threshold: 1 } } }))
    net.configFile = path.join(net.root, 'daemon.json')
    await fs.writeFile(net.configFile, JSON.stringify({ beatInterval: '1s', peerTimeout: '20s', minConnections: 3, ...config }))
    return net
  }

  /** Make a signed release bundle of app kv at `version`; returns its file and id. */
  async release (version: string, files: Record<string, string | Uint8Array> = {}, keys: PublisherKey[] = [this.key]): Promise<{ file: string, id: string }> {
    const store = new MemoryBlockStore()
    const dir = await samplePackage(this.root, version, {}, files)
    const { signed, id, blocks } = await createRelease({ dir, store, keys })
    const file = path.join(this.root, `kv-${version}-${id.toString().slice(-6)}.car`)
    await fs.writeFile(file, await writeBundle(signed, store, blocks))
    return { file, id: id.toString() }
  }

  /** Make a release bundle from exactly these files (a full package, manifest included). */
  async releaseFiles (files: Record<string, string | Uint8Array>, keys: PublisherKey[] = [this.key]): Promise<{ file: string, id: string }> {
    const store = new MemoryBlockStore()
    const dir = path.join(this.root, `pkg-${Math.random().toString(36).slice(2, 10)}`)
    await writeTree(dir, files)
    const { signed, id, blocks } = await createRelease({ dir, store, keys })
    const file = path.join(this.root, `${signed.record.app}-${signed.record.version}-${id.toString().slice(-6)}.car`)
    await fs.writeFile(file, await writeBundle(signed, store, blocks))
    return { file, id: id.toString() }
  }

  /** Start a daemon (on 127.0.0.1 unless `args` has a `--listen`) and wait until its control.json is there; `bin`: another build's upgossip. */
  async start (name: string, args: string[] = [], env: Record<string, string> = {}, uid?: number, bin = BIN): Promise<Peer> {
    const dataDir = path.join(this.root, name)
    await fs.rm(path.join(dataDir, 'control.json'), { force: true })
    const listen = args.includes('--listen') ? [] : ['--listen', '/ip4/127.0.0.1/tcp/0']
    const proc = spawn(process.execPath, [bin, 'daemon', '--data', dataDir, '--trust', this.trustFile, ...listen, '--config', this.configFile, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(uid == null ? {} : { uid, gid: uid })
    })
    const peer = new Peer(name, dataDir, proc)
    this.peers.push(peer)
    peer.control = await waitFor(`${name} to start`, async () => {
      if (peer.exited !== undefined) throw new Error(`${name} exited with ${String(peer.exited)}: ${peer.log}`)
      return JSON.parse(await fs.readFile(path.join(dataDir, 'control.json'), 'utf8')) as Control
    }, 30_000, 100)
    return peer
  }

  /** Stop every daemon and remove the files. */
  async close (): Promise<void> {
    await Promise.all(this.peers.map(async p => { await p.stop() }))
    await fs.rm(this.root, { recursive: true, force: true })
  }
}
