/**
 * Bad input to process apps on real daemons: releases whose program never opens its
 * port, opens another one, exits at once, or whose up command fails each roll back with a
 * message that says why (logged once), while the other peer keeps serving; a `./program`
 * packed without its executable bit runs (unpacking sets 0755); and the proxy answers
 * what it refuses with the right status — a malformed request line 400, a host that is no
 * peer 404, no credentials 407 — and keeps serving; a body over 16 MiB to the app itself
 * (same version) goes through.
 */
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { appLog, appProcesses, events, hasPython, killAppProcesses, proxyOf, proxyPeers, requirePythonInCi, viaProxy } from './support/process-apps.js'
import { pyKv, pyServer } from './support/py-kv.js'
import { TestNet, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

requirePythonInCi('process-app-input.test.ts')

let testNet: TestNet | undefined

afterEach(async () => {
  const root = testNet?.root
  await testNet?.close()
  testNet = undefined
  if (root == null) return
  // a daemon stopped with SIGTERM leaves no app process behind (a failed case may: ended here)
  const left = await killAppProcesses(root)
  expect(left.map(p => `${p.pid} ${p.cmdline}`), 'app processes left after the daemons stopped').toEqual([])
})

async function publish (p: Peer, file: string): Promise<void> {
  const res = await p.api('/publish', { method: 'POST', body: await fs.readFile(file) })
  expect(res.status, await res.text()).toBe(200)
}

/** Bytes written on a raw connection to `port`, and everything answered until the server closes (or 5 s pass). */
async function raw (port: number, bytes: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let answer = ''
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => { answer += d })
    socket.setTimeout(5000, () => { socket.destroy(); resolve(answer) })
    socket.on('end', () => { resolve(answer) })
    socket.on('close', () => { resolve(answer) })
    socket.on('error', reject)
    socket.write(bytes, 'latin1')
  })
}

/** Exactly one app process runs for the peer (none left over by a switch, no second copy), the one its status names. */
async function oneAppProcess (p: Peer): Promise<void> {
  const pid = (await p.status()).process?.pid
  expect(pid).toBeGreaterThan(1)
  expect((await appProcesses(p.dataDir)).map(x => x.pid), p.name).toEqual([pid])
}

// the bad releases are for the canary only: b stays on 1.0.0 and serves throughout
const CANARY = { schedule: [{ rule: 'labels', match: { role: 'canary' } }] }
const QUICK_FAIL = { readyWithin: '2s', stableFor: '1s' }

const NEVER_LISTENS = `import os, time
print(f"never listening (the port would be {os.environ['UPGOSSIP_PORT']})", flush=True)
while True:
    time.sleep(1)
`
const WRONG_PORT = `import http.server, os
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), http.server.BaseHTTPRequestHandler)
print(f"listening on {server.server_address[1]} instead of {os.environ['UPGOSSIP_PORT']}", flush=True)
server.serve_forever()
`
const EXITS = `import sys
print("kv 4.0.0: no configuration found, giving up", file=sys.stderr, flush=True)
sys.exit(1)
`
const UP_FAILS = `import sys
print("up.py: the old state is not what I expected", file=sys.stderr, flush=True)
sys.exit(3)
`

describe.skipIf(!hasPython)('bad input to process apps', () => {
  it('releases that cannot run roll back with the reason, logged once; the other peer keeps serving; a ./program without its x bit runs', async () => {
    testNet = await TestNet.create({ transformLimit: '5s' })
    const n = testNet
    const v1 = await n.releaseFiles(pyKv('1.0.0', 1))
    const a = await n.start('a', ['--install', v1.file, '--label', 'role=canary'])
    const b = await n.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    const bHost = await waitFor('a\'s proxy to list b', async () => (await proxyPeers(a)).peers.find(p => p.id === b.peerId && p.version === '1.0.0')?.host)
    expect(await viaProxy(proxyOf(a), 'PUT', `http://${bHost}/kv/k`, 'on b')).toMatchObject({ status: 200 })

    const bad = [
      ['2.0.0', 'a program that never opens its port', pyKv('2.0.0', 1, { ...CANARY, health: QUICK_FAIL }, { 'server.py': NEVER_LISTENS }),
        /^failed at verify: kv@2\.0\.0 did not accept connections on its port (\d+) within 2000 ms$/, /never listening \(the port would be (\d+)\)/],
      ['3.0.0', 'a program that opens another port', pyKv('3.0.0', 1, { ...CANARY, health: { ...QUICK_FAIL, http: '/healthz' } }, { 'server.py': WRONG_PORT }),
        /^failed at verify: kv@3\.0\.0 did not answer GET \/healthz with 2xx on its port (\d+) within 2000 ms$/, /listening on \d+ instead of (\d+)/],
      ['4.0.0', 'a program that exits at once with code 1', pyKv('4.0.0', 1, { ...CANARY, health: QUICK_FAIL }, { 'server.py': EXITS }),
        /^failed at verify: kv@4\.0\.0 exited \(1\) before it was ready$/, /kv 4\.0\.0: no configuration found, giving up/],
      ['5.0.0', 'an up command that fails', pyKv('5.0.0', 2, CANARY, { 'up.py': UP_FAILS }),
        /^failed at transform: transform command python3 up\.py \(1\.0\.0 → 5\.0\.0\) exited with code 3$/, /up\.py: the old state is not what I expected/]
    ] as const
    for (const [version, what, files, reason, logged] of bad) {
      const release = await n.releaseFiles(files)
      await publish(a, release.file)
      const failed = await waitFor(`${version} (${what}) to fail on a`, async () => {
        const r = (await a.status()).releases.find(x => x.id === release.id)
        return r?.state === 'failed' ? r : undefined
      }, 60_000)
      expect(failed.reason, what).toMatch(reason)
      await a.waitVersion('1.0.0')
      // the port the message names is the one the program was given (its own output, in app.log)
      const log = await appLog(a)
      const said = logged.exec(log)
      expect(said, `app.log has what ${what} printed`).not.toBeNull()
      const port = reason.exec(failed.reason ?? '')?.[1]
      if (port != null) expect(said?.[1]).toBe(port)
      // logged once: one event as the switch fails, one as the rollback ends (the status may say 1.0.0 runs a moment before that event is written)
      await waitFor(`the rollback of ${version} to be logged`, async () => (await events(a)).some(e => e.to === release.id && e.type === 'upgrade-rolled-back'), 10_000)
      const mine = (await events(a)).filter(e => e.to === release.id)
      expect(mine.filter(e => e.type === 'upgrade-failed'), what).toHaveLength(1)
      expect(mine.filter(e => e.type === 'upgrade-rolled-back'), what).toHaveLength(1)
      // a runs 1.0.0 with its state; b never tried, and serves
      expect(await a.call({ method: 'GET', path: '/kv/k' })).toMatchObject({ status: 404 })
      expect(await b.status()).toMatchObject({ version: '1.0.0', state: 'running' })
      const read = await viaProxy(proxyOf(a), 'GET', `http://${bHost}/kv/k`)
      expect(JSON.parse(read.body)).toEqual({ key: 'k', value: 'on b', version: '1.0.0' })
    }
    // nothing of the bad versions runs: one app process per peer, the one its status names
    await oneAppProcess(a)
    await oneAppProcess(b)

    // 6.0.0 runs as ./server.py, packed without its executable bit: each daemon sets it (for its owner only) when it unpacks
    const good = await n.releaseFiles(pyKv('6.0.0', 1, { run: { command: ['./server.py'], wire: 'http' } }, { 'server.py': `#!/usr/bin/env python3\n${pyServer(1)}` }))
    await publish(a, good.file)
    for (const p of [a, b]) await p.waitVersion('6.0.0')
    for (const p of [a, b]) expect((await fs.stat(path.join(p.dataDir, 'packages', good.id, 'server.py'))).mode & 0o777).toBe(0o700)
    expect(JSON.parse((await viaProxy(proxyOf(a), 'GET', `http://${bHost}/kv/k`)).body)).toEqual({ key: 'k', value: 'on b', version: '6.0.0' })
    for (const p of [a, b]) await oneAppProcess(p)
  })

  it('the proxy refuses a malformed request line (400), a host that is no peer (404), no credentials (407), and keeps serving; a body over 16 MiB to the app itself goes through', async () => {
    testNet = await TestNet.create()
    const a = await testNet.start('a', ['--install', (await testNet.releaseFiles(pyKv('1.0.0', 1))).file])
    await a.waitVersion('1.0.0')
    const proxy = proxyOf(a)
    const port = Number(new URL(proxy).port)
    const self = (await proxyPeers(a)).selfHost
    const works = async (): Promise<void> => {
      expect(await viaProxy(proxy, 'PUT', `http://${self}/kv/k`, 'v')).toMatchObject({ status: 200 })
      expect(JSON.parse((await viaProxy(proxy, 'GET', `http://${self}/kv/k`)).body)).toMatchObject({ value: 'v' })
    }
    await works()

    // malformed request lines, raw on the socket
    for (const line of ['NOT A REQUEST LINE\r\n\r\n', 'GET http://x/ HTTP/1.1 extra\r\n\r\n', 'GET\0 / HTTP/1.1\r\nHost: x\r\n\r\n', `GET http://${self}/kv/k HTTP/9.9\r\n\r\n`]) {
      const answer = await raw(port, line)
      expect(answer, JSON.stringify(line)).toMatch(/^HTTP\/1\.1 400 /)
    }
    await works()

    // hosts that are no peer: a name, an address, a peer-like name that is none
    for (const host of ['example.com', '127.0.0.1:22', `k51${'a'.repeat(59)}`]) {
      const answer = await viaProxy(proxy, 'GET', `http://${host}/`)
      expect(answer.status, host).toBe(404)
      expect(answer.body).toContain('not a peer host')
    }
    // an origin-form target is not a proxy request
    expect((await viaProxy(proxy, 'GET', '/kv/k')).status).toBe(400)

    // no credentials, or wrong ones
    const anonymous = await viaProxy(proxy, 'GET', `http://${self}/kv/k`, undefined, { anonymous: true })
    expect(anonymous.status).toBe(407)
    expect(anonymous.headers['proxy-authenticate']).toMatch(/^Basic /)
    const wrong = await viaProxy(proxy, 'GET', `http://${self}/kv/k`, undefined, { anonymous: true, headers: { 'proxy-authorization': `Basic ${Buffer.from('upgossip:nope').toString('base64')}` } })
    expect(wrong.status).toBe(407)
    await works()

    // a body over 16 MiB to the app itself: same version, so streamed, with no limit of the proxy's own
    // (a translated one is carried whole and gets 413 past 16 MiB: process-app-bodies.test.ts)
    const big = new Uint8Array(24 * 1024 * 1024).fill(120)
    expect((await viaProxy(proxy, 'PUT', `http://${self}/kv/big`, big)).status).toBe(200)
    await works()
    expect(a.exited).toBeUndefined()

    // each refusal logged once, with its status
    const expected = [400, 400, 400, 400, 404, 404, 404, 400, 407, 407]
    const statuses = async (): Promise<number[]> => (await events(a)).filter(e => e.type === 'app-proxy').map(e => Number(/(?::|with) (\d{3})\b/.exec(e.message)?.[1]))
    await waitFor('the refusals to be logged', async () => (await statuses()).length >= expected.length)
    // one more refusal, logged after every one above: once it is in the log, a second line for any of them would be too
    expect((await viaProxy(proxy, 'GET', 'http://marker.invalid/after')).status).toBe(404)
    await waitFor('the marker refusal to be logged', async () => (await statuses()).length > expected.length)
    expect(await statuses()).toEqual([...expected, 404])
  })
})
