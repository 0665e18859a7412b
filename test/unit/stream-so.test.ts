/**
 * Stream simulation objects (wire "tcp"): the chain (which SO's `in` and `out` run, in
 * which order, for serve and call, across several versions) and the daemon's worker that
 * runs them (loading, translation, bounded buffers, an SO that throws or loops).
 */
import { createHash } from 'node:crypto'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { StreamSimulations } from '../../src/host/index.js'
import { ChunkQueue, StreamSimulationChain, StreamSimulationError, asStreamSimulationObject } from '../../src/shim/index.js'
import type { ByteTransform, StreamSimulationObject } from '../../src/shim/index.js'
import { tempDir, writeTree } from '../helpers.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

async function * from (...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield enc.encode(p)
}

async function text (source: AsyncIterable<Uint8Array>): Promise<string> {
  let out = ''
  for await (const chunk of source) out += dec.decode(chunk)
  return out
}

/** A transform that appends `|tag` to everything that passes. */
function tag (name: string): ByteTransform {
  return async function * (source) {
    for await (const chunk of source) yield enc.encode(`${dec.decode(chunk)}|${name}`)
  }
}

/** An SO of `version` whose every transform leaves its mark. */
function marker (version: number): StreamSimulationObject {
  return {
    version,
    serve: () => ({ in: tag(`in${version}`), out: tag(`out${version}`) }),
    call: () => ({ in: tag(`cin${version}`), out: tag(`cout${version}`) })
  }
}

describe('stream simulation chains', () => {
  it('run each SO between the connection\'s version and the node\'s own, in order, both ways', async () => {
    const chain = new StreamSimulationChain(3)
    for (const v of [1, 2, 4]) chain.add(marker(v))
    expect(chain.spoken()).toEqual([1, 2, 3, 4])

    // a v1 peer connected to this v3 node: v1's in, then v2's; on the way out v2's, then v1's
    const served = chain.serve(1, { peer: 'p' })
    expect(await text(served.in(from('x')))).toBe('x|in1|in2')
    expect(await text(served.out(from('y')))).toBe('y|out2|out1')
    // this v3 node connected to a peer in v1: v2's out, then v1's; the answers v1's in, then v2's
    const called = chain.call(1, { peer: 'p' })
    expect(await text(called.out(from('x')))).toBe('x|cout2|cout1')
    expect(await text(called.in(from('y')))).toBe('y|cin1|cin2')
    // a future SO: one hop up
    expect(await text(chain.serve(4, { peer: 'p' }).in(from('z')))).toBe('z|in4')
    expect(await text(chain.call(4, { peer: 'p' }).out(from('z')))).toBe('z|cout4')
    // the same version: untouched
    expect(await text(chain.serve(3, { peer: 'p' }).in(from('same')))).toBe('same')
  })

  it('a gap ends the chain; versions it does not reach and SOs of the wrong shape are named errors', async () => {
    const chain = new StreamSimulationChain(2)
    chain.add(marker(4))
    expect(chain.spoken()).toEqual([2])
    expect(() => chain.serve(4, { peer: 'p' })).toThrow(expect.objectContaining({ name: 'UnsupportedVersionError' }))
    expect(() => chain.add(marker(2))).toThrow(StreamSimulationError)
    expect(() => asStreamSimulationObject({ version: 1, serve: 'no' }, 'so.js')).toThrow(expect.objectContaining({ name: 'SimulationShapeError' }))

    chain.add({ version: 1, serve: () => ({ in: async function * () { yield 'a string' as unknown as Uint8Array } as ByteTransform, out: tag('o') }), call: () => ({}) as never })
    await expect(text(chain.serve(1, { peer: 'p' }).in(from('x')))).rejects.toMatchObject({ name: 'SimulationShapeError', message: expect.stringMatching(/yielded a string/) })
    expect(() => chain.call(1, { peer: 'p' })).toThrow(/must return \{ in, out \}/)
  })

  it('a chunk queue gives its chunks in order, credits each taken, and fails rather than grow past its bound', async () => {
    const taken: number[] = []
    const queue = new ChunkQueue(10, n => taken.push(n))
    queue.push(enc.encode('abc'))
    queue.push(enc.encode('def'))
    queue.end()
    expect(await text(queue)).toBe('abcdef')
    expect(taken).toEqual([3, 3])
    const over = new ChunkQueue(4)
    over.push(enc.encode('12345'))
    await expect(text(over)).rejects.toThrow(/more than 4 bytes/)
  })
})

/** SO modules on disk, as a package ships them. */
const MODULES = {
  // lines of v1 "name=value" are v2 "value:name"; each direction translated line by line
  'lines.js': `export const enc = new TextEncoder()
export const dec = new TextDecoder()
export function lines (map) {
  return async function * (source) {
    let rest = ''
    for await (const chunk of source) {
      rest += dec.decode(chunk, { stream: true })
      const parts = rest.split('\\n')
      rest = parts.pop()
      if (parts.length > 0) yield enc.encode(parts.map(map).join('\\n') + '\\n')
    }
    if (rest !== '') yield enc.encode(map(rest))
  }
}
export const toV2 = line => { const [a, b] = line.split('='); return b + ':' + a }
export const toV1 = line => { const [b, a] = line.split(':'); return a + '=' + b }
`,
  'past.js': `import { lines, toV1, toV2 } from './lines.js'
export default {
  version: 1,
  serve: () => ({ in: lines(toV2), out: lines(toV1) }),
  call: () => ({ out: lines(toV1), in: lines(toV2) })
}
`,
  'identity.js': `export default { version: 1, serve: () => ({ in: s => s, out: s => s }), call: () => ({ in: s => s, out: s => s }) }
`,
  'thrower.js': `export default { version: 1, serve: () => ({ in: async function * (s) { for await (const c of s) throw new Error('cannot read that') }, out: s => s }), call: () => ({ in: s => s, out: s => s }) }
`,
  'looper.js': `export default { version: 1, serve: () => ({ in: async function * (s) { for await (const c of s) { if (new TextDecoder().decode(c).includes('loop')) for (;;) {} ; yield c } }, out: s => s }), call: () => ({ in: s => s, out: s => s }) }
`,
  'wrong.js': `export default { version: 7, serve: () => ({}), call: () => ({}) }
`
}

describe('stream simulation objects in the daemon\'s worker', () => {
  let sos: StreamSimulations | undefined
  afterEach(async () => { await sos?.close() })

  async function load (modules: string[], init: Partial<ConstructorParameters<typeof StreamSimulations>[1]> = {}): Promise<{ sos: StreamSimulations, log: string[], dir: string }> {
    const dir = await tempDir('upgossip-stream-so-')
    await writeTree(dir, MODULES)
    const log: string[] = []
    sos = new StreamSimulations({ log: line => log.push(line) }, { native: 2, ...init })
    await sos.load(modules.map(m => ({ module: path.join(dir, m), version: 1 })))
    return { sos, log, dir }
  }

  it('loads the SOs, skips one of another version (named in the log), and translates a connection both ways', async () => {
    const { sos, log } = await load(['wrong.js', 'past.js'])
    expect(sos.spoken).toEqual([1, 2])
    expect(log.join('\n')).toMatch(/simulation object not loaded: .*wrong\.js simulates version 7, expected 1/)

    // a v1 peer connected: its lines reach the v2 app translated, and the app's answers go back as v1
    const served = sos.translate('serve', 1, 'peer', { in: from('a=1\nb=', '2\n'), out: from('ok:3\n') })
    const [toApp, toPeer] = await Promise.all([text(served.in), text(served.out)])
    expect(toApp).toBe('1:a\n2:b\n')
    expect(toPeer).toBe('3=ok\n')
    // this v2 app connected to a v1 peer
    const called = sos.translate('call', 1, 'peer', { in: from('x=9\n'), out: from('9:x\n') })
    expect(await Promise.all([text(called.in), text(called.out)])).toEqual(['9:x\n', 'x=9\n'])
    expect(() => sos.translate('serve', 3, 'peer', { in: from(), out: from() })).toThrow(expect.objectContaining({ name: 'UnsupportedVersionError' }))
  })

  it('passes many MiB intact, and reads no further ahead than its windows while nobody reads the output', async () => {
    const { sos } = await load(['identity.js'], { window: 64 * 1024 })
    const chunk = new Uint8Array(100_000).map((_, i) => (i * 7) % 251)
    const total = 8 * 1024 * 1024
    const source = async function * (): AsyncGenerator<Uint8Array> {
      for (let sent = 0; sent < total; sent += chunk.byteLength) yield chunk.subarray(0, Math.min(chunk.byteLength, total - sent))
    }
    const wanted = createHash('sha256')
    for await (const c of source()) wanted.update(c)
    const got = createHash('sha256')
    let size = 0
    const t = sos.translate('serve', 1, 'peer', { in: source(), out: from() })
    await Promise.all([(async () => { for await (const c of t.in) { got.update(c); size += c.byteLength } })(), text(t.out)])
    expect(size).toBe(total)
    expect(got.digest('hex')).toBe(wanted.digest('hex'))

    // nobody reads: the source is pulled only as far as the windows on both sides of the worker (and a chunk or two in flight)
    let pulled = 0
    const endless = async function * (): AsyncGenerator<Uint8Array> {
      for (;;) {
        pulled += chunk.byteLength
        yield chunk
      }
    }
    const stalled = sos.translate('serve', 1, 'peer', { in: endless(), out: from() })
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(pulled).toBeLessThan(2 * 64 * 1024 + 4 * 100_000)
    stalled.abort(new Error('done'))
  })

  it('an SO that throws fails its connection only, named in the log', async () => {
    const { sos, log } = await load(['thrower.js'])
    const t = sos.translate('serve', 1, 'peer-x', { in: from('x'), out: from() })
    await expect(text(t.in)).rejects.toThrow(/cannot read that/)
    expect(log.join('\n')).toMatch(/connection with peer-x failed in the stream simulation objects: .*cannot read that/)
    expect(sos.spoken).toEqual([1, 2])
  })

  it('an SO that loops is stopped by the watchdog, its connections cut; the next connection gets a fresh worker', async () => {
    const { sos, log } = await load(['looper.js'], { watchdogMs: 1000 })
    const stuck = sos.translate('serve', 1, 'peer', { in: from('loop'), out: (async function * () { await new Promise(resolve => setTimeout(resolve, 5000)) })() })
    const started = Date.now()
    await expect(text(stuck.in)).rejects.toMatchObject({ name: 'SimulationTimeoutError' })
    expect(Date.now() - started).toBeLessThan(8000)
    expect(log.join('\n')).toMatch(/blocked its worker for more than 1000 ms .*; 1 connection\(s\) failed/)
    const fine = sos.translate('serve', 1, 'peer', { in: from('fine'), out: from() })
    expect(await text(fine.in)).toBe('fine')
  })
})
