/**
 * Process apps with `wire: "tcp"` on real daemons: the demo app testnet/apps/tcpchat (a
 * Python NDJSON service, standard library only) reached through `CONNECT <peer host>:1`
 * on the daemons' proxies — by the test, speaking as an app would, and by the Python apps
 * themselves when they relay a post. Same-version connections are carried untranslated
 * (several MiB intact; a client that half-closes its side still reads the answer); once 1.0.0 and 2.0.0 peers are mixed, the stream simulation objects
 * of 2.0.0 translate each line, both ways, in the daemons. An app of another class reaches
 * tcpchat the same way, in the protocol its manifest's `calls` names.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { peerHost } from '../../src/net/index.js'
import { hasPython, requirePythonInCi } from './support/process-apps.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let testnet: TestNet | undefined

afterEach(async () => {
  await testnet?.close()
  testnet = undefined
})

requirePythonInCi('tcp-app.test.ts')

const CHAT = fileURLToPath(new URL('../../testnet/apps/tcpchat/', import.meta.url))

/** A version of the demo as package files, its manifest changed by `manifest`. */
async function chat (version: 'v1' | 'v2', manifest: Record<string, unknown> = {}): Promise<Record<string, string>> {
  const dir = path.join(CHAT, version)
  const files: Record<string, string> = {}
  for (const name of await fs.readdir(dir)) files[name] = await fs.readFile(path.join(dir, name), 'utf8')
  files['upgossip.json'] = JSON.stringify({ ...JSON.parse(files['upgossip.json'] ?? '{}') as object, ...manifest })
  return files
}

/** A connection opened as an app opens one: `CONNECT host:1` on the proxy, with its credentials (or none). */
class Tunnel {
  private buffer = Buffer.alloc(0)
  private ended = false
  /** The other side ended its writing side in order (an orderly end, not a reset). */
  private finished = false
  private readonly waiting: Array<() => void> = []

  private constructor (readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => { this.buffer = Buffer.concat([this.buffer, d]); this.wake() })
    socket.on('end', () => { this.finished = true })
    socket.on('close', () => { this.ended = true; this.wake() })
    socket.on('error', () => {})
  }

  private wake (): void {
    for (const w of this.waiting.splice(0)) w()
  }

  private async until (check: () => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (this.ended) throw new Error(`the connection closed; received: ${this.buffer.subarray(0, 300).toString()}`)
      if (Date.now() > deadline) throw new Error(`timed out with ${this.buffer.byteLength} bytes received`)
      await new Promise<void>(resolve => { this.waiting.push(resolve); setTimeout(resolve, 200) })
    }
  }

  /** Open it; resolves with the tunnel and the proxy's status line (the tunnel is usable when it is 200). */
  static async open (proxyUrl: string, host: string, credentials = true): Promise<{ tunnel: Tunnel, status: number, answer: string }> {
    const proxy = new URL(proxyUrl)
    const socket = net.connect({ host: proxy.hostname, port: Number(proxy.port) })
    const tunnel = new Tunnel(socket)
    const auth = Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')
    socket.write(`CONNECT ${host}:1 HTTP/1.1\r\nHost: ${host}:1\r\n${credentials ? `Proxy-Authorization: Basic ${auth}\r\n` : ''}\r\n`)
    await tunnel.until(() => tunnel.buffer.includes('\r\n\r\n') || tunnel.ended)
    const end = tunnel.buffer.indexOf('\r\n\r\n')
    const head = tunnel.buffer.subarray(0, end).toString()
    tunnel.buffer = tunnel.buffer.subarray(end + 4)
    const status = Number(head.split(' ')[1])
    if (status !== 200) await tunnel.until(() => tunnel.ended).catch(() => {})
    return { tunnel, status, answer: `${head}\n${tunnel.buffer.toString()}` }
  }

  /** One NDJSON request, one reply. */
  async ask (request: unknown): Promise<any> {
    this.socket.write(JSON.stringify(request) + '\n')
    await this.until(() => this.buffer.includes(0x0a), 120_000)
    const at = this.buffer.indexOf(0x0a)
    const line = this.buffer.subarray(0, at).toString()
    this.buffer = this.buffer.subarray(at + 1)
    return JSON.parse(line)
  }

  /**
   * One request, then a half-close of this side (shutdown(SHUT_WR), as `nc -N` does), then
   * everything the other side sends until it closes; resolves with the replies, and whether
   * the connection ended in order.
   */
  async askAndHalfClose (request: unknown): Promise<{ replies: any[], orderly: boolean }> {
    this.socket.end(JSON.stringify(request) + '\n')
    await this.until(() => this.ended, 120_000)
    const replies = this.buffer.toString().split('\n').filter(line => line !== '').map(line => JSON.parse(line))
    return { replies, orderly: this.finished }
  }

  close (): void {
    this.socket.end()
  }
}

/** A GET through the proxy, as an HTTP client configured with it sends one. */
async function fetchViaProxy (proxyUrl: string, url: string): Promise<string> {
  const proxy = new URL(proxyUrl)
  const auth = Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: proxy.hostname, port: proxy.port, path: url, headers: { 'proxy-authorization': `Basic ${auth}` }, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve(Buffer.concat(chunks).toString()) })
    })
    req.on('error', reject)
    req.end()
  })
}

function proxyOf (peer: Peer): string {
  return (peer.control as unknown as { proxy: string }).proxy
}

/** One request through `from`'s proxy to the app on `to`, on a connection of its own. */
async function ask (from: Peer, to: Peer, request: unknown): Promise<any> {
  const { tunnel, status, answer } = await Tunnel.open(proxyOf(from), peerHost(to.peerId))
  if (status !== 200) throw new Error(`CONNECT answered ${answer}`)
  try {
    return await tunnel.ask(request)
  } finally {
    tunnel.close()
  }
}

async function appBytes (peer: Peer, version: number): Promise<number> {
  return await peer.metric('upgossip_bytes_total', { protocol: `/upgossip/app-tcp/tcpchat/${version}` })
}

describe.skipIf(!hasPython)('process apps with wire "tcp"', () => {
  it('carry NDJSON through CONNECT between peers: untranslated within a version (several MiB intact), translated by the stream SOs between 1.0.0 and 2.0.0', async () => {
    testnet = await TestNet.create()
    // the test network trusts its key for the demo app too
    await fs.writeFile(testnet.trustFile, JSON.stringify({ apps: { kv: { publishers: [testnet.key.id], threshold: 1 }, tcpchat: { publishers: [testnet.key.id], threshold: 1 } } }))
    const v1 = await testnet.releaseFiles(await chat('v1'))
    const a = await testnet.start('a', ['--install', v1.file])
    const b = await testnet.start('b', ['--app', 'tcpchat', '--bootstrap', a.addr])
    for (const p of [a, b]) await p.waitVersion('1.0.0')
    expect((await a.status()).process?.port).toBeGreaterThan(0)

    // what the proxy refuses, on a real daemon
    expect((await Tunnel.open(proxyOf(a), peerHost(b.peerId), false)).status).toBe(407)
    expect((await Tunnel.open(proxyOf(a), 'example.com')).status).toBe(404)

    // 1.0.0 ↔ 1.0.0: a post to b through a's proxy, and b's list
    const posted = await waitFor('b to accept a connection from a', async () => await ask(a, b, { op: 'post', from: 'ann', text: 'hello b' }))
    expect(posted).toMatchObject({ ok: true })
    expect((await ask(a, b, { op: 'list' })).messages).toEqual([{ id: posted.id, from: 'ann', text: 'hello b' }])
    // a's own app, reached through its own host (never through libp2p), relays the post itself: CONNECT from Python
    const own = await ask(a, a, { op: 'post', from: 'ann', text: 'from a' })
    await waitFor('a\'s app to relay its post to b', async () => (await ask(b, b, { op: 'list' })).messages.some((m: { id: string }) => m.id === own.id))

    // a client that half-closes its side after its request still reads the answer, and then an orderly end
    const halfClosed = await Tunnel.open(proxyOf(a), peerHost(b.peerId))
    expect(halfClosed.status).toBe(200)
    expect(await halfClosed.tunnel.askAndHalfClose({ op: 'echo', text: 'after my half-close' })).toEqual({ replies: [{ ok: true, text: 'after my half-close' }], orderly: true })

    // several MiB on one connection, both ways, intact and untranslated
    const big = createHash('sha256').update('seed').digest('hex').repeat(6 * 1024 * 1024 / 64)
    const before = await appBytes(a, 1)
    const echoed = await ask(a, b, { op: 'echo', text: big })
    expect(echoed.text.length).toBe(big.length)
    expect(echoed.text === big).toBe(true)
    expect(await appBytes(a, 1) - before).toBeGreaterThan(2 * big.length)
    expect(await appBytes(a, 2)).toBe(0)

    // 2.0.0 renames the protocol's fields; a and b stage it (its future SO) and wait for approval; c runs it
    const v2 = await testnet.releaseFiles(await chat('v2', { schedule: [{ rule: 'approve' }] }))
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b]) await p.waitStaged(v2.id)
    const c = await testnet.start('c', ['--install', v2.file, '--bootstrap', a.addr])
    await c.waitVersion('2.0.0')

    // a 1.0.0 app (the test, through a's proxy) talks to c's 2.0.0 app in protocol 1's names
    const mixed = await waitFor('c to accept a connection from a', async () => {
      const answer = await ask(a, c, { op: 'post', from: 'bob', text: 'mixed' })
      return answer?.ok === true ? answer : undefined
    }, 60_000)
    expect((await ask(a, c, { op: 'list' })).messages).toContainEqual({ id: mixed.id, from: 'bob', text: 'mixed' })
    // c's 2.0.0 app reads a in protocol 2's names
    expect((await ask(c, a, { cmd: 'list' })).messages).toContainEqual({ id: own.id, author: 'ann', body: 'from a' })
    // c's own Python app relays its post to the 1.0.0 peers it knows of, which read it in their names
    await waitFor('c\'s app to see a and b', async () => {
      const listed = JSON.parse(await fetchViaProxy(proxyOf(c), 'http://upgossip/peers')) as { peers: Array<{ id: string, app: string }> }
      return [a, b].every(p => listed.peers.some(l => l.id === p.peerId && l.app === 'tcpchat'))
    })
    const fromC = await ask(c, c, { cmd: 'post', author: 'cy', body: 'from c' })
    for (const p of [a, b]) {
      await waitFor(`c's post to reach ${p.name}`, async () => (await ask(p, p, { op: 'list' })).messages.some((m: { id: string, from: string, text: string }) => m.id === fromC.id && m.from === 'cy' && m.text === 'from c'))
    }
    // MiB through the translation too, line by line
    const large = big.slice(0, 3 * 1024 * 1024)
    expect((await ask(c, a, { cmd: 'echo', body: large })).body === large).toBe(true)
    expect(await appBytes(a, 2)).toBeGreaterThan(2 * large.length)

    // two 1.0.0 peers still talk 1.0.0, untranslated, though both speak 2 now
    const [one, two] = [await appBytes(a, 1), await appBytes(a, 2)]
    expect((await ask(a, b, { op: 'echo', text: 'same version' })).text).toBe('same version')
    expect(await appBytes(a, 1)).toBeGreaterThan(one)
    expect(await appBytes(a, 2)).toBe(two)

    // a switches to 2.0.0: a connection open across the switch holds the drain (10 s at most) and is then cut;
    // a's state comes along, and a serves c untranslated and b through 2.0.0's past SO
    const open = await Tunnel.open(proxyOf(c), peerHost(a.peerId))
    expect((await open.tunnel.ask({ cmd: 'echo', body: 'before the switch' })).body).toBe('before the switch')
    expect((await runCli(['approve', 'tcpchat@2.0.0', '--data', a.dataDir])).code).toBe(0)
    await a.waitVersion('2.0.0', 90_000)
    await expect(open.tunnel.ask({ cmd: 'echo', body: 'after' })).rejects.toThrow(/closed/)
    expect((await ask(c, a, { cmd: 'list' })).messages).toContainEqual({ id: own.id, author: 'ann', body: 'from a' })
    expect((await ask(b, a, { op: 'list' })).messages).toContainEqual({ id: fromC.id, from: 'cy', text: 'from c' })
  })

  it('an app of another class reaches tcpchat through CONNECT in the protocol its calls name, translated on the callee\'s side', async () => {
    testnet = await TestNet.create()
    await fs.writeFile(testnet.trustFile, JSON.stringify({ apps: { tcpchat: { publishers: [testnet.key.id], threshold: 1 }, lobby: { publishers: [testnet.key.id], threshold: 1 } } }))
    // tcpchat runs 2.0.0 (protocol 2, field names renamed); lobby is 1.0.0's program as a class of its own that calls tcpchat in 1
    const chat2 = await testnet.releaseFiles(await chat('v2'))
    const lobby = await testnet.releaseFiles(await chat('v1', { app: 'lobby', calls: { tcpchat: 1 } }))
    const a = await testnet.start('a', ['--install', chat2.file])
    const b = await testnet.start('b', ['--install', lobby.file, '--bootstrap', a.addr])
    for (const p of [a, b]) await p.waitVersion(p === a ? '2.0.0' : '1.0.0')
    await waitFor('b to see a runs tcpchat', async () => (await b.status()).network.some(p => p.peerId === a.peerId && p.app === 'tcpchat'))

    // the test speaks as lobby's app through b's proxy: protocol 1's names, a's past SO translates
    const posted = await waitFor('a to accept a connection from lobby', async () => {
      const answer = await ask(b, a, { op: 'post', from: 'lou', text: 'across classes' })
      return answer?.ok === true ? answer : undefined
    })
    expect((await ask(b, a, { op: 'list' })).messages).toContainEqual({ id: posted.id, from: 'lou', text: 'across classes' })
    expect((await ask(a, a, { cmd: 'list' })).messages).toContainEqual({ id: posted.id, author: 'lou', body: 'across classes' })
    expect(await appBytes(a, 1)).toBeGreaterThan(0)
    // lobby's own Python program asks a, opening CONNECT itself
    const asked = await ask(b, b, { op: 'ask', host: peerHost(a.peerId), request: { op: 'echo', text: 'from the lobby app' } })
    expect(asked).toEqual({ ok: true, reply: { ok: true, text: 'from the lobby app' } })
    // a's tcpchat 2.0.0 names no protocol for lobby: once a knows b runs lobby, its CONNECT to b is refused with the reason
    await waitFor('a to see b runs lobby', async () => (await a.status()).network.some(p => p.peerId === b.peerId && p.app === 'lobby'))
    const refused = await Tunnel.open(proxyOf(a), peerHost(b.peerId))
    expect(refused.status).toBe(502)
    expect(refused.answer).toMatch(/UndeclaredCallError|names no protocol for calls to lobby/)
  })
})
