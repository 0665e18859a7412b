/**
 * A Python key-value service (standard library only) in three protocol versions whose HTTP
 * interface changes at every step, with past and future simulation objects in JavaScript
 * between neighbours, for the SO-chain test of process apps:
 *
 * - protocol 1: `PUT /kv/<key>` (body: the value as text) → `{ "value" }`; `GET /kv/<key>` → `{ "value" }`
 * - protocol 2: `PUT /v2/<key>` (body `{ "v" }`) → `{ "result" }`; `GET /v2/<key>` → `{ "result" }`
 * - protocol 3: `POST /v3` with `{ "cmd": ["set", key, value] }` or `{ "cmd": ["get", key] }` → `{ "ok" }`
 *
 * The state (`data.json`, `{ key: value }`) is the same in every version. Every SO hop adds
 * its name to the response's `x-so` header, so a test can see which ran, and in what order.
 */

const SERVER = (protocol: 1 | 2 | 3): string => `import http.server, json, os, signal, sys, urllib.parse
PORT = int(os.environ['UPGOSSIP_PORT'])
FILE = os.path.join(os.environ['UPGOSSIP_STATE'], 'data.json')
PROTOCOL = ${protocol}
try:
    with open(FILE) as f:
        data = json.load(f)
except FileNotFoundError:
    data = {}

def save():
    with open(FILE + '.tmp', 'w') as f:
        json.dump(data, f)
    os.replace(FILE + '.tmp', FILE)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def reply(self, code, value):
        body = json.dumps(value).encode()
        self.send_response(code)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def body(self):
        return self.rfile.read(int(self.headers.get('content-length', '0')))
    def missing(self):
        self.reply(404, {'error': f'protocol {PROTOCOL} knows no {self.command} {self.path}'})
    def do_GET(self):
        if self.path == '/healthz':
            return self.reply(200, {'ok': True})
        prefix = {1: '/kv/', 2: '/v2/'}.get(PROTOCOL)
        if prefix is None or not self.path.startswith(prefix):
            return self.missing()
        key = urllib.parse.unquote(self.path[len(prefix):])
        if key not in data:
            return self.reply(404, {'error': f'no key {key}'})
        self.reply(200, {'value': data[key]} if PROTOCOL == 1 else {'result': data[key]})
    def do_PUT(self):
        prefix = {1: '/kv/', 2: '/v2/'}.get(PROTOCOL)
        if prefix is None or not self.path.startswith(prefix):
            return self.missing()
        key = urllib.parse.unquote(self.path[len(prefix):])
        raw = self.body()
        data[key] = raw.decode() if PROTOCOL == 1 else json.loads(raw)['v']
        save()
        self.reply(200, {'value': data[key]} if PROTOCOL == 1 else {'result': data[key]})
    def do_POST(self):
        if PROTOCOL != 3 or self.path != '/v3':
            return self.missing()
        cmd = json.loads(self.body())['cmd']
        if cmd[0] == 'set':
            data[cmd[1]] = cmd[2]
            save()
            return self.reply(200, {'ok': cmd[2]})
        if cmd[0] == 'get' and cmd[1] in data:
            return self.reply(200, {'ok': data[cmd[1]]})
        self.reply(404, {'error': f'no key {cmd[1]}'})
    def log_message(self, *args):
        pass

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
http.server.ThreadingHTTPServer(('127.0.0.1', PORT), Handler).serve_forever()
`

/** Shared by the SOs of every version: JSON bodies, and a hop's name added to `x-so`. */
const COMMON = `const encoder = new TextEncoder()
const decoder = new TextDecoder()
export const text = (body) => decoder.decode(body ?? new Uint8Array())
export const json = (value) => encoder.encode(JSON.stringify(value))
export const JSON_TYPE = { 'content-type': 'application/json' }
/** A response built from \`inner\`'s, with this hop named after those that ran before it. */
export function response (inner, status, value, hop) {
  const before = inner.headers?.['x-so']
  return { status, headers: { ...JSON_TYPE, 'x-so': before == null ? hop : \`\${before}, \${hop}\` }, body: json(value) }
}
`

/** Protocol 1 ↔ 2 (shipped with version 2). */
const WIRE_12 = `import { text, json, JSON_TYPE, response } from './common.js'
const V1 = /^\\/kv\\/([^/?]+)$/
const V2 = /^\\/v2\\/([^/?]+)$/
export function toV2Request (req) {
  const key = V1.exec(req.path)?.[1]
  if (key == null || !['GET', 'PUT'].includes(req.method)) throw new Error(\`not a protocol 1 request: \${req.method} \${req.path}\`)
  if (req.method === 'GET') return { method: 'GET', path: \`/v2/\${key}\`, headers: {}, body: new Uint8Array() }
  return { method: 'PUT', path: \`/v2/\${key}\`, headers: JSON_TYPE, body: json({ v: text(req.body) }) }
}
export function toV1Request (req) {
  const key = V2.exec(req.path)?.[1]
  if (key == null || !['GET', 'PUT'].includes(req.method)) throw new Error(\`not a protocol 2 request: \${req.method} \${req.path}\`)
  if (req.method === 'GET') return { method: 'GET', path: \`/kv/\${key}\`, headers: {}, body: new Uint8Array() }
  return { method: 'PUT', path: \`/kv/\${key}\`, headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode(JSON.parse(text(req.body)).v) }
}
export function toV2Response (res, hop) {
  const body = JSON.parse(text(res.body))
  return response(res, res.status, res.status === 200 ? { result: body.value } : body, hop)
}
export function toV1Response (res, hop) {
  const body = JSON.parse(text(res.body))
  return response(res, res.status, res.status === 200 ? { value: body.result } : body, hop)
}
`

/** Protocol 2 ↔ 3 (shipped with version 3). */
const WIRE_23 = `import { text, json, JSON_TYPE, response } from './common.js'
const V2 = /^\\/v2\\/([^/?]+)$/
export function toV3Request (req) {
  const key = V2.exec(req.path)?.[1]
  if (key == null || !['GET', 'PUT'].includes(req.method)) throw new Error(\`not a protocol 2 request: \${req.method} \${req.path}\`)
  const k = decodeURIComponent(key)
  const cmd = req.method === 'GET' ? ['get', k] : ['set', k, JSON.parse(text(req.body)).v]
  return { method: 'POST', path: '/v3', headers: JSON_TYPE, body: json({ cmd }) }
}
export function toV2Request (req) {
  if (req.method !== 'POST' || req.path !== '/v3') throw new Error(\`not a protocol 3 request: \${req.method} \${req.path}\`)
  const [op, k, v] = JSON.parse(text(req.body)).cmd
  const path = \`/v2/\${encodeURIComponent(k)}\`
  if (op === 'get') return { method: 'GET', path, headers: {}, body: new Uint8Array() }
  return { method: 'PUT', path, headers: JSON_TYPE, body: json({ v }) }
}
export function toV3Response (res, hop) {
  const body = JSON.parse(text(res.body))
  return response(res, res.status, res.status === 200 ? { ok: body.result } : body, hop)
}
export function toV2Response (res, hop) {
  const body = JSON.parse(text(res.body))
  return response(res, res.status, res.status === 200 ? { result: body.ok } : body, hop)
}
`

/** SOs between protocol `n - 1` and `n`, shipped with version `n`: names of the hops are `v<n>.past.serve` and so on. */
function simulations (n: 2 | 3): Record<string, string> {
  const [older, newer] = [n - 1, n]
  const wire = n === 2 ? WIRE_12 : WIRE_23
  return {
    'common.js': COMMON,
    'wire.js': wire,
    // a v<n> node talking to v<n-1> peers
    'past.js': `import { toV${older}Request, toV${older}Response, toV${newer}Request, toV${newer}Response } from './wire.js'
export default {
  version: ${older},
  async serve (req, local) { return toV${older}Response(await local(toV${newer}Request(req)), 'v${n}.past.serve') },
  async call (req, remote) { return toV${newer}Response(await remote(toV${older}Request(req)), 'v${n}.past.call') }
}
`,
    // a v<n-1> node talking to v<n> peers
    'future.js': `import { toV${older}Request, toV${older}Response, toV${newer}Request, toV${newer}Response } from './wire.js'
export default {
  version: ${newer},
  async serve (req, local) { return toV${newer}Response(await local(toV${older}Request(req)), 'v${n}.future.serve') },
  async call (req, remote) { return toV${older}Response(await remote(toV${newer}Request(req)), 'v${n}.future.call') }
}
`
  }
}

/** kv `<protocol>.0.0` as a process app; versions 2 and 3 carry their past and future SOs. */
export function pyChainVersion (protocol: 1 | 2 | 3, manifest: Record<string, unknown> = {}): Record<string, string> {
  return {
    'upgossip.json': JSON.stringify({
      app: 'kv',
      version: `${protocol}.0.0`,
      protocol,
      run: { command: ['python3', 'server.py'], wire: 'http' },
      health: { http: '/healthz', readyWithin: '10s', stableFor: '1s' },
      ...(protocol === 1 ? {} : { simulation: { past: 'past.js', future: 'future.js' } }),
      ...manifest
    }),
    'server.py': SERVER(protocol),
    ...(protocol === 1 ? {} : simulations(protocol))
  }
}
