/**
 * `daemon --metrics HOST:PORT` on real daemons: a second listener that serves `GET /metrics`
 * and `GET /healthz` without the token and refuses everything else, while the control API
 * keeps its token; `/healthz` follows the app (unhealthy, killed, not installed yet); a
 * port in use refuses the start before the app runs.
 */
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let testNet: TestNet | undefined

afterEach(async () => {
  await testNet?.close()
  testNet = undefined
})

/** A process app whose health check fails while a file `sick` is in its state directory. */
const SERVER = `import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
const sick = path.join(process.env.UPGOSSIP_STATE, 'sick')
http.createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(fs.existsSync(sick) ? 503 : 200); return res.end() }
  res.end('ok')
}).listen(Number(process.env.UPGOSSIP_PORT), '127.0.0.1')
`

const APP = {
  'upgossip.json': JSON.stringify({ app: 'kv', version: '1.0.0', protocol: 1, run: { command: [process.execPath, 'server.mjs'], wire: 'http' }, health: { http: '/healthz', readyWithin: '15s', stableFor: '500ms' } }),
  'server.mjs': SERVER
}

/** The `--metrics` listener's URL, from control.json. */
function metricsUrl (peer: Peer): string {
  const url = (peer.control as unknown as { metrics?: string }).metrics
  if (url == null) throw new Error(`${peer.name}: control.json has no "metrics"`)
  return url
}

async function healthz (peer: Peer): Promise<{ code: number, body: { status: string, reason?: string, [key: string]: unknown } }> {
  const res = await fetch(`${metricsUrl(peer)}/healthz`)
  return { code: res.status, body: await res.json() as { status: string, reason?: string } }
}

describe('the --metrics listener', () => {
  it('serves /metrics and /healthz without the token and nothing else; /healthz follows the app', async () => {
    // the config-file key (every daemon of this net has it)
    testNet = await TestNet.create({ metrics: '127.0.0.1:0' })
    const v1 = await testNet.releaseFiles(APP)
    const a = await testNet.start('a', ['--install', v1.file])
    expect(metricsUrl(a)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    await a.waitVersion('1.0.0')
    expect(a.log).toContain(`; /metrics and /healthz on ${metricsUrl(a).slice('http://'.length)}`)

    const ok = await waitFor('a healthy', async () => { const h = await healthz(a); return h.code === 200 ? h : undefined })
    expect(ok.body).toEqual({ status: 'ok', peerId: a.peerId, app: 'kv', version: '1.0.0', state: 'running', build: expect.stringMatching(/^\d+\.\d+\.\d+ \(([0-9a-f]{7,}|unknown)\)$/) })
    expect(ok.body.build).toBe((await a.status()).build)

    // the same Prometheus text as the control API's, without the token
    const scraped = await fetch(`${metricsUrl(a)}/metrics`)
    expect(scraped.status).toBe(200)
    expect(scraped.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await scraped.text()
    expect(text).toContain('upgossip_app_info{app="kv",version="1.0.0",protocol="1"} 1')
    const families = (t: string): string[] => [...t.matchAll(/^# TYPE (\S+)/gm)].map(m => m[1] as string).sort()
    expect(families(text)).toEqual(families(await a.metrics()))

    // read-only, and nothing but those two
    for (const method of ['POST', 'PUT', 'DELETE']) {
      for (const route of ['/metrics', '/healthz']) {
        const res = await fetch(`${metricsUrl(a)}${route}`, { method, body: method === 'DELETE' ? undefined : 'x' })
        expect(res.status, `${method} ${route}`).toBe(405)
        expect(res.headers.get('allow')).toBe('GET, HEAD')
      }
    }
    for (const route of ['/', '/status', '/rollout', '/events', '/history', '/metrics/x', '/?token=x']) {
      expect((await fetch(`${metricsUrl(a)}${route}`)).status, route).toBe(404)
    }
    for (const route of ['/publish', '/rollback', '/call', '/approve/kv@1.0.0']) {
      expect((await fetch(`${metricsUrl(a)}${route}`, { method: 'POST', body: '{}' })).status, route).toBe(404)
    }
    // …with the token neither: the control API's endpoints are not there
    expect((await fetch(`${metricsUrl(a)}/status`, { headers: { authorization: `Bearer ${a.control.token}` } })).status).toBe(404)
    // the control API keeps its token, /metrics included
    expect((await fetch(`${a.control.url}/metrics`)).status).toBe(401)
    expect((await fetch(`${a.control.url}/`)).status).toBe(401)

    // the app's health check fails: 503 with the reason, and 200 again once it passes
    const stateDir = path.join(a.dataDir, 'state', v1.id)
    await fs.writeFile(path.join(stateDir, 'sick'), '')
    const sick = await waitFor('a unhealthy', async () => { const h = await healthz(a); return h.code === 503 ? h : undefined }, 20_000)
    expect(sick.body).toMatchObject({ status: 'unavailable', state: 'running', reason: 'kv@1.0.0 is unhealthy: did not answer GET /healthz with 2xx on its port ' + String((await a.status()).process?.port) + ' 3 times in a row' })
    await fs.rm(path.join(stateDir, 'sick'))
    await waitFor('a healthy again', async () => (await healthz(a)).code === 200, 20_000)

    // the app process is killed: 503 until the daemon has restarted it, then 200
    const pid = (await a.status()).process?.pid
    expect(pid).toBeGreaterThan(0)
    process.kill(pid as number, 'SIGKILL')
    const down = await waitFor('a down', async () => { const h = await healthz(a); return h.code === 503 ? h : undefined }, 10_000, 20)
    expect(down.body.reason).toMatch(/^kv@1\.0\.0 is (not running \(it exited; the daemon restarts it\)|not ready yet)$/)
    await waitFor('a restarted and healthy', async () => (await healthz(a)).code === 200, 20_000)
    expect((await a.status()).process?.pid).not.toBe(pid)

    // a peer that joined with --app and has found no release yet
    const b = await testNet.start('b', ['--app', 'kv'])
    const none = await healthz(b)
    expect(none).toEqual({ code: 503, body: expect.objectContaining({ status: 'unavailable', state: 'installing', app: 'kv', version: null, reason: 'no version of kv installed yet (waiting for a release from the network)' }) })
  })

  it('a --metrics port in use refuses the start before the app runs; a value that is not HOST:PORT is a usage error', async () => {
    testNet = await TestNet.create()
    const v1 = await testNet.releaseFiles(APP)
    const busy = net.createServer()
    await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
    const port = (busy.address() as net.AddressInfo).port
    try {
      const data = path.join(testNet.root, 'refused')
      const refused = await runCli(['daemon', '--data', data, '--trust', testNet.trustFile, '--install', v1.file, '--listen', '/ip4/127.0.0.1/tcp/0', '--metrics', `127.0.0.1:${port}`])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toContain(`upgossip: --metrics 127.0.0.1:${port}: cannot listen: the port is in use; choose another (port 0 picks a free one) [MetricsListenFailedError]`)
      expect(refused.stderr).not.toMatch(/is running/)
      // refused before anything ran: the new data directory is left as it was (absent)
      await expect(fs.stat(data)).rejects.toThrow(/ENOENT/)
    } finally {
      busy.close()
    }
    const usage = await runCli(['daemon', '--data', path.join(testNet.root, 'u'), '--metrics', '9464'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('upgossip: --metrics 9464: not HOST:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464; port 0 picks a free one) [DaemonConfigError]')
  })
})
