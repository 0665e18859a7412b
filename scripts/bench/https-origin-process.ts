/**
 * The HTTPS origin of the baseline, as its own process: serves one file from memory at
 * `GET /bundle` over node's https, prints `{"port":…}` once listening and `{"sent":…}`
 * after each response (with the CPU time it has used, `cpuMs`); exits when its stdin closes.
 *
 * Usage: node https-origin-process.ts CERT.pem KEY.pem FILE [HOST]   (HOST: the address it listens on, default 127.0.0.1)
 */
import fs from 'node:fs'
import https from 'node:https'

const [certFile, keyFile, file, host = '127.0.0.1'] = process.argv.slice(2) as [string, string, string, string?]
const body = fs.readFileSync(file)
const server = https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, (req, res) => {
  if (req.url !== '/bundle') {
    res.writeHead(404).end()
    return
  }
  res.writeHead(200, { 'content-type': 'application/vnd.ipld.car', 'content-length': body.length })
  res.end(body, () => {
    const cpu = process.cpuUsage()
    process.stdout.write(JSON.stringify({ sent: body.length, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n')
  })
})
// Never close a connection after a response: node counts a response done once the kernel has
// its bytes, and a socket closed then is left to the kernel to drain. On a shaped, lossy uplink
// such an orphan gives up after a few retransmissions and its client waits forever. The
// clients close (they ask for keep-alive); the process exits when the bench is done with it.
server.keepAliveTimeout = 0
server.listen(0, host, () => {
  const address = server.address()
  const cpu = process.cpuUsage()
  process.stdout.write(JSON.stringify({ port: typeof address === 'object' && address != null ? address.port : 0, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n')
})
process.stdin.on('end', () => { server.close(); process.exit(0) })
process.stdin.resume()
