/**
 * The HTTPS origin baseline: one origin process serving a release bundle, N client
 * processes started beforehand and released together; the time is from the release
 * until the last client holds a checked, fsynced copy.
 *
 * @example
 * ```ts
 * const r = await httpsBaseline({ file: 'kv-1.1.0.car', clients: 10, dir, cert })
 * console.log(r.ms, r.originSentBytes)
 * ```
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import readline from 'node:readline'
import type { Certificate } from './certificate.ts'

const ORIGIN = new URL('./https-origin-process.ts', import.meta.url).pathname
const CLIENT = new URL('./https-client-process.ts', import.meta.url).pathname

/** What the baseline measured. */
export interface HttpsResult {
  clients: number
  bundleBytes: number
  /** Go until the last client holds a checked copy. */
  ms: number
  /** Bytes the origin sent (response bodies). */
  originSentBytes: number
  /** CPU time of the origin and every client, from go to the last copy. */
  cpuMs: number
}

function lines (child: ChildProcess, onLine: (line: string) => void): void {
  if (child.stdout != null) readline.createInterface({ input: child.stdout }).on('line', onLine)
}

/** Run the baseline once; the origin listens on `host` (default 127.0.0.1), the clients connect from 127.0.0.1. */
export async function httpsBaseline (opts: { file: string, clients: number, dir: string, cert: Certificate, host?: string }): Promise<HttpsResult> {
  const host = opts.host ?? '127.0.0.1'
  await fs.mkdir(opts.dir, { recursive: true })
  const certFile = path.join(opts.dir, 'cert.pem')
  const keyFile = path.join(opts.dir, 'key.pem')
  await fs.writeFile(certFile, opts.cert.cert)
  await fs.writeFile(keyFile, opts.cert.key, { mode: 0o600 })
  const bytes = await fs.readFile(opts.file)
  const digest = createHash('sha256').update(bytes).digest('hex')
  const origin = spawn(process.execPath, [ORIGIN, certFile, keyFile, opts.file, host], { stdio: ['pipe', 'pipe', 'inherit'] })
  let originSentBytes = 0
  let originCpuAtStart = 0
  let originCpuMs = 0
  const clients: ChildProcess[] = []
  try {
    const port = await new Promise<number>((resolve, reject) => {
      origin.once('exit', code => { reject(new Error(`the HTTPS origin exited with ${String(code)}`)) })
      lines(origin, line => {
        const m = JSON.parse(line) as { port?: number, sent?: number, cpuMs?: number }
        if (m.port != null) {
          originCpuAtStart = m.cpuMs ?? 0
          resolve(m.port)
        }
        if (m.sent != null) originSentBytes += m.sent
        if (m.cpuMs != null) originCpuMs = m.cpuMs - originCpuAtStart
      })
    })
    const results: Array<Promise<{ ok: boolean, endAt: number, cpuMs?: number, error?: string }>> = []
    const ready: Array<Promise<void>> = []
    for (let i = 0; i < opts.clients; i++) {
      const child = spawn(process.execPath, [CLIENT, host, String(port), certFile, path.join(opts.dir, `client-${i}.car`), digest], { stdio: ['pipe', 'pipe', 'inherit'] })
      clients.push(child)
      let onReady: () => void = () => {}
      ready.push(new Promise(resolve => { onReady = resolve }))
      results.push(new Promise((resolve, reject) => {
        child.once('exit', code => { if (code !== 0) reject(new Error(`an HTTPS client exited with ${String(code)}`)) })
        lines(child, line => {
          if (line === 'ready') onReady()
          else resolve(JSON.parse(line) as { ok: boolean, endAt: number })
        })
      }))
    }
    await Promise.all(ready)
    const goAt = Date.now()
    for (const c of clients) c.stdin?.write('go\n')
    const done = await Promise.all(results)
    const failed = done.find(d => !d.ok)
    if (failed != null) throw new Error(`an HTTPS client failed: ${failed.error ?? 'wrong digest'}`)
    // the last "sent" line may still be on its way
    await new Promise(resolve => setTimeout(resolve, 100))
    const clientCpuMs = done.reduce((sum, d) => sum + (d.cpuMs ?? 0), 0)
    return { clients: opts.clients, bundleBytes: bytes.length, ms: Math.max(...done.map(d => d.endAt)) - goAt, originSentBytes, cpuMs: Math.round(originCpuMs + clientCpuMs) }
  } finally {
    for (const c of clients) if (c.exitCode == null) c.kill()
    origin.stdin?.end()
    await Promise.all(Array.from({ length: opts.clients }, async (_, i) => { await fs.rm(path.join(opts.dir, `client-${i}.car`), { force: true }) }))
  }
}
