"""Talk to a tcpchat app on a peer, as the apps do: CONNECT <peer host>:1 through a daemon's proxy.

    UPGOSSIP_PROXY=$(jq -r .proxy DATA/control.json) python3 client.py <peer host> '{"op": "list"}' …

Sends each argument as one NDJSON line on one connection and prints each reply line. The
peer hosts are those of `curl -x "$UPGOSSIP_PROXY" http://upgossip/peers` (`selfHost` is
the daemon's own app). Python standard library only.
"""
import base64
import os
import socket
import sys
import urllib.parse


def connect(proxy_url, host, timeout=30):
    proxy = urllib.parse.urlsplit(proxy_url)
    credentials = base64.b64encode(f'{urllib.parse.unquote(proxy.username)}:{urllib.parse.unquote(proxy.password)}'.encode()).decode()
    sock = socket.create_connection((proxy.hostname, proxy.port), timeout=timeout)
    sock.sendall(f'CONNECT {host}:1 HTTP/1.1\r\nHost: {host}:1\r\nProxy-Authorization: Basic {credentials}\r\n\r\n'.encode())
    stream = sock.makefile('rwb')
    status = stream.readline(8192).decode('latin-1').rstrip('\r\n')
    while stream.readline(8192) not in (b'\r\n', b'\n', b''):
        pass
    if status.split(' ')[1:2] != ['200']:
        sys.exit(f'{status}: {stream.read(4096).decode("utf-8", "replace").strip()}')
    return sock, stream


if __name__ == '__main__':
    if len(sys.argv) < 3 or 'UPGOSSIP_PROXY' not in os.environ:
        sys.exit(__doc__.strip().split('\n\n')[1])
    sock, stream = connect(os.environ['UPGOSSIP_PROXY'], sys.argv[1])
    for line in sys.argv[2:]:
        stream.write(line.encode() + b'\n')
        stream.flush()
        print(stream.readline().decode().rstrip('\n'))
    sock.close()
