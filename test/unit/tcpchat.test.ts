/**
 * The raw-TCP demo app of testnet/apps/tcpchat, without a daemon: the v2 stream simulation
 * objects on NDJSON cut anywhere; each version's chat.py as a child process on a free port
 * with a temporary state; and a post relayed by a 1.0.0 app through the daemon's real proxy
 * (CONNECT) to a 2.0.0 app, translated by the SOs in the daemon's worker.
 *
 * Skipped when python3 is missing, except on CI (CI=true), where that fails.
 */
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { AppProxy, StreamSimulations, carry, connectPort, socketByteStream } from '../../src/host/index.js'
import { peerHost } from '../../src/net/index.js'
import type { StreamSimulationObject } from '../../src/shim/index.js'
import { tempDir } from '../helpers.js'

const CHAT = fileURLToPath(new URL('../../testnet/apps/tcpchat/', import.meta.url))
const PYTHON = spawnSync('python3', ['--version']).status === 0
const enc = new TextEncoder()
const dec = new TextDecoder()

describe.runIf(!PYTHON && process.env.CI === 'true')('tcpchat on CI', () => {
  it('needs python3 (.ci/run installs it)', () => { expect.fail('python3 is not on PATH') })
})

async function so (file: string): Promise<StreamSimulationObject> {
  return (await import(pathToFileURL(path.join(CHAT, 'v2', file)).href) as { default: StreamSimulationObject }).default
}

/** `text` cut into chunks of `size` bytes (through multi-byte characters too), through `transform`. */
async function through (transform: (s: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>, text: string, size: number): Promise<string> {
  const bytes = enc.encode(text)
  const source = async function * (): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < bytes.byteLength; i += size) yield bytes.slice(i, i + size)
  }
  const out: Uint8Array[] = []
  for await (const c of transform(source())) out.push(c)
  return dec.decode(Buffer.concat(out))
}

describe('tcpchat: the v2 stream simulation objects', () => {
  it('translate each NDJSON line both ways, however the bytes are cut', async () => {
    const past = await so('past.js')
    const future = await so('future.js')
    expect([past.version, future.version]).toEqual([1, 2])
    const v1 = '{"op":"post","from":"zoë","text":"héllo"}\n{"op":"ask","host":"k51x","request":{"op":"echo","text":"x"}}\nnot json\n'
    const v2 = '{"cmd":"post","author":"zoë","body":"héllo"}\n{"cmd":"ask","host":"k51x","request":{"cmd":"echo","body":"x"}}\nnot json\n'
    for (const size of [1, 3, 7, 1000]) {
      // a v1 peer's requests reaching a v2 node, and a v1 node's requests leaving for a v2 peer
      expect(await through(past.serve({ peer: 'p' }).in, v1, size)).toBe(v2)
      expect(await through(future.call({ peer: 'p' }).out, v1, size)).toBe(v2)
      expect(await through(future.serve({ peer: 'p' }).in, v2, size)).toBe(v1)
      expect(await through(past.call({ peer: 'p' }).out, v2, size)).toBe(v1)
    }
    const reply1 = '{"ok":true,"messages":[{"id":"a","from":"ann","text":"hi"}]}\n{"ok":true,"reply":{"ok":true,"text":"x"}}\n{"ok":true,"id":"b"}'
    const reply2 = '{"ok":true,"messages":[{"id":"a","author":"ann","body":"hi"}]}\n{"ok":true,"reply":{"ok":true,"body":"x"}}\n{"ok":true,"id":"b"}'
    expect(await through(past.serve({ peer: 'p' }).out, reply2, 5)).toBe(reply1)
    expect(await through(past.call({ peer: 'p' }).in, reply1, 5)).toBe(reply2)
    expect(await through(future.serve({ peer: 'p' }).out, reply1, 5)).toBe(reply2)
    expect(await through(future.call({ peer: 'p' }).in, reply2, 5)).toBe(reply1)
  })

  it('refuse a line longer than 16 MiB rather than hold it', async () => {
    const past = await so('past.js')
    const endless = async function * (): AsyncGenerator<Uint8Array> {
      for (;;) yield new Uint8Array(1024 * 1024).fill(0x61)
    }
    await expect((async () => { for await (const c of past.serve({ peer: 'p' }).in(endless())) void c })()).rejects.toThrow(/longer than 16777216 bytes/)
  })
})

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => { resolve(port) })
    })
  })
}

/** One NDJSON connection: send a request, read the reply line. */
class Lines {
  private buffer = ''
  private readonly waiting: Array<() => void> = []
  constructor (readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => { this.buffer += d.toString(); for (const w of this.waiting.splice(0)) w() })
  }

  async ask (request: unknown): Promise<any> {
    this.socket.write(JSON.stringify(request) + '\n')
    while (!this.buffer.includes('\n')) await new Promise<void>(resolve => this.waiting.push(resolve))
    const at = this.buffer.indexOf('\n')
    const line = this.buffer.slice(0, at)
    this.buffer = this.buffer.slice(at + 1)
    return JSON.parse(line)
  }
}

describe.runIf(PYTHON)('tcpchat: the servers', () => {
  const children: ChildProcess[] = []
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGTERM')
    for (const f of cleanup.splice(0)) await f()
  })

  async function run (version: 'v1' | 'v2', state: string, proxy?: string): Promise<{ port: number, connect: () => Promise<Lines> }> {
    const port = await freePort()
    const env: Record<string, string> = { ...process.env as Record<string, string>, UPGOSSIP_PORT: String(port), UPGOSSIP_STATE: state, UPGOSSIP_APP: 'tcpchat' }
    if (proxy != null) env.UPGOSSIP_PROXY = proxy
    else delete env.UPGOSSIP_PROXY
    const child = spawn('python3', ['chat.py'], { cwd: path.join(CHAT, version), env, stdio: ['ignore', 'inherit', 'inherit'] })
    children.push(child)
    const connect = async (): Promise<Lines> => new Lines(await connectPort(port, 1000))
    for (let i = 0; ; i++) {
      try {
        const first = await connect()
        first.socket.destroy()
        break
      } catch (err) {
        if (i > 100) throw err
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
    return { port, connect }
  }

  it('post, list and echo in each version\'s own names; bad lines get an error; the state survives a restart in one format', async () => {
    const state = await tempDir('upgossip-tcpchat-')
    const v1 = await run('v1', state)
    const c1 = await v1.connect()
    const posted = await c1.ask({ op: 'post', from: 'ann', text: 'hi' })
    expect(posted).toMatchObject({ ok: true, id: expect.stringMatching(/^[0-9a-f]{32}$/) })
    expect(await c1.ask({ op: 'list' })).toEqual({ ok: true, messages: [{ id: posted.id, from: 'ann', text: 'hi' }] })
    expect(await c1.ask({ op: 'echo', text: 'x'.repeat(100_000) })).toEqual({ ok: true, text: 'x'.repeat(100_000) })
    expect(await c1.ask({ cmd: 'list' })).toMatchObject({ ok: false, error: expect.stringContaining('unknown op') })
    expect(await c1.ask('nope')).toMatchObject({ ok: false })
    children.pop()?.kill('SIGTERM')
    await new Promise(resolve => setTimeout(resolve, 300))

    // 2.0.0 on the same state directory: the same messages, in protocol 2's names
    const v2 = await run('v2', state)
    const c2 = await v2.connect()
    expect(await c2.ask({ cmd: 'list' })).toEqual({ ok: true, messages: [{ id: posted.id, author: 'ann', body: 'hi' }] })
    expect(await c2.ask({ cmd: 'post', author: 'bob', body: 'yo' })).toMatchObject({ ok: true })
    expect(JSON.parse(await fs.readFile(path.join(state, 'messages.json'), 'utf8'))).toMatchObject({ messages: [{ from: 'ann', text: 'hi' }, { from: 'bob', text: 'yo' }] })
  })

  it('a 1.0.0 app relays a post through the daemon\'s proxy (CONNECT) to a 2.0.0 app, translated in the daemon\'s worker', async () => {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const v2 = await run('v2', await tempDir('upgossip-tcpchat-'))
    // the 1.0.0 node has 2.0.0 staged: its future SO lets it call the 2.0.0 peer in protocol 2
    const sos = new StreamSimulations({ log: () => {} }, { native: 1 })
    cleanup.push(async () => { await sos.close() })
    expect(await sos.load([{ module: path.join(CHAT, 'v2', 'future.js'), version: 2 }])).toEqual([1, 2])
    const connected: string[] = []
    const proxy = new AppProxy({
      selfId: () => self,
      peers: () => [{ id: other, app: 'tcpchat', version: '2.0.0', protocol: 2 }],
      route: async () => ({ self: false, version: 2 }),
      send: async () => { throw new Error('no messages') },
      streams: async () => false,
      exchange: async () => { throw new Error('no streamed exchanges here') },
      exchangeSelf: async () => { throw new Error('no messages') },
      // what the daemon does, less libp2p: the peer's app port, through the SOs
      connect: async peer => {
        connected.push(peer)
        const remote = socketByteStream(await connectPort(v2.port))
        return async client => { await carry(client, remote, { translate: sources => sos.translate('call', 2, peer, sources) }) }
      },
      log: () => {}
    })
    await proxy.start()
    cleanup.push(async () => { await proxy.stop() })
    const v1 = await run('v1', await tempDir('upgossip-tcpchat-'), proxy.url)
    const c1 = await v1.connect()
    const posted = await c1.ask({ op: 'post', from: 'ann', text: 'across versions' })
    const c2 = await v2.connect()
    await expect.poll(async () => (await c2.ask({ cmd: 'list' })).messages, { timeout: 10_000 }).toEqual([{ id: posted.id, author: 'ann', body: 'across versions' }])
    expect(connected).toEqual([other])
    // and the 1.0.0 app asks the 2.0.0 app itself, in its own protocol: the answer comes back in 1.0.0's names
    expect(await c1.ask({ op: 'ask', host: peerHost(other), request: { op: 'list' } })).toEqual({ ok: true, reply: { ok: true, messages: [{ id: posted.id, from: 'ann', text: 'across versions' }] } })
  })
})
