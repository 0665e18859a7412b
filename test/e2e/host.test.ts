/**
 * The app host with real child processes (the compiled host and SDK): an app imports
 * `upgossip/app` without bundling it, serves requests, calls out, reports health, and
 * is restarted when it crashes; requests held during a switch reach the next version.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { AppHost } from '../../dist/host/index.js'
import { tempDir, writeTree } from '../helpers.js'

const hosts: AppHost[] = []
afterEach(async () => {
  await Promise.all(hosts.splice(0).map(async h => { await h.close() }))
})

const ECHO_APP = `
import { connect } from 'upgossip/app'
import fs from 'node:fs'
import path from 'node:path'
const node = await connect()
node.serve(async (req, from) => {
  if (req.op === 'crash') process.exit(3)
  if (req.op === 'call-self') return await node.call(null, { op: 'echo', x: 'inner' })
  if (req.op === 'call-other') return await node.call('peer-other', { op: 'echo', x: 'out' })
  if (req.op === 'peers') return await node.peers()
  if (req.op === 'write') { fs.writeFileSync(path.join(node.stateDir, 'v'), String(req.value)); return 'ok' }
  if (req.op === 'slow') { await new Promise(r => setTimeout(r, req.ms)); return 'slow done' }
  return { echo: req, from, version: node.version, config: node.config, peerId: node.peerId }
})
node.onShutdown(async () => { fs.writeFileSync(path.join(node.stateDir, 'shutdown'), 'clean') })
await node.ready()
`

async function appDir (source: string, version = '1.0.0'): Promise<{ packageDir: string, stateDir: string, root: string }> {
  const root = await tempDir()
  const packageDir = path.join(root, 'pkg')
  await writeTree(packageDir, { 'server.js': source, 'upgossip.json': JSON.stringify({ app: 'kv', version, main: 'server.js', protocol: 1 }) })
  return { packageDir, stateDir: path.join(root, 'state'), root }
}

/** A host whose "network" answers every outgoing call with what it was sent. */
function host (root: string): AppHost {
  const h = new AppHost({
    peerId: 'peer-self',
    config: { color: 'blue' },
    logFile: path.join(root, 'app.log'),
    onRoute: async peer => peer == null || peer === 'peer-self' ? { self: true } : { self: false, version: 1 },
    onSend: async (peer, version, request) => ({ remote: peer, version, request }),
    onPeers: () => ['peer-a', 'peer-b'],
    log: () => {}
  })
  hosts.push(h)
  return h
}

describe('app host', () => {
  it('runs an app that imports upgossip/app, serves, calls out, and drains on stop', async () => {
    const { packageDir, stateDir, root } = await appDir(ECHO_APP)
    const h = host(root)
    const proc = h.launch({ app: 'kv', version: '1.0.0', packageDir, main: 'server.js', stateDir, protocol: 1, simulations: [] })
    await proc.waitReady(10_000)
    h.supervise()
    expect(await h.request('peer-x', { op: 'echo', n: 1 })).toEqual({ echo: { op: 'echo', n: 1 }, from: 'peer-x', version: '1.0.0', config: { color: 'blue' }, peerId: 'peer-self' })
    // a call to itself never leaves the process; a call to another peer goes out through the daemon
    expect(await h.request('peer-x', { op: 'call-self' })).toMatchObject({ echo: { op: 'echo', x: 'inner' }, from: 'peer-self' })
    expect(await h.request('peer-x', { op: 'call-other' })).toEqual({ remote: 'peer-other', version: 1, request: { op: 'echo', x: 'out' } })
    expect(await h.request('peer-x', { op: 'peers' })).toEqual(['peer-a', 'peer-b'])
    expect(await h.request('peer-x', { op: 'write', value: 42 })).toBe('ok')
    await h.stopCurrent()
    expect(await fs.readFile(path.join(stateDir, 'v'), 'utf8')).toBe('42')
    expect(await fs.readFile(path.join(stateDir, 'shutdown'), 'utf8')).toBe('clean')
    expect(await fs.readFile(path.join(root, 'app.log'), 'utf8')).toMatch(/starting kv@1\.0\.0/)
  })

  it('restarts a crashed app with backoff, and declares a crash loop failed', async () => {
    const { packageDir, stateDir, root } = await appDir(ECHO_APP)
    const h = host(root)
    const proc = h.launch({ app: 'kv', version: '1.0.0', packageDir, main: 'server.js', stateDir, protocol: 1, simulations: [] })
    await proc.waitReady(10_000)
    h.supervise()
    const restarted = new Promise(resolve => h.once('restarted', resolve))
    await expect(h.request('x', { op: 'crash' })).rejects.toThrow(/exited before answering/)
    await restarted
    await h.current?.waitReady(10_000)
    expect(await h.request('x', { op: 'echo' })).toMatchObject({ version: '1.0.0' })

    const crashing = await appDir('process.exit(7)\n')
    const h2 = host(crashing.root)
    h2.launch({ app: 'kv', version: '9.9.9', packageDir: crashing.packageDir, main: 'server.js', stateDir: crashing.stateDir, protocol: 1, simulations: [] })
    h2.supervise()
    const reason = await new Promise<string>(resolve => h2.once('failed', resolve))
    expect(reason).toMatch(/crashed 5 times/)
  }, 60_000)

  it('reports an app that never calls ready(), or calls unhealthy()', async () => {
    const silent = await appDir("import { connect } from 'upgossip/app'\nconst node = await connect()\nnode.serve(() => 1)\n")
    const p1 = host(silent.root).launch({ app: 'kv', version: '2.0.0', packageDir: silent.packageDir, main: 'server.js', stateDir: silent.stateDir, protocol: 1, simulations: [] })
    await expect(p1.waitReady(1500)).rejects.toThrow(/did not call ready\(\) within 1500 ms/)
    const sick = await appDir("import { connect } from 'upgossip/app'\nconst node = await connect()\nawait node.ready()\nsetTimeout(() => node.unhealthy('disk on fire'), 200)\n")
    const p2 = host(sick.root).launch({ app: 'kv', version: '2.0.0', packageDir: sick.packageDir, main: 'server.js', stateDir: sick.stateDir, protocol: 1, simulations: [] })
    await p2.waitReady(10_000)
    await expect(p2.stayHealthy(5000)).rejects.toThrow(/disk on fire/)
  })

  it('holds requests during a switch and delivers them to the next version', async () => {
    const v1 = await appDir(ECHO_APP, '1.0.0')
    const v2 = await appDir(ECHO_APP, '2.0.0')
    const h = host(v1.root)
    await h.launch({ app: 'kv', version: '1.0.0', packageDir: v1.packageDir, main: 'server.js', stateDir: v1.stateDir, protocol: 1, simulations: [] }).waitReady(10_000)
    h.hold()
    const during = [h.request('a', { op: 'echo', i: 1 }), h.request('b', { op: 'echo', i: 2 })]
    // requests held during a switch keep an idle rule from holding, whatever its bound
    expect([h.idleFor(0), h.idleFor(5)]).toEqual([0, 0])
    await h.stopCurrent()
    await h.launch({ app: 'kv', version: '2.0.0', packageDir: v2.packageDir, main: 'server.js', stateDir: v2.stateDir, protocol: 1, simulations: [] }).waitReady(10_000)
    h.unhold()
    const answers = await Promise.all(during) as Array<{ version: string }>
    expect(answers.map(a => a.version)).toEqual(['2.0.0', '2.0.0'])
    // holding is bounded by count and by bytes
    const small = new AppHost({ peerId: 'p', config: null, logFile: path.join(v1.root, 'small.log'), onRoute: async () => ({ self: true }), onSend: async () => null, onPeers: () => [], log: () => {}, maxHeld: 2, maxHeldBytes: 1000 })
    hosts.push(small)
    small.hold()
    const a1 = small.request('a', {}, 1, 600)
    await expect(small.request('a', {}, 1, 600)).rejects.toThrow(/too large in total/)
    const a2 = small.request('a', {}, 1, 10)
    await expect(small.request('a', {}, 1, 10)).rejects.toThrow(/too many requests/)
    void a1.catch(() => {})
    void a2.catch(() => {})
    // a request in flight: not idle with none allowed in flight, idle with one allowed
    const slow = h.request('c', { op: 'slow', ms: 50 })
    expect(h.idleFor(0)).toBe(0)
    expect(await slow).toBe('slow done')
    // idle from the end of that request, which is later than the end of the last stretch with more than one in flight
    expect(h.idleFor(0)).toBeLessThan(h.idleFor(1))
  })

  it('survives an app that sends malformed IPC messages, and never speaks versions it made up', async () => {
    const rude = await appDir(`
import { connect } from 'upgossip/app'
const node = await connect()
process.send({ t: 'simulations-loaded', spoken: 5, errors: 5 })
process.send({ t: 'simulations-loaded', spoken: [1, 2, 3, 900], errors: [] })
process.send({ t: 'call-out-result', id: 1, ok: false })
process.send({ t: 'send', id: 2, peer: { not: 'a string' }, version: 'x' })
process.send({ t: 'response', id: 999, ok: true })
process.send('just a string')
process.send(null)
node.serve(async r => ({ fine: true }))
await node.ready()
`)
    const h = host(rude.root)
    const proc = h.launch({ app: 'kv', version: '1.0.0', packageDir: rude.packageDir, main: 'server.js', stateDir: rude.stateDir, protocol: 1, simulations: [] })
    await proc.waitReady(10_000)
    expect(await h.request('x', { op: 'hi' })).toEqual({ fine: true })
    expect(proc.spoken).toEqual([1])
    expect(await fs.readFile(path.join(rude.root, 'app.log'), 'utf8')).toMatch(/impossible set of protocol versions/)
  })
})
