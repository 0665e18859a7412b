/**
 * One client of the HTTPS baseline, as its own process: connects with the origin's
 * certificate pinned as the only CA, and on `go` (a line on stdin) downloads the bundle
 * into a file, hashing it as it streams, fsyncs the file and checks the sha-256 — what a
 * peer does with blocks (check, store durably) in the swarm. Prints one JSON line.
 *
 * Usage: node https-client-process.ts HOST PORT CA.pem OUT_FILE SHA256_HEX
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import https from 'node:https'

const [host, port, caFile, outFile, expected] = process.argv.slice(2) as [string, string, string, string, string]
const ca = fs.readFileSync(caFile)

function download (): void {
  const startAt = Date.now()
  const startCpu = process.cpuUsage()
  const hash = createHash('sha256')
  const out = fs.createWriteStream(outFile)
  let bytes = 0
  const req = https.get({ host, port: Number(port), path: '/bundle', servername: 'localhost', ca, agent: false }, res => {
    res.on('data', (chunk: Buffer) => { hash.update(chunk); bytes += chunk.length })
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
  req.on('error', err => {
    process.stdout.write(JSON.stringify({ ok: false, error: err.message }) + '\n')
    process.exit(1)
  })
}

process.stdin.setEncoding('utf8')
process.stdin.on('data', (text: string) => { if (text.includes('go')) download() })
process.stdout.write('ready\n')
