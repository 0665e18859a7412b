/**
 * One client of the HTTPS baseline, as its own process: connects with the origin's
 * certificate pinned as the only CA, and on `go` (a line on stdin) downloads the bundle
 * into a file, hashing it as it streams, fsyncs the file and checks the sha-256 — what a
 * peer does with blocks (check, store durably) in the swarm. Prints one JSON line. The
 * connection is kept alive, so the client closes it once it holds the bundle, not the origin
 * while the last bytes may still be in its send queue (see https-origin-process.ts).
 *
 * Usage: node https-client-process.ts HOST PORT CA.pem OUT_FILE SHA256_HEX
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import https from 'node:https'

const [host, port, caFile, outFile, expected] = process.argv.slice(2) as [string, string, string, string, string]
const ca = fs.readFileSync(caFile)
/** A download that receives nothing for this long fails (a connection lost without a word must not hang the bench). */
const STALL_MS = 120_000

function download (): void {
  const startAt = Date.now()
  const startCpu = process.cpuUsage()
  const hash = createHash('sha256')
  const out = fs.createWriteStream(outFile)
  let bytes = 0
  const req = https.get({ host, port: Number(port), path: '/bundle', servername: 'localhost', ca, agent: new https.Agent({ keepAlive: true }) }, res => {
    res.on('data', (chunk: Buffer) => { hash.update(chunk); bytes += chunk.length })
    res.on('error', err => { fail(err.message) })
    res.pipe(out)
    out.on('finish', () => {
      const fd = fs.openSync(outFile, 'r')
      fs.fsyncSync(fd)
      fs.closeSync(fd)
      const ok = res.statusCode === 200 && hash.digest('hex') === expected
      const cpu = process.cpuUsage(startCpu)
      process.stdout.write(JSON.stringify({ ok, bytes, startAt, endAt: Date.now(), cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n')
      process.exit(ok ? 0 : 1)
    })
  })
  req.setTimeout(STALL_MS, () => { fail(`no byte from the origin for ${STALL_MS / 1000} s (after ${bytes} bytes)`) })
  req.on('error', err => { fail(err.message) })
}

function fail (error: string): never {
  process.stdout.write(JSON.stringify({ ok: false, error }) + '\n')
  process.exit(1)
}

process.stdin.setEncoding('utf8')
process.stdin.on('data', (text: string) => { if (text.includes('go')) download() })
process.stdout.write('ready\n')
