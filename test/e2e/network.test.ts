/**
 * The peer network on real daemon processes over TCP on loopback: publish through one
 * peer and every peer ends with the complete verified package; plus the faults of
 * issue 3 (publisher leaving, a peer down during the announcement, a mesh that must not
 * stay a star, the control API's token).
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerNode, encodeBeat, statusTopic } from '../../src/net/index.js'
import type { BasePeerNode } from '../../src/net/index.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'

let net: TestNet | undefined

/** A GET /status with headers fetch() will not let us set (Host). */
async function rawStatus (url: string, headers: Record<string, string>): Promise<number> {
  const { port } = new URL(url)
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/status', headers }, res => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('error', reject)
    req.end()
  })
}

/** Established IPv4 TCP connections of this machine, from /proc/net/tcp (addresses as `a.b.c.d:port`). */
async function establishedTcp (): Promise<Array<{ local: string, remote: string }>> {
  const text = await fs.readFile('/proc/net/tcp', 'utf8')
  // "0200007F:1F90": the address in host (little-endian) order, the port big-endian
  const address = (hex: string): string => {
    const [ip = '', port = ''] = hex.split(':')
    return `${[3, 2, 1, 0].map(i => parseInt(ip.slice(2 * i, 2 * i + 2), 16)).join('.')}:${parseInt(port, 16)}`
  }
  return text.trim().split('\n').slice(1).map(line => line.trim().split(/\s+/))
    .filter(f => f[3] === '01')
    .map(f => ({ local: address(f[1] ?? ''), remote: address(f[2] ?? '') }))
}

/** libp2p nodes of the test's own, stopped after each test. */
const nodes: BasePeerNode[] = []

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  await net?.close()
  net = undefined
})

describe('peer network', () => {
  it('publishing through one of 5 daemons gives every peer the complete verified package', async () => {
    net = await TestNet.create()
    const v1 = await net.release('1.0.0')
    const v2 = await net.release('2.0.0', { 'data.bin': randomBytes(900_000) })
    const origin = await net.start('p0', ['--install', v1.file, '--label', 'zone=a'])
    const others = []
    for (let i = 1; i < 5; i++) others.push(await net.start(`p${i}`, ['--app', 'kv', '--bootstrap', origin.addr]))
    const all = [origin, ...others]
    // the v1 that p0 runs reaches every peer by anti-entropy
    await Promise.all(others.map(async p => { await p.waitStaged(v1.id) }))

    const published = await runCli(['publish', v2.file, '--data', origin.dataDir])
    expect(published.code, published.stderr).toBe(0)
    expect(published.stdout).toContain(`published kv@2.0.0 ${v2.id}`)
    await Promise.all(all.map(async p => { await p.waitStaged(v2.id) }))
    // the release's schedule is immediate: every peer then runs it
    await Promise.all(all.map(async p => { await p.waitVersion('2.0.0') }))
    for (const p of all) {
      const r = (await p.status()).releases.find(x => x.id === v2.id)
      expect(r?.have).toBe(r?.size)
      expect(r?.size).toBeGreaterThan(900_000)
    }
    // every block that arrived was checked, and none was refused
    for (const p of others) {
      expect(await p.metric('upgossip_blocks_total', { result: 'fetched' })).toBeGreaterThan(0)
      expect(await p.metric('upgossip_blocks_total', { result: 'refused' })).toBe(0)
    }

    // publishing again is not an error
    const again = await runCli(['publish', v2.file, '--data', others[0]?.dataDir ?? ''])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain('already known')

    // status shows peers, versions and per-release progress at a glance
    const status = await runCli(['status', '--data', others[1]?.dataDir ?? ''])
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toMatch(/kv 2\.0\.0\s+active\s+100%/)
    expect(status.stdout).toMatch(/kv 1\.0\.0\s+superseded\s+100%/)
    expect(status.stdout).toContain(origin.peerId.slice(0, 10))
    const json = JSON.parse((await runCli(['status', '--data', origin.dataDir, '--json'])).stdout)
    expect(json).toMatchObject({ peerId: origin.peerId, app: 'kv', version: '2.0.0', state: 'running', labels: { zone: 'a' } })
    expect(json.releases.map((r: { version: string }) => r.version)).toEqual(['1.0.0', '2.0.0'])
    await waitFor('p0 to see the 4 others', async () => (await origin.status()).network.length === 4)

    // every peer joined only through p0, yet keeps connections to several others
    await waitFor('every peer to hold at least 3 connections', async () => {
      for (const p of others) if ((await p.status()).connections < 3) return false
      return true
    }, 30_000)
  })

  it('the publisher leaving once one peer holds the package does not stop the rest', async () => {
    net = await TestNet.create()
    const v1 = await net.release('1.0.0')
    const v2 = await net.release('2.0.0', { 'data.bin': new Uint8Array(400_000).fill(3) })
    const publisher = await net.start('publisher', ['--install', v1.file])
    const first = await net.start('first', ['--app', 'kv', '--bootstrap', publisher.addr])
    expect((await runCli(['publish', v2.file, '--data', publisher.dataDir])).code).toBe(0)
    await first.waitStaged(v2.id)
    await publisher.stop()
    const late = [await net.start('late1', ['--app', 'kv', '--bootstrap', first.addr]), await net.start('late2', ['--app', 'kv', '--bootstrap', first.addr])]
    await Promise.all(late.map(async p => { await p.waitStaged(v2.id) }))
  })

  it('a daemon that was down during the announcement catches up when it comes back', async () => {
    net = await TestNet.create()
    const v1 = await net.release('1.0.0')
    const v2 = await net.release('2.0.0')
    const a = await net.start('a', ['--install', v1.file])
    let b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    await waitFor('b to connect', async () => (await b.status()).connections >= 1)
    const bPeerId = b.peerId
    await b.stop()
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await a.waitStaged(v2.id)
    // restarted on the same data directory, with the same identity, without --trust
    b = await net.start('b', ['--bootstrap', a.addr])
    expect(b.peerId).toBe(bPeerId)
    // it still runs what it installed before it stopped, learns of 2.0.0 and switches to it
    await b.waitVersion('2.0.0')
    expect((await b.history()).filter(e => e.type === 'installed' || e.type === 'upgrade-committed').map(e => e.type)).toEqual(['installed', 'upgrade-committed'])
  })

  it('the control API wants the token, the right Host, and answers malformed bodies with 4xx JSON', async () => {
    net = await TestNet.create()
    const a = await net.start('a')
    expect((await fetch(a.control.url + '/status')).status).toBe(401)
    expect((await fetch(a.control.url + '/status', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
    expect((await fetch(a.control.url + '/metrics')).status).toBe(401)
    // localhost is this host; any other name is a DNS-rebinding attempt
    const viaLocalhost = await runCli(['status', '--daemon', a.control.url.replace('127.0.0.1', 'localhost'), '--token', a.control.token])
    expect(viaLocalhost.code, viaLocalhost.stderr).toBe(0)
    expect(await rawStatus(a.control.url, { host: 'evil.example', authorization: `Bearer ${a.control.token}` })).toBe(403)
    expect(await rawStatus(a.control.url, { origin: 'http://evil.example', authorization: `Bearer ${a.control.token}` })).toBe(403)
    const garbage = await a.api('/publish', { method: 'POST', body: new Uint8Array([1, 2, 3]) })
    expect(garbage.status).toBe(422)
    expect((await garbage.json()).error.code).toBe('CarMalformedError')
    const empty = await a.api('/publish', { method: 'POST' })
    expect(empty.status).toBe(400)
    expect((await a.api('/nope')).status).toBe(404)
    const dashboard = await fetch(`${a.control.url}/?token=${a.control.token}`, { redirect: 'manual' })
    expect(dashboard.status).toBe(303)
    const cookie = dashboard.headers.get('set-cookie') ?? ''
    expect(cookie).toContain('HttpOnly')
    const page = await fetch(a.control.url + '/', { headers: { cookie: cookie.split(';')[0] ?? '' } })
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('<title>upgossip</title>')
    // the dashboard's buttons post with the cookie from the same origin; another origin is refused
    const sameOrigin = await fetch(a.control.url + '/approve/kv@9.9.9', { method: 'POST', headers: { cookie: cookie.split(';')[0] ?? '', origin: a.control.url } })
    expect(sameOrigin.status).toBe(422)
    expect((await sameOrigin.json()).error.code).toBe('UnknownReleaseError')
    expect(await rawStatus(a.control.url, { origin: a.control.url.replace('127.0.0.1', 'evil.example'), cookie: cookie.split(';')[0] ?? '' })).toBe(403)
    expect(a.exited).toBeUndefined()
  })

  it('an idle peer does not beat every interval, yet a change or a newcomer is heard within a tick', async () => {
    // beats every 500 ms while a status changes, but only every minute while idle: every
    // sighting below within 30 s comes from a beat the change or the newcomer caused
    net = await TestNet.create({ beatInterval: '500ms', idleBeatInterval: '60s', peerTimeout: '5m' })
    const v1 = await net.release('1.0.0')
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    const viewOf = async (from: typeof a, of: { peerId: string }): Promise<{ version: string | null, seen: string } | undefined> =>
      (await from.status()).network.find(e => e.peerId === of.peerId)
    // b learns of v1 by sync, fetches and runs it: its beats say so, well before a minute
    await b.waitVersion('1.0.0')
    await waitFor('a to hear that b runs 1.0.0', async () => (await viewOf(a, b))?.version === '1.0.0')
    await waitFor('b to see a', async () => (await viewOf(b, a)) != null)

    // what a hears meanwhile shows that time passes and beats get through: a peer written for
    // the test, connected to a only, beats every 300 ms (with no address: nobody dials it);
    // window(n) ends once a has taken in n more of its beats
    const ticker = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(ticker)
    const topic = statusTopic('default')
    ticker.services.pubsub.subscribe(topic)
    await ticker.dial(multiaddr(a.addr))
    await waitFor('the ticker to see a on the status topic', () => ticker.services.pubsub.getSubscribers(topic).some(p => p.toString() === a.peerId))
    const tickerId = { peerId: ticker.peerId.toString() }
    let seq = 0
    const window = async (beats: number): Promise<void> => {
      for (let i = 0; i < beats; i++) {
        const before = (await viewOf(a, tickerId))?.seen
        await ticker.services.pubsub.publish(topic, encodeBeat({ v: 1, seq: ++seq, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [] }))
        await waitFor('a to take in a beat of the ticker', async () => { const seen = (await viewOf(a, tickerId))?.seen; return seen != null && seen !== before }, 30_000, 50)
        await new Promise(resolve => setTimeout(resolve, 300))
      }
    }

    // nothing changes now (b heard of the ticker, a newcomer, and beat once for it): b's last
    // beat stays its last while a takes in a dozen of the ticker's (at 500 ms b would send 7 or more)
    await waitFor('b to settle', async () => {
      const before = (await viewOf(a, b))?.seen
      await window(4)
      return before != null && before === (await viewOf(a, b))?.seen
    }, 60_000)
    const settled = (await viewOf(a, b))?.seen
    await window(12)
    expect((await viewOf(a, b))?.seen).toBe(settled)

    // a newcomer that connects only to b is seen by both, and sees both, long before a minute
    const c = await net.start('c', ['--app', 'kv', '--bootstrap', b.addr])
    await waitFor('c to see a and b', async () => (await viewOf(c, a)) != null && (await viewOf(c, b)) != null)
    await waitFor('a to see c', async () => (await viewOf(a, c)) != null)
  })

  it('a daemon given dialFrom connects from that address (a host with several; the bench\'s per-host uplinks)', async () => {
    net = await TestNet.create()
    const a = await net.start('a', ['--listen', '/ip4/127.0.0.2/tcp/0', '--dial-from', '127.0.0.2'])
    // the config file's key, as the bench gives it
    const config = path.join(net.root, 'b.json')
    await fs.writeFile(config, JSON.stringify({ beatInterval: '1s', minConnections: 3, dialFrom: '127.0.0.3' }))
    const b = await net.start('b', ['--listen', '/ip4/127.0.0.3/tcp/0', '--config', config, '--bootstrap', a.addr])
    expect(a.addr).toMatch(/^\/ip4\/127\.0\.0\.2\/tcp\//)
    await waitFor('a and b to connect', async () => (await a.status()).connections >= 1 && (await b.status()).connections >= 1)
    const port = (p: typeof a): number => Number(p.addr.split('/')[4])
    const accepted = (await establishedTcp()).filter(c => c.local === `127.0.0.2:${port(a)}` || c.local === `127.0.0.3:${port(b)}`)
    expect(accepted.length).toBeGreaterThan(0)
    // without dialFrom the system would pick 127.0.0.1 as the source of a dial to 127.0.0.x
    for (const c of accepted) expect(c.remote.split(':')[0]).toBe(c.local.startsWith('127.0.0.2:') ? '127.0.0.3' : '127.0.0.2')
  })
})
