/**
 * Process apps (the manifest's `run`): a Python HTTP service run as it is, with no SDK,
 * on real daemons. Peers reach it through the shim; it reaches peers through the daemon's
 * proxy (credentials from UPGOSSIP_PROXY, hosts from http://upgossip/peers); it upgrades
 * with its state carried over, a release whose program cannot start rolls back, and a
 * daemon killed with -9 does not leave it running.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { alive, hasPython, requirePythonInCi, viaProxy } from './support/process-apps.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

requirePythonInCi('process-app.test.ts')

/** A small key-value service in Python (standard library only); `/relay/<host>/<path>` makes it call a peer through the proxy. */
const SERVER = `import http.server, json, os, signal, sys, urllib.request
PORT = int(os.environ['UPGOSSIP_PORT'])
STATE = os.path.join(os.environ['UPGOSSIP_STATE'], 'state.json')
VERSION = os.environ['UPGOSSIP_APP_VERSION']
try:
    with open(STATE) as f:
        data = json.load(f)
except FileNotFoundError:
    data = {}
proxy = urllib.request.build_opener(urllib.request.ProxyHandler({'http': os.environ['UPGOSSIP_PROXY']}))

def save():
    with open(STATE + '.tmp', 'w') as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(STATE + '.tmp', STATE)

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
        if self.path.startswith('/relay/'):
            with proxy.open('http://' + self.path[len('/relay/'):], timeout=20) as res:
                return self.reply(200, {'relayed': json.load(res), 'by': VERSION})
        self.reply(404, {'error': 'no such path'})
    def do_PUT(self):
        length = int(self.headers.get('content-length', '0'))
        data[self.path[4:]] = self.rfile.read(length).decode()
        save()
        self.reply(200, {'ok': True, 'version': VERSION})
    def log_message(self, *args):
        pass

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
# 127.0.0.1 only: peers reach the app through its daemon, never directly
http.server.ThreadingHTTPServer(('127.0.0.1', PORT), Handler).serve_forever()
`

function pyApp (version: string, command = ['python3', 'server.py']): Record<string, string> {
  return {
    'upgossip.json': JSON.stringify({ app: 'kv', version, protocol: 1, run: { command, wire: 'http' }, health: { http: '/healthz', readyWithin: '15s', stableFor: '1s' } }),
    'server.py': SERVER
  }
}

describe.skipIf(!hasPython)('process apps', () => {
  it('a Python service talks to its peers through the proxy and the shim, upgrades with its state, and rolls back a release that cannot start', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(pyApp('1.0.0'))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    const proxy = (a.control as unknown as { proxy: string }).proxy
    expect(proxy).toMatch(/^http:\/\/upgossip:[0-9a-f]+@127\.0\.0\.1:\d+$/)
    // started once: the host does not take a program still being spawned for one that crashed
    const appLog = await fs.readFile(path.join(a.dataDir, 'app.log'), 'utf8')
    expect(appLog.match(/starting kv@1\.0\.0/g)).toHaveLength(1)
    const statusA = await a.status()
    expect(statusA.process?.pid).toBeGreaterThan(1)
    expect(statusA.process?.port).toBeGreaterThan(0)
    expect((await runCli(['status', '--data', a.dataDir])).stdout).toContain(`process   pid ${statusA.process?.pid ?? ''}, listening on 127.0.0.1:${statusA.process?.port ?? ''}`)

    // the network as the app sees it: peers of every class, by host name
    const peers = await waitFor('a\'s proxy to list b', async () => {
      const answer = await viaProxy(proxy, 'GET', 'http://upgossip/peers')
      const listed = JSON.parse(answer.body) as { self: string, selfHost: string, peers: Array<{ id: string, host: string, app: string, version: string, protocol: number }> }
      // b's beats tell its version once it runs one
      return listed.peers.some(p => p.id === b.peerId && p.version === '1.0.0') ? listed : undefined
    })
    expect(peers.self).toBe(a.peerId)
    expect(peers.selfHost).toMatch(/^k51[0-9a-z]{59}$/)
    const bHost = peers.peers.find(p => p.id === b.peerId)?.host ?? ''
    expect(bHost).toMatch(/^k51[0-9a-z]{59}$/)
    expect(peers.peers.find(p => p.id === b.peerId)).toMatchObject({ app: 'kv', version: '1.0.0', protocol: 1 })

    // a write to b's app through a's proxy, read back through the same path
    const put = await viaProxy(proxy, 'PUT', `http://${bHost}/kv/x`, 'hello')
    expect(put, put.body).toMatchObject({ status: 200 })
    const read = await viaProxy(proxy, 'GET', `http://${bHost.toUpperCase()}/kv/x`)
    expect(read.status).toBe(200)
    expect(JSON.parse(read.body)).toEqual({ key: 'x', value: 'hello', version: '1.0.0' })
    // the Python app itself calls b through the proxy (urllib, credentials from UPGOSSIP_PROXY)
    const relayed = await viaProxy(proxy, 'GET', `http://${peers.selfHost}/relay/${bHost}/kv/x`)
    expect(JSON.parse(relayed.body)).toEqual({ relayed: { key: 'x', value: 'hello', version: '1.0.0' }, by: '1.0.0' })
    // `upgossip call` makes the same request as the app would
    const called = await runCli(['call', '--data', a.dataDir, '--peer', b.peerId, JSON.stringify({ method: 'GET', path: '/kv/x' })])
    expect(called.code, called.stderr).toBe(0)
    expect(JSON.parse((JSON.parse(called.stdout) as { body: string }).body)).toMatchObject({ value: 'hello' })

    // what the proxy refuses: no credentials, a host that is not a peer
    expect((await viaProxy(proxy, 'GET', `http://${bHost}/kv/x`, undefined, { anonymous: true })).status).toBe(407)
    const elsewhere = await viaProxy(proxy, 'GET', 'http://example.com/')
    expect(elsewhere.status).toBe(404)
    expect(elsewhere.body).toContain('not a peer host')

    // 2.0.0: the same protocol and state format; the state directory is carried over
    const v2 = await net.releaseFiles(pyApp('2.0.0'))
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b]) await p.waitVersion('2.0.0')
    expect(JSON.parse((await viaProxy(proxy, 'GET', `http://${bHost}/kv/x`)).body)).toEqual({ key: 'x', value: 'hello', version: '2.0.0' })

    // 3.0.0 names a program that does not exist: the switch fails, 2.0.0 runs again with its state
    const v3 = await net.releaseFiles(pyApp('3.0.0', ['no-such-program-upgossip']))
    expect((await runCli(['publish', v3.file, '--data', a.dataDir])).code).toBe(0)
    const failedOn = await waitFor('a peer to fail 3.0.0', async () => {
      for (const p of [a, b]) if ((await p.status()).releases.find(r => r.id === v3.id)?.state === 'failed') return p
      return undefined
    }, 60_000)
    expect((await failedOn.status()).releases.find(r => r.id === v3.id)?.reason).toContain('no-such-program-upgossip was not found')
    await waitFor(`${failedOn.name} to run 2.0.0 again`, async () => (await failedOn.status()).version === '2.0.0' && (await failedOn.status()).state === 'running')
    expect(JSON.parse((await viaProxy(proxy, 'GET', `http://${bHost}/kv/x`)).body)).toMatchObject({ value: 'hello' })
  })

  it('a daemon killed with -9 leaves its app running; the next start ends that app first', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(pyApp('1.0.0'))
    const a = await net.start('a', ['--install', v1.file])
    await a.waitVersion('1.0.0')
    const pid = (await waitFor('the app\'s pid', async () => (await a.status()).process?.pid)) ?? 0
    a.proc.kill('SIGKILL')
    await waitFor('the daemon to die', () => a.exited !== undefined)
    // its own process group: the daemon's death does not take it along
    expect(alive(pid)).toBe(true)
    const again = await net.start('a')
    await again.waitVersion('1.0.0')
    await waitFor('the old app to be gone', () => !alive(pid), 10_000)
    expect((await again.status()).process?.pid).not.toBe(pid)
  })
})
