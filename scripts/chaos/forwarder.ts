/**
 * Runs inside a chaos run's network namespace: `node forwarder.ts SOCKET DATA_DIR` accepts
 * connections on the Unix socket SOCKET and joins each to the control API of the daemon of
 * DATA_DIR, on the namespace's 127.0.0.1 at the port its `control.json` names at that moment
 * (a restarted daemon has a new port). It exits when its parent does.
 */
import fs from 'node:fs'
import net from 'node:net'

const [socketPath, dataDir] = process.argv.slice(2) as [string, string]
fs.rmSync(socketPath, { force: true })

const server = net.createServer(client => {
  let port: number
  try {
    port = Number(new URL((JSON.parse(fs.readFileSync(`${dataDir}/control.json`, 'utf8')) as { url: string }).url).port)
  } catch {
    client.destroy()
    return
  }
  const upstream = net.connect(port, '127.0.0.1')
  client.pipe(upstream).pipe(client)
  upstream.on('error', () => client.destroy())
  client.on('error', () => upstream.destroy())
})
server.listen(socketPath)
// the run that started it may die without cleaning up: go with it
setInterval(() => { if (process.ppid === 1) process.exit(0) }, 1000).unref()
setInterval(() => {}, 1 << 30)
