"""{{app}} 1.0.0, protocol 1: a minimal key-value server, Python standard library only.

A process app: upgossip runs `python3 server.py` (the manifest's `run`) in the package
directory and talks to it in plain HTTP/1.1. It needs no SDK; all it learns from the
daemon is in its environment:

    UPGOSSIP_PORT   the port to listen on, on 127.0.0.1: other peers' requests arrive there
    UPGOSSIP_STATE  the directory for everything that must survive an upgrade
    UPGOSSIP_PROXY  http://USER:TOKEN@127.0.0.1:PORT, the daemon's proxy: the way to other peers

Its protocol 1:

    PUT /kv/<key>        body: the value (UTF-8 text)  -> 200, the value
    GET /kv/<key>                                      -> 200, the value; 404 when absent
    GET /everywhere/<key>  asks every other peer of {{app}} for <key>, through the proxy
                           -> 200 {"<peer host>": {"value": "..." or null} or {"error": "..."}}
    GET /healthz                                       -> 200 once the state is loaded

A <key> is percent-encoded in the path (users%2F42 for users/42).
"""
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ['UPGOSSIP_PORT'])
STATE_DIR = os.environ['UPGOSSIP_STATE']
STATE = os.path.join(STATE_DIR, 'data.json')
PROXY = os.environ.get('UPGOSSIP_PROXY')  # absent when you run the server by hand
APP = os.environ.get('UPGOSSIP_APP', '{{app}}')
MAX_BODY = 1 << 20


def log(message):
    # stdout and stderr go to the daemon's app.log
    print(f'{APP} 1.0.0: {message}', file=sys.stderr, flush=True)


# --- state: keep everything that must survive an upgrade in $UPGOSSIP_STATE ------------

def load():
    try:
        with open(STATE, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return {}  # a peer that never stored anything


def save(data):
    # write a temporary file, flush it, rename it over the old one: a crash (or a switch to
    # the next version) finds the old state or the new one, never half of one
    with open(STATE + '.tmp', 'w', encoding='utf-8') as f:
        f.write(json.dumps(data, separators=(',', ':')))
        f.flush()
        os.fsync(f.fileno())
    os.replace(STATE + '.tmp', STATE)


os.makedirs(STATE_DIR, exist_ok=True)
# load before the port opens, so the first 200 of /healthz means "ready"; a damaged file
# raises here and the program exits, which the daemon sees as unhealthy (an upgrade to this
# version then rolls back)
data = load()
lock = threading.Lock()  # requests run on threads of their own


# --- other peers, through the daemon's proxy ---------------------------------------------

# `http://upgossip/peers` lists the peers; `http://<peer host>/<path>` reaches the app of
# that peer, in whatever version it runs (the daemons translate). ProxyHandler sends the
# USER:TOKEN of the proxy URL as Proxy-Authorization on every request: without it the proxy
# answers 407. Given a mapping, it also ignores $http_proxy, which is not the daemon's proxy.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({'http': PROXY} if PROXY else {}))


def ask_everywhere(key):
    with opener.open('http://upgossip/peers', timeout=5) as res:
        view = json.load(res)  # {"self", "selfHost", "peers": [{"id", "host", "app", "version", "protocol"}]}
    answers = {}
    for peer in view['peers']:
        if peer['app'] != APP:
            continue  # peers of other apps are listed too
        url = f'http://{peer["host"]}/kv/{urllib.parse.quote(key, safe="")}'
        try:
            with opener.open(url, timeout=5) as res:
                answers[peer['host']] = {'value': res.read().decode('utf-8')}
        except urllib.error.HTTPError as err:
            answers[peer['host']] = {'value': None} if err.code == 404 else {'error': f'HTTP {err.code}'}
        except OSError as err:  # a peer that is gone or slow: say so, answer for the others
            answers[peer['host']] = {'error': str(err)}
    return answers


# --- HTTP ----------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive: every response has a Content-Length

    def reply(self, status, text, content_type='text/plain; charset=utf-8'):
        body = text.encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def key(self, prefix):
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith(prefix) or path == prefix:
            return None
        return urllib.parse.unquote(path[len(prefix):])

    def do_GET(self):
        if self.path == '/healthz':
            return self.reply(200, 'ok')
        key = self.key('/everywhere/')
        if key is not None:
            if not PROXY:
                return self.reply(503, 'no UPGOSSIP_PROXY: not run by an upgossip daemon')
            try:
                return self.reply(200, json.dumps(ask_everywhere(key)), 'application/json')
            except OSError as err:
                return self.reply(502, f'could not list the peers: {err}')
        key = self.key('/kv/')
        if key is None:
            return self.reply(404, 'no such path: use /kv/<key> or /everywhere/<key>')
        with lock:
            value = data.get(key)
        if value is None:
            return self.reply(404, 'not found')
        self.reply(200, value)

    def do_PUT(self):
        # the daemon sends Content-Length unless the caller itself sent a chunked body
        length = self.headers.get('Content-Length', '')
        if not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True  # the body is left unread
            return self.reply(411 if not length.isdigit() else 413, f'send a value of at most {MAX_BODY} bytes, with a Content-Length')
        body = self.rfile.read(int(length))
        key = self.key('/kv/')
        if key is None:
            return self.reply(404, 'no such path: use /kv/<key>')
        try:
            value = body.decode('utf-8')
        except UnicodeDecodeError:
            return self.reply(400, 'a value is UTF-8 text')
        with lock:
            data[key] = value
            save(data)
        self.reply(200, value)

    def log_message(self, format, *args):
        pass  # a line per request would flood app.log


# 127.0.0.1, never 0.0.0.0: only the daemon may reach the app. Other peers come in through
# their daemon and this one, which know who they are, translate between versions and hold
# requests during an upgrade; an open port would let anyone write around all of that.
server = ThreadingHTTPServer(('127.0.0.1', PORT), Handler)
server.daemon_threads = True
# the daemon stops the app with SIGTERM (SIGKILL 10 s later): leave serve_forever, close
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
log(f'serving {len(data)} keys on 127.0.0.1:{PORT}')
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
finally:
    server.server_close()
