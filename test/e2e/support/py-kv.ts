/**
 * A small key-value service in Python (standard library only) as a process app, in two
 * state formats, with command transforms between them, for the fault tests of process apps:
 *
 * - format 1 (1.0.0): `data.json` `{ "k": "v" }`
 * - format 2 (2.0.0): `store.json` `{ "entries": [["k", "v"], …] }` — `up.py` and `down.py` move between them
 *
 * Both speak protocol 1: `PUT /kv/<key>` (the body is the value), `GET /kv/<key>` →
 * `{ "key", "value", "version" }`, `GET /healthz`.
 */

/** The server; `format` decides the state file it keeps. */
export function pyServer (format: 1 | 2): string {
  return `import http.server, json, os, signal, sys
PORT = int(os.environ['UPGOSSIP_PORT'])
STATE = os.environ['UPGOSSIP_STATE']
VERSION = os.environ['UPGOSSIP_APP_VERSION']
FILE = os.path.join(STATE, ${format === 1 ? "'data.json'" : "'store.json'"})
try:
    with open(FILE) as f:
        raw = json.load(f)
except FileNotFoundError:
    raw = ${format === 1 ? '{}' : "{'entries': []}"}
data = ${format === 1 ? 'raw' : "dict(raw['entries'])"}

def save():
    with open(FILE + '.tmp', 'w') as f:
        json.dump(${format === 1 ? 'data' : "{'entries': sorted([k, v] for k, v in data.items())}"}, f, separators=(',', ':'))
        f.flush()
        os.fsync(f.fileno())
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
    def do_GET(self):
        if self.path == '/healthz':
            return self.reply(200, {'ok': True})
        if self.path.startswith('/kv/'):
            key = self.path[4:]
            return self.reply(200 if key in data else 404, {'key': key, 'value': data.get(key), 'version': VERSION})
        self.reply(404, {'error': 'no such path'})
    def do_PUT(self):
        length = int(self.headers.get('content-length', '0'))
        data[self.path[4:]] = self.rfile.read(length).decode()
        save()
        self.reply(200, {'ok': True, 'version': VERSION})
    def log_message(self, *args):
        pass

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f'kv {VERSION} listening on 127.0.0.1:{PORT}', flush=True)
# 127.0.0.1 only: peers reach the app through its daemon, never directly
http.server.ThreadingHTTPServer(('127.0.0.1', PORT), Handler).serve_forever()
`
}

/** Format 1 → format 2. */
export const UP_PY = `import json, os
src = os.path.join(os.environ['UPGOSSIP_FROM'], 'data.json')
data = {}
if os.path.exists(src):
    with open(src) as f:
        data = json.load(f)
with open(os.path.join(os.environ['UPGOSSIP_TO'], 'store.json'), 'w') as f:
    json.dump({'entries': sorted([k, v] for k, v in data.items())}, f, separators=(',', ':'))
print(f"up.py: moved {len(data)} keys", flush=True)
`

/** Format 2 → format 1. */
export const DOWN_PY = `import json, os
with open(os.path.join(os.environ['UPGOSSIP_FROM'], 'store.json')) as f:
    entries = json.load(f)['entries']
with open(os.path.join(os.environ['UPGOSSIP_TO'], 'data.json'), 'w') as f:
    json.dump(dict(entries), f, separators=(',', ':'))
`

/** Short health timings, so that a test switches in seconds. */
export const QUICK_HEALTH = { http: '/healthz', readyWithin: '10s', stableFor: '1s' }

/** kv `version` as a process app in state format `format` (2 brings up.py and down.py), with manifest fields overridden by `manifest`. */
export function pyKv (version: string, format: 1 | 2, manifest: Record<string, unknown> = {}, files: Record<string, string> = {}): Record<string, string> {
  const transform = format === 2 ? { transform: { up: { command: ['python3', 'up.py'] }, down: { command: ['python3', 'down.py'] } } } : {}
  return {
    'upgossip.json': JSON.stringify({ app: 'kv', version, protocol: 1, run: { command: ['python3', 'server.py'], wire: 'http' }, health: QUICK_HEALTH, ...transform, ...manifest }),
    'server.py': pyServer(format),
    ...(format === 2 ? { 'up.py': UP_PY, 'down.py': DOWN_PY } : {}),
    ...files
  }
}
