/**
 * Apps whose wire is TCP, without libp2p. CONNECT through the daemon's proxy with the way
 * to the peer stubbed: the proxy's credentials, which targets it refuses and with which
 * status, and the bytes of an accepted connection carried both ways (what the app sent
 * with its CONNECT included, many MiB intact, half-closes passed on). Then a TCP process
 * app in the host (a Node echo service): peers' connections to its port, held during a
 * switch and in flight while open, and its own connections by the route; for the `idle`
 * schedule rule, a connection counts only while bytes move on it.
 */
import { createHash } from 'node:crypto'
import net from 'node:net'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { RemoteNamedError } from '../../src/errors.js'
import { AppHost, AppProxy, TcpProcessApp, carry } from '../../src/host/index.js'
import type { Pipe } from '../../src/host/index.js'
import { appBytesProtocolId, parseAppBytesProtocolId, peerHost } from '../../src/net/index.js'
import type { ByteStream } from '../../src/net/index.js'
import { ChunkQueue } from '../../src/shim/index.js'
import { tempDir, writeTree } from '../helpers.js'

/** A peer's app, in memory: answers every byte it gets through `map`, and ends when its input ends. */
function fakePeer (map: (chunk: Uint8Array) => Uint8Array = c => c): ByteStream & { aborted?: Error } {
  const queue = new ChunkQueue(64 * 1024 * 1024)
  const peer: ByteStream & { aborted?: Error } = {
    source: (async function * () { for await (const c of queue) yield map(c) })(),
    sink: async source => {
      for await (const c of source) queue.push(c)
      queue.end()
    },
    abort: err => {
      peer.aborted = err
      queue.fail(err)
    }
  }
  return peer
}

/** A raw client of the proxy: what it wrote and what it got back, as the connection went. */
class RawClient {
  readonly socket: net.Socket
  received = Buffer.alloc(0)
  ended = false
  /** The proxy ended its side in order (not a reset). */
  finished = false
  private readonly waiters: Array<() => void> = []

  constructor (port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    this.socket.on('data', (d: Buffer) => { this.received = Buffer.concat([this.received, d]); this.wake() })
    this.socket.on('end', () => { this.ended = true; this.finished = true; this.wake() })
    this.socket.on('close', () => { this.ended = true; this.wake() })
    this.socket.on('error', () => {})
  }

  private wake (): void {
    for (const w of this.waiters.splice(0)) w()
  }

  /** Wait until `check` holds on what was received (or the connection ended). */
  async until (check: (received: Buffer) => boolean, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs
    while (!check(this.received)) {
      if (this.ended) throw new Error(`the connection ended after ${this.received.byteLength} bytes: ${this.received.subarray(0, 300).toString()}`)
      if (Date.now() > deadline) throw new Error(`timed out with ${this.received.byteLength} bytes`)
      await new Promise<void>(resolve => { this.waiters.push(resolve); setTimeout(resolve, 100) })
    }
    return this.received
  }

  /** The status line and body of a refusal (the proxy closes after it). */
  async refusal (): Promise<{ status: number, head: string, body: string }> {
    await this.until(() => this.ended, 10_000).catch(() => {})
    while (!this.ended) await new Promise(resolve => setTimeout(resolve, 20))
    const text = this.received.toString()
    const [head = '', body = ''] = text.split('\r\n\r\n')
    return { status: Number(head.split(' ')[1]), head, body }
  }
}

describe('CONNECT through the proxy', () => {
  let proxy: AppProxy | undefined
  afterEach(async () => { await proxy?.stop() })

  async function start (connect: (peer: string) => Promise<Pipe>): Promise<{ port: number, auth: string, self: string, other: string }> {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    proxy = new AppProxy({
      selfId: () => self,
      peers: () => [],
      route: async () => ({ self: true }),
      send: async () => { throw new Error('no messages here') },
      streams: async () => false,
      exchange: async () => { throw new Error('no streamed exchanges here') },
      exchangeSelf: async () => { throw new Error('no messages here') },
      connect,
      log: () => {}
    })
    await proxy.start()
    const url = new URL(proxy.url)
    return { port: Number(url.port), auth: `Basic ${Buffer.from(`${url.username}:${url.password}`).toString('base64')}`, self, other }
  }

  function connectLine (target: string, auth?: string): string {
    return `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth == null ? '' : `Proxy-Authorization: ${auth}\r\n`}\r\n`
  }

  it('wants its credentials, and refuses what is not <peer host>:1 with a status and a reason', async () => {
    const asked: string[] = []
    const { port, auth, other } = await start(async peer => {
      asked.push(peer)
      throw new RemoteNamedError('NoCommonVersionError', 'no common protocol version: this peer speaks 1, the other 3')
    })
    const refused = async (line: string): Promise<{ status: number, head: string, body: string }> => {
      const client = new RawClient(port)
      client.socket.write(line)
      return await client.refusal()
    }
    const host = peerHost(other)

    const anonymous = await refused(connectLine(`${host}:1`))
    expect(anonymous.status).toBe(407)
    expect(anonymous.head.toLowerCase()).toContain('proxy-authenticate: basic realm="upgossip"')
    expect((await refused(connectLine(`${host}:1`, 'Basic d3Jvbmc6d3Jvbmc='))).status).toBe(407)
    expect(await refused(connectLine('example.com:1', auth))).toMatchObject({ status: 404, body: expect.stringContaining('not a peer host') })
    expect(await refused(connectLine('upgossip:1', auth))).toMatchObject({ status: 404 })
    expect(await refused(connectLine(`${host}:80`, auth))).toMatchObject({ status: 400, body: expect.stringContaining(`${host}:1`) })
    expect(await refused(connectLine('no-port', auth))).toMatchObject({ status: 400 })
    expect(asked).toEqual([])

    // the peer's side could not be reached: the error's name and message, and the status it calls for
    expect(await refused(connectLine(`${host.toUpperCase()}:1`, auth))).toMatchObject({ status: 502, body: expect.stringContaining('NoCommonVersionError: no common protocol version') })
    expect(asked).toEqual([other])
  })

  it('maps why a connection could not be made to a status', async () => {
    const errors = [['AppNotRunningError', 503], ['RequestHoldOverflowError', 503], ['WrongWireError', 400], ['PeerUnreachableError', 502], ['SimulationTimeoutError', 504]] as const
    let next = 0
    const { port, auth, other } = await start(async () => { throw new RemoteNamedError(errors[next++]?.[0] ?? 'Error', 'no') })
    for (const [, status] of errors) {
      const client = new RawClient(port)
      client.socket.write(connectLine(`${peerHost(other)}:1`, auth))
      expect((await client.refusal()).status).toBe(status)
    }
  })

  it('answers 200 once the peer\'s side accepted, then carries bytes both ways: what came with the CONNECT first, many MiB intact, the half-close passed on', async () => {
    const peers: Array<ReturnType<typeof fakePeer>> = []
    const { port, auth, other } = await start(async () => {
      const peer = fakePeer()
      peers.push(peer)
      return async client => { await carry(client, peer) }
    })
    const client = new RawClient(port)
    // bytes sent right behind the CONNECT, before its answer, reach the peer too
    client.socket.write(connectLine(`${peerHost(other)}:1`, auth) + 'early:')
    await client.until(r => r.toString().startsWith('HTTP/1.1 200 Connection Established\r\n\r\nearly:'))
    const headLength = 'HTTP/1.1 200 Connection Established\r\n\r\n'.length

    const big = Buffer.alloc(6 * 1024 * 1024)
    for (let i = 0; i < big.byteLength; i += 4) big.writeUInt32BE(i, i)
    client.socket.end(big)
    const got = await client.until(r => r.byteLength >= headLength + 'early:'.length + big.byteLength, 30_000)
    const echoed = got.subarray(headLength + 'early:'.length)
    expect(createHash('sha256').update(echoed).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'))
    // the client ended its side; the peer ended its side in turn, and so did the proxy, in order
    await expect.poll(() => client.ended).toBe(true)
    expect(client.finished).toBe(true)
    expect(peers[0]?.aborted).toBeUndefined()
  })

  it('a client that goes away resets the peer\'s side', async () => {
    const peer = fakePeer()
    const { port, auth, other } = await start(async () => async client => { await carry(client, peer) })
    const client = new RawClient(port)
    client.socket.write(connectLine(`${peerHost(other)}:1`, auth))
    await client.until(r => r.toString().includes('\r\n\r\n'))
    client.socket.resetAndDestroy()
    await expect.poll(() => peer.aborted).toBeDefined()
  })
})

describe('byte-stream protocol ids', () => {
  it('are /upgossip/app-tcp/<app>/<protocol>, parsed strictly', () => {
    expect(appBytesProtocolId('chat', 2)).toBe('/upgossip/app-tcp/chat/2')
    expect(parseAppBytesProtocolId('/upgossip/app-tcp/chat/2')).toEqual({ app: 'chat', version: 2 })
    for (const bad of ['/upgossip/app/chat/2', '/upgossip/app-tcp/Chat/2', '/upgossip/app-tcp/chat/0', '/upgossip/app-tcp/chat/x']) expect(parseAppBytesProtocolId(bad)).toBeUndefined()
    expect(() => appBytesProtocolId('Bad App', 1)).toThrow()
  })
})

/** A peer's side in memory: sends `parts`, then ends (or waits for `hold`); collects what comes back. */
function memoryPeer (parts: string[], hold?: Promise<void>): ByteStream & { received: () => string, aborted?: Error } {
  const got: Uint8Array[] = []
  const peer: ByteStream & { received: () => string, aborted?: Error } = {
    source: (async function * () {
      for (const p of parts) yield new TextEncoder().encode(p)
      await hold
    })(),
    sink: async source => { for await (const c of source) got.push(c) },
    abort: err => { peer.aborted = err },
    received: () => Buffer.concat(got).toString()
  }
  return peer
}

describe('a TCP process app in the host', () => {
  let host: AppHost | undefined
  afterEach(async () => { await host?.close() })

  it('takes peers\' connections on its port (held during a switch, in flight while open), refuses what it cannot take, and connects out by the route', async () => {
    const dir = await tempDir('upgossip-tcp-app-')
    // the app: an echo service on 127.0.0.1:$UPGOSSIP_PORT, in Node so that the test needs no Python
    await writeTree(dir, { 'pkg/echo.mjs': "import net from 'node:net'\nnet.createServer({ allowHalfOpen: true }, s => s.pipe(s)).listen(Number(process.env.UPGOSSIP_PORT), '127.0.0.1')\n" })
    const opened: Array<{ peer: string, version: number }> = []
    const remote = memoryPeer(['from the peer'])
    host = new AppHost({
      peerId: 'self',
      config: null,
      logFile: path.join(dir, 'app.log'),
      onRoute: async peer => peer === 'self' ? { self: true } : { self: false, version: 1 },
      onSend: async () => { throw new Error('no messages') },
      onPeers: () => [],
      log: () => {},
      proxyUrl: () => 'http://upgossip:x@127.0.0.1:1',
      onOpenBytes: async (peer, version) => { opened.push({ peer, version }); return remote },
      maxHoldMs: 5000
    })
    const proc = host.launch({ app: 'echo', version: '1.0.0', packageDir: path.join(dir, 'pkg'), stateDir: path.join(dir, 'state'), protocol: 1, simulations: [], run: { command: [process.execPath, 'echo.mjs'], wire: 'tcp' } })
    expect(proc).toBeInstanceOf(TcpProcessApp)
    await proc.waitReady(10_000)

    // a peer's connection in the app's own version: its bytes to the port and back
    const peer = memoryPeer(['hello ', 'app'])
    await (await host.acceptConnection('peer-x', 1))(peer)
    expect(peer.received()).toBe('hello app')
    await expect(host.acceptConnection('peer-x', 2)).rejects.toMatchObject({ name: 'UnsupportedVersionError' })
    await expect(host.request('peer-x', { method: 'GET', path: '/' })).rejects.toThrow(/speaks TCP/)

    // open: in flight (a switch drains it); during a switch a new one waits for the next version
    let release = (): void => {}
    const open = memoryPeer(['x'], new Promise<void>(resolve => { release = resolve }))
    const carried = (await host.acceptConnection('peer-y'))(open)
    await expect.poll(() => proc.inFlight).toBe(1)
    host.hold()
    let accepted = false
    const held = host.acceptConnection('peer-z').then(pipe => { accepted = true; return pipe })
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(accepted).toBe(false)
    host.unhold()
    const late = memoryPeer(['late'])
    await (await held)(late)
    expect(late.received()).toBe('late')
    release()
    await carried
    expect(open.received()).toBe('x')
    expect(proc.inFlight).toBe(0)

    // the app's own connections: to a peer by the route, to itself straight to its port
    const client = memoryPeer(['to the peer'])
    await (await host.connectOut('peer-w'))(client)
    expect(opened).toEqual([{ peer: 'peer-w', version: 1 }])
    expect(client.received()).toBe('from the peer')
    const itself = memoryPeer(['me'])
    await (await host.connectOut('self'))(itself)
    expect(itself.received()).toBe('me')
    expect(opened).toHaveLength(1)
  })
})

describe('the idle rule for a TCP process app', () => {
  let host: AppHost | undefined
  afterEach(async () => { await host?.close() })

  it('counts a connection only while bytes move on it: open and quiet is idle, bytes make the app busy at that time; a connection held during a switch is not idle', async () => {
    const dir = await tempDir('upgossip-tcp-idle-')
    await writeTree(dir, { 'pkg/echo.mjs': "import net from 'node:net'\nnet.createServer({ allowHalfOpen: true }, s => s.pipe(s)).listen(Number(process.env.UPGOSSIP_PORT), '127.0.0.1')\n" })
    let now = 1_000_000
    host = new AppHost({
      peerId: 'self',
      config: null,
      logFile: path.join(dir, 'app.log'),
      onRoute: async () => ({ self: true }),
      onSend: async () => { throw new Error('no messages') },
      onPeers: () => [],
      log: () => {},
      clock: () => now,
      proxyUrl: () => 'http://upgossip:x@127.0.0.1:1',
      onOpenBytes: async () => { throw new Error('no peers') },
      maxHoldMs: 5000
    })
    const proc = host.launch({ app: 'echo', version: '1.0.0', packageDir: path.join(dir, 'pkg'), stateDir: path.join(dir, 'state'), protocol: 1, simulations: [], run: { command: [process.execPath, 'echo.mjs'], wire: 'tcp' } })
    await proc.waitReady(10_000)
    now += 10_000
    expect(host.idleFor(0)).toBe(10_000)

    // a peer's connection says hello, then stays open and says nothing
    let release = (): void => {}
    const open = memoryPeer(['hello'], new Promise<void>(resolve => { release = resolve }))
    const carried = (await host.acceptConnection('peer-y'))(open)
    await expect.poll(() => open.received()).toBe('hello')
    expect(host.idleFor(0)).toBe(0)
    now += 6000
    // still in flight (a switch drains it), yet quiet for 6 s
    expect(proc.inFlight).toBe(1)
    expect(host.idleFor(0)).toBe(6000)
    // one connection moving bytes is within maxInFlight 1
    const other = memoryPeer(['busy'])
    await (await host.acceptConnection('peer-z'))(other)
    expect(host.idleFor(0)).toBe(0)
    expect(host.idleFor(1)).toBe(6000)

    // a connection waiting for the switch to end is about to move bytes: not idle
    host.hold()
    const held = host.acceptConnection('peer-w')
    await new Promise(resolve => setTimeout(resolve, 50))
    now += 10_000
    expect(host.idleFor(0)).toBe(0)
    host.unhold()
    const late = memoryPeer([])
    await (await held)(late)
    expect(host.idleFor(0)).toBe(10_000)

    release()
    await carried
    expect(proc.inFlight).toBe(0)
  })
})
