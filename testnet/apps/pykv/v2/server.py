"""pykv 2.0.0, protocol 2: the store of 1.0.0 with JSON on the wire and a time on every value.

A process app: upgossip runs `python3 server.py` (the manifest's `run`) and talks to it
over plain HTTP/1.1. This version knows nothing of 1.0.0: when the network is mixed, the
simulation objects in past.js and future.js translate (run by the daemons, not here).

    PUT /v2/kv/<key>  {"value": "…", "updated": ms?}  -> 200 {"value", "updated"}: the entry now held
    GET /v2/kv/<key>                                  -> 200 {"value", "updated"}; 404 {"error"} when absent
    GET /healthz                                      -> 200 (the state is loaded)

`updated` is the time of the write in milliseconds since 1970, set by this server when the
request has none. A write older than the entry held is ignored (last writer wins), so
copies that arrive out of order do not undo a newer value.

State: $UPGOSSIP_STATE/state.json, {"<key>": {"value": "…", "updated": ms}}.

Replication: a client's PUT is stored, answered, then copied in the background to every
other peer of the app, through the daemon's proxy, as a PUT with `x-replica: 1` and the
entry as stored (its `updated` included). A replica is stored and never copied again.
"""
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ['UPGOSSIP_PORT'])
STATE_DIR = os.environ['UPGOSSIP_STATE']
STATE = os.path.join(STATE_DIR, 'state.json')
PROXY = os.environ.get('UPGOSSIP_PROXY')  # http://USER:TOKEN@127.0.0.1:PORT; absent when run by hand
APP = os.environ.get('UPGOSSIP_APP', 'pykv')
MAX_BODY = 1 << 20


def log(message):
    # stderr goes to the daemon's app.log
    print(f'pykv 2: {message}', file=sys.stderr, flush=True)


def is_entry(entry):
    return (isinstance(entry, dict) and isinstance(entry.get('value'), str)
            and isinstance(entry.get('updated'), int) and not isinstance(entry.get('updated'), bool))


# --- state ------------------------------------------------------------------------------

def load():
    try:
        with open(STATE, encoding='utf-8') as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}  # a peer that never stored anything
    except ValueError as err:
        raise ValueError(f'{STATE}: {err}')
    if not isinstance(data, dict) or not all(is_entry(e) for e in data.values()):
        raise ValueError(f'{STATE}: expected {{"key": {{"value": "…", "updated": ms}}, ...}}')
    return data


def save(data):
    # write a temporary file, flush it to disk, rename it over the old one, and flush the
    # directory: a crash leaves the old state or the new, never half of one
    tmp = STATE + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(json.dumps(data, separators=(',', ':')))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, STATE)
    fd = os.open(STATE_DIR, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


os.makedirs(STATE_DIR, exist_ok=True)
try:
    data = load()  # before the port opens: /healthz answers only once the state is loaded
except ValueError as err:  # never serve (and overwrite) a damaged state: exiting fails the health check
    sys.exit(f'pykv 2: cannot load the state: {err}')
lock = threading.Lock()  # requests run on threads of their own


# --- replication through the daemon's proxy ---------------------------------------------

# The daemon's forward proxy: `http://<peer host>/<path>` reaches that peer's app and
# `http://upgossip/peers` lists the peers. urllib's ProxyHandler reads the USER:TOKEN in the
# proxy URL and sends them on every request as `Proxy-Authorization: Basic base64(USER:TOKEN)`
# (without them the proxy answers 407). The handler also ignores $http_proxy, which is not
# the daemon's proxy.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({'http': PROXY})) if PROXY else None


def peers():
    """Hosts of the other peers that run this app (any version: the daemon translates)."""
    with opener.open('http://upgossip/peers', timeout=5) as res:
        view = json.load(res)
    return [p['host'] for p in view['peers'] if p['app'] == APP and p['host'] != view['selfHost']]


def replicate(key, entry):
    try:
        for host in peers():
            url = f'http://{host}/v2/kv/{urllib.parse.quote(key, safe="")}'
            req = urllib.request.Request(url, data=json.dumps(entry).encode(), method='PUT',
                                         headers={'content-type': 'application/json', 'x-replica': '1'})
            try:
                opener.open(req, timeout=5).close()
            except Exception as err:  # a lost copy costs redundancy, not the client's write
                log(f'could not copy {key!r} to {host}: {err}')
    except Exception as err:
        log(f'could not list peers to copy {key!r}: {err}')


copies = set()  # copies in flight, so that a shutdown (an upgrade) waits for them


def copy_in_background(key, entry):
    if opener is None:
        return

    def run():
        try:
            replicate(key, entry)
        finally:
            copies.discard(threading.current_thread())

    thread = threading.Thread(target=run, daemon=True)
    copies.add(thread)
    thread.start()


# --- HTTP --------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive; every response has a Content-Length

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def key(self):
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith('/v2/kv/') or path == '/v2/kv/':
            return None
        return urllib.parse.unquote(path[len('/v2/kv/'):])

    def do_GET(self):
        if self.path == '/healthz':
            return self.reply(200, {'ok': True})
        key = self.key()
        if key is None:
            return self.reply(404, {'error': 'no such path: use /v2/kv/<key>'})
        with lock:
            entry = data.get(key)
        if entry is None:
            return self.reply(404, {'error': 'not found'})
        self.reply(200, entry)

    def body(self):
        """The request's body, or None after an error reply (which also ends the connection,
        since the body was not read). The daemon sends Content-Length unless the caller chose
        chunked encoding, which this small server does not read."""
        length = self.headers.get('Content-Length', '0')
        if 'chunked' in self.headers.get('Transfer-Encoding', '') or not length.isdigit():
            error = (411, {'error': 'send a Content-Length'})
        elif int(length) > MAX_BODY:
            error = (413, {'error': f'a request has at most {MAX_BODY} bytes'})
        else:
            return self.rfile.read(int(length))
        self.close_connection = True
        self.reply(*error)
        return None

    def do_PUT(self):
        key = self.key()
        body = self.body()
        if body is None:
            return
        if key is None:
            return self.reply(404, {'error': 'no such path: use /v2/kv/<key>'})
        try:
            write = json.loads(body)
            entry = {'value': write['value'], 'updated': write.get('updated', int(time.time() * 1000))}
        except (ValueError, TypeError, KeyError, AttributeError):
            entry = None
        if not is_entry(entry):
            return self.reply(400, {'error': 'expected {"value": "…", "updated": ms?} with a string value'})
        with lock:
            held = data.get(key)
            newer = held is None or entry['updated'] >= held['updated']
            if newer:
                data[key] = entry
                save(data)
            else:
                entry = held  # an older write arrived late: keep the newer one
        self.reply(200, entry)
        if newer and self.headers.get('x-replica') != '1':
            copy_in_background(key, entry)

    def log_message(self, format, *args):
        pass  # one line per request would flood app.log


# 127.0.0.1, never 0.0.0.0: only the daemon may reach the app. Peers come in through their
# daemons, which check who they are, translate between versions and hold requests during an
# upgrade; a port open to the network would let anyone write around all of that.
server = ThreadingHTTPServer(('127.0.0.1', PORT), Handler)
server.daemon_threads = True


def stop(signum, frame):
    raise SystemExit(0)  # leaves serve_forever below


signal.signal(signal.SIGTERM, stop)  # the daemon stops an app with SIGTERM (SIGKILL 10 s later)
log(f'serving {len(data)} keys on 127.0.0.1:{PORT}' + ('' if PROXY else ' (no $UPGOSSIP_PROXY: not replicating)'))
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
finally:
    server.server_close()
    deadline = time.monotonic() + 5  # well within the daemon's 10 s before SIGKILL
    for thread in list(copies):
        thread.join(timeout=max(0, deadline - time.monotonic()))
