"""tcpchat 2.0.0, protocol 2: a message board over raw TCP, Python standard library only.

A process app with `"wire": "tcp"`: upgossip runs `python3 chat.py` and passes other peers'
connections to its port as they are. The protocol is newline-delimited JSON (NDJSON): one
request per line, one reply per line, as many as a client likes on one connection.

    {"cmd": "post", "author": "ann", "body": "hi"}  -> {"ok": true, "id": "…"}
    {"cmd": "list"}                                  -> {"ok": true, "messages": [{"id", "author", "body"}, …]}
    {"cmd": "echo", "body": "…"}                     -> {"ok": true, "body": "…"}
    {"cmd": "ask", "host": "k51…", "request": {…}}   -> {"ok": true, "reply": {…}}  (this app asks that peer)
    anything else                                    -> {"ok": false, "error": "…"}

What changed since protocol 1: `op` is `cmd`, a message's `from` is `author` and its
`text` is `body`. Peers of 1.0.0 keep working: the simulation objects of this release
(past.js, future.js) translate each line, in the daemons.

State: unchanged, $UPGOSSIP_STATE/messages.json, {"messages": [{"id", "from", "text"}, …]}
(the names on disk are 1.0.0's; only the wire changed, so the release has no transform).

Relaying: a client's post is stored, answered, then sent in the background to every other
peer of the app as the same post with its `id` and `"relayed": true`, over a connection
opened with `CONNECT <peer host>:1` through the daemon's proxy. A relayed post is stored
(once: its id is known afterwards) and never sent on.
"""
import base64
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import urllib.parse
import urllib.request
import uuid

PORT = int(os.environ['UPGOSSIP_PORT'])
STATE_DIR = os.environ['UPGOSSIP_STATE']
STATE = os.path.join(STATE_DIR, 'messages.json')
PROXY = os.environ.get('UPGOSSIP_PROXY')  # http://USER:TOKEN@127.0.0.1:PORT; absent when run by hand
APP = os.environ.get('UPGOSSIP_APP', 'tcpchat')
MAX_LINE = 16 << 20


def log(message):
    # stderr goes to the daemon's app.log
    print(f'tcpchat 2: {message}', file=sys.stderr, flush=True)


# --- state ------------------------------------------------------------------------------

def load():
    try:
        with open(STATE, encoding='utf-8') as f:
            data = json.load(f)
    except FileNotFoundError:
        return []
    except ValueError as err:
        raise ValueError(f'{STATE}: {err}')
    if not isinstance(data, dict) or not isinstance(data.get('messages'), list):
        raise ValueError(f'{STATE}: expected {{"messages": [...]}}')
    return data['messages']


def save():
    # a temporary file, flushed, renamed over the old one, the directory flushed: a crash
    # leaves the old state or the new, never half of one
    tmp = STATE + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(json.dumps({'messages': messages}, separators=(',', ':')))
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
    messages = load()  # before the port opens: the daemon counts the app ready once it accepts connections
except ValueError as err:  # never serve (and overwrite) a damaged state: exiting fails the health check
    sys.exit(f'tcpchat 2: cannot load the state: {err}')
known = {m['id'] for m in messages}
lock = threading.Lock()  # connections run on threads of their own


# --- peers, through the daemon's proxy --------------------------------------------------

def proxy_parts():
    url = urllib.parse.urlsplit(PROXY)
    credentials = f'{urllib.parse.unquote(url.username)}:{urllib.parse.unquote(url.password)}'
    return url.hostname, url.port, base64.b64encode(credentials.encode()).decode()


def connect(host, timeout=20):
    """A connection to the app on the peer `host` (k51…): CONNECT host:1 through the proxy.

    The proxy wants its credentials (those in UPGOSSIP_PROXY) as Proxy-Authorization: Basic,
    and answers `HTTP/1.1 200 Connection Established` once the peer's app accepted the
    connection; from then on the socket carries that app's bytes.
    """
    proxy_host, proxy_port, credentials = proxy_parts()
    sock = socket.create_connection((proxy_host, proxy_port), timeout=timeout)
    sock.sendall(f'CONNECT {host}:1 HTTP/1.1\r\nHost: {host}:1\r\nProxy-Authorization: Basic {credentials}\r\n\r\n'.encode())
    stream = sock.makefile('rwb')
    status = stream.readline(8192).decode('latin-1').rstrip('\r\n')
    while stream.readline(8192) not in (b'\r\n', b'\n', b''):
        pass  # the answer's headers
    if status.split(' ')[1:2] != ['200']:
        reason = stream.read(4096).decode('utf-8', 'replace').strip()
        sock.close()
        raise ConnectionError(f'CONNECT {host}:1: {status}: {reason}')
    return sock, stream


def ask(host, request):
    """One request to the app on `host`, one reply."""
    sock, stream = connect(host)
    try:
        stream.write(json.dumps(request).encode() + b'\n')
        stream.flush()
        line = stream.readline(MAX_LINE + 1)
        if not line.endswith(b'\n'):
            raise ConnectionError(f'{host} closed the connection without a reply')
        return json.loads(line)
    finally:
        sock.close()


opener = urllib.request.build_opener(urllib.request.ProxyHandler({'http': PROXY})) if PROXY else None


def peers():
    """Hosts of the other peers that run this app (any version: the daemons translate)."""
    with opener.open('http://upgossip/peers', timeout=5) as res:
        view = json.load(res)
    return [p['host'] for p in view['peers'] if p['app'] == APP and p['host'] != view['selfHost']]


def relay(message):
    if opener is None:
        return

    def run():
        try:
            hosts = peers()
        except Exception as err:
            log(f'could not list peers to relay {message["id"]}: {err}')
            return
        for host in hosts:
            try:
                ask(host, {'cmd': 'post', **wire(message), 'relayed': True})
            except Exception as err:  # a lost copy costs redundancy, not the client's post
                log(f'could not relay {message["id"]} to {host}: {err}')

    threading.Thread(target=run, daemon=True).start()


# --- the protocol -----------------------------------------------------------------------

def wire(message):
    """A stored message as protocol 2 names its fields."""
    return {'id': message['id'], 'author': message['from'], 'body': message['text']}


def answer(req):
    if not isinstance(req, dict):
        return {'ok': False, 'error': 'a request is a JSON object'}
    cmd = req.get('cmd')
    if cmd == 'post':
        text, author = req.get('body'), req.get('author')
        if not isinstance(text, str) or not isinstance(author, str):
            return {'ok': False, 'error': 'post needs "author" and "body", strings'}
        message = {'id': req.get('id') if isinstance(req.get('id'), str) else uuid.uuid4().hex, 'from': author, 'text': text}
        with lock:
            if message['id'] not in known:
                known.add(message['id'])
                messages.append(message)
                save()
        if req.get('relayed') is not True:
            relay(message)
        return {'ok': True, 'id': message['id']}
    if cmd == 'list':
        with lock:
            return {'ok': True, 'messages': [wire(m) for m in messages]}
    if cmd == 'echo':
        return {'ok': True, 'body': req.get('body')}
    if cmd == 'ask':
        if opener is None:
            return {'ok': False, 'error': 'no proxy: run by hand'}
        try:
            return {'ok': True, 'reply': ask(req.get('host'), req.get('request'))}
        except Exception as err:
            return {'ok': False, 'error': str(err)}
    return {'ok': False, 'error': f'unknown cmd {cmd!r}'}


class Connection(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if not line.endswith(b'\n') and len(line) > MAX_LINE:
                self.wfile.write(b'{"ok":false,"error":"line too long"}\n')
                return
            try:
                req = json.loads(line)
            except ValueError:
                reply = {'ok': False, 'error': 'not JSON'}
            else:
                reply = answer(req)
            self.wfile.write(json.dumps(reply).encode() + b'\n')


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
# 127.0.0.1 only: peers reach the app through their daemons, never directly
with Server(('127.0.0.1', PORT), Connection) as server:
    log(f'serving {len(messages)} messages on 127.0.0.1:{PORT}' + ('' if PROXY else ' (no $UPGOSSIP_PROXY: not relaying)'))
    server.serve_forever()
