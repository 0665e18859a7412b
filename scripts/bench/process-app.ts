/**
 * The `procbench` app: a process app (the manifest's `run`, wire "http") that is a tiny
 * Node.js `http` server, run by the node that runs the bench (`process.execPath`), so
 * the bench needs no other language on the machine. Every version is the same program;
 * protocol 2 adds a past simulation object that passes messages through unchanged, so a
 * protocol 1 request to a protocol 2 peer costs one SO hop and nothing else.
 *
 * - `GET /null` → 200 `{"ok":true}`: the null request that is measured
 * - `GET /healthz` → 200: `health.http`
 * - `POST /loop` `{ targets: [{ name, via: 'proxy' | 'direct', url }], count }` →
 *   `{ latencies: { name: [ms…] } }`: `count` rounds of one request to each target, one in
 *   flight, the targets' order turning every round; `via: 'proxy'` sends the request to
 *   the daemon's proxy (an absolute URL, the proxy's credentials), `via: 'direct'` to the
 *   URL itself. Both keep their connections open (a keep-alive agent), as an HTTP client
 *   of a service does; every answer is checked.
 *
 * `procbench-tcp` ({@link tcpAppVersion}) is its wire "tcp" sibling, a sink: a connection
 * sends a line with the number of bytes that follow, then the bytes; once all are in, the
 * sink answers their count as a line. (The sender does not half-close to say it is done:
 * the answer must not depend on a half-close crossing the tunnel.)
 */

const SERVER = `import http from 'node:http'

const port = Number(process.env.UPGOSSIP_PORT)
const proxy = new URL(process.env.UPGOSSIP_PROXY)
const auth = 'Basic ' + Buffer.from(decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password)).toString('base64')
const agent = new http.Agent({ keepAlive: true })
const NULL_BODY = '{"ok":true}'

function get (target) {
  const url = new URL(target.url)
  const options = target.via === 'proxy'
    ? { host: proxy.hostname, port: Number(proxy.port), path: target.url, headers: { 'proxy-authorization': auth } }
    : { host: url.hostname, port: Number(url.port), path: url.pathname + url.search }
  return new Promise((resolve, reject) => {
    const req = http.request({ method: 'GET', agent, ...options }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', c => { body += c })
      res.on('end', () => {
        if (res.statusCode === 200 && body === NULL_BODY) resolve()
        else reject(new Error(target.name + ': ' + res.statusCode + ' ' + body.slice(0, 300)))
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

async function loop ({ targets, count }) {
  const latencies = Object.fromEntries(targets.map(t => [t.name, []]))
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < targets.length; k++) {
      const t = targets[(i + k) % targets.length]
      const s = performance.now()
      await get(t)
      latencies[t.name].push(performance.now() - s)
    }
  }
  return { latencies }
}

function reply (res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/null') return reply(res, 200, NULL_BODY)
  if (req.method === 'GET' && req.url === '/healthz') return reply(res, 200, NULL_BODY)
  if (req.method === 'POST' && req.url === '/loop') {
    const chunks = []
    req.on('data', c => chunks.push(c))
    req.on('end', () => {
      loop(JSON.parse(Buffer.concat(chunks).toString())).then(
        answer => reply(res, 200, JSON.stringify(answer)),
        err => reply(res, 500, JSON.stringify({ error: String(err?.message ?? err) })))
    })
    return
  }
  reply(res, 404, '{"error":"no such path"}')
}).listen(port, '127.0.0.1')
`

// a past SO of protocol 1, shipped with 2: the message goes through as it is, both ways
const PASS_THROUGH = `export default {
  version: 1,
  async serve (req, local) { return await local(req) },
  async call (req, remote) { return await remote(req) }
}
`

/** The files and manifest of version `protocol` (1 or 2) of the procbench app. */
export function processAppVersion (protocol: 1 | 2): { files: Record<string, string>, manifest: Record<string, unknown> } {
  const manifest: Record<string, unknown> = {
    app: 'procbench',
    version: `${protocol}.0.0`,
    protocol,
    run: { command: [process.execPath, 'server.mjs'], wire: 'http' },
    health: { http: '/healthz', readyWithin: '15s', stableFor: '500ms' }
  }
  if (protocol === 1) return { files: { 'server.mjs': SERVER }, manifest }
  return { files: { 'server.mjs': SERVER, 'so/past.js': PASS_THROUGH }, manifest: { ...manifest, upgrades: '^1.0.0', simulation: { past: 'so/past.js' } } }
}

const SINK = `import net from 'node:net'

// a line with the number of bytes that follow, the bytes; once they are all in, their count as a line
net.createServer({ allowHalfOpen: true }, socket => {
  let want = -1
  let got = 0
  let head = Buffer.alloc(0)
  socket.on('data', chunk => {
    if (want < 0) {
      head = Buffer.concat([head, chunk])
      const nl = head.indexOf(10)
      if (nl < 0) return
      want = Number(head.subarray(0, nl).toString())
      chunk = head.subarray(nl + 1)
    }
    const before = got
    got += chunk.length
    if (before < want && got >= want) socket.write(got + '\\n')
  })
  socket.on('end', () => { socket.end() })
  socket.on('error', () => {})
}).listen(Number(process.env.UPGOSSIP_PORT), '127.0.0.1')
`

/** The files and manifest of the wire "tcp" sink (`procbench-tcp` 1.0.0). */
export function tcpAppVersion (): { files: Record<string, string>, manifest: Record<string, unknown> } {
  return {
    files: { 'sink.mjs': SINK },
    manifest: { app: 'procbench-tcp', version: '1.0.0', protocol: 1, run: { command: [process.execPath, 'sink.mjs'], wire: 'tcp' }, health: { readyWithin: '15s', stableFor: '500ms' } }
  }
}
