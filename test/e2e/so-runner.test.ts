/**
 * The daemon's runner of a process app's simulation objects (the compiled one, in its
 * worker thread): a chain of two hops both ways, an SO that throws (that request fails,
 * the next works), and one that loops (its worker is ended and started again; the daemon's
 * thread never stalls).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers.js'

interface Runner {
  spoken: number[]
  load: (specs: Array<{ module: string, version: number }>) => Promise<number[]>
  serve: (version: number, request: unknown, local: (r: unknown) => Promise<unknown>) => Promise<unknown>
  call: (target: number, request: unknown, remote: (r: unknown) => Promise<unknown>) => Promise<unknown>
  stop: () => Promise<void>
}

const DIST = pathToFileURL(path.resolve(import.meta.dirname, '../../dist/host/so-runner.js')).href

async function runner (native: number, timeoutMs = 1000): Promise<{ runner: Runner, logs: string[] }> {
  const { SimulationRunner } = await import(DIST) as { SimulationRunner: new (components: { log: (m: string) => void }, init: { native: number, timeoutMs: number }) => Runner }
  const logs: string[] = []
  return { runner: new SimulationRunner({ log: m => { logs.push(m) } }, { native, timeoutMs }), logs }
}

/** An SO for `version` that tags what passes through it. */
function so (version: number, body = ''): string {
  return body !== ''
    ? `export default { version: ${version}, ${body} }\n`
    : `export default {
  version: ${version},
  async serve (req, local) { const res = await local({ ...req, path: req.path + '>${version}' }); return { ...res, headers: { ...res.headers, via: (res.headers.via ?? '') + '<${version}' } } },
  async call (req, remote) { const res = await remote({ ...req, path: req.path + '>${version}' }); return { ...res, headers: { ...res.headers, via: (res.headers.via ?? '') + '<${version}' } } }
}\n`
}

describe('simulation objects of process apps, run by the daemon', () => {
  it('serve and call through a chain of two hops, with bytes intact', async () => {
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'p2.mjs'), so(2))
    await fs.writeFile(path.join(dir, 'p1.mjs'), so(1))
    const { runner: r } = await runner(3)
    expect(await r.load([{ module: path.join(dir, 'p2.mjs'), version: 2 }, { module: path.join(dir, 'p1.mjs'), version: 1 }])).toEqual([1, 2, 3])
    const body = new Uint8Array([0, 1, 2, 255])
    const served = await r.serve(1, { method: 'GET', path: '/a', headers: {}, body }, async req => ({ status: 200, headers: { seen: (req as { path: string }).path }, body: (req as { body: Uint8Array }).body }))
    expect(served).toEqual({ status: 200, headers: { seen: '/a>1>2', via: '<2<1' }, body })
    const called = await r.call(1, { method: 'GET', path: '/b', headers: {}, body }, async req => ({ status: 201, headers: { seen: (req as { path: string }).path }, body: new Uint8Array() }))
    expect(called).toMatchObject({ status: 201, headers: { seen: '/b>2>1', via: '<1<2' } })
    await r.stop()
  })

  it('an SO that throws fails that request only; one that loops has its worker restarted, and the next request works', async () => {
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'throws.mjs'), so(1, 'async serve (req) { if (req.path === "/bad") throw new Error("no such field"); return { status: 200, headers: { by: "so" }, body: new Uint8Array() } }, async call () { return {} }'))
    await fs.writeFile(path.join(dir, 'loops.mjs'), so(3, 'serve () { for (;;) {} }, async call (req, remote) { return await remote(req) }'))
    const { runner: r, logs } = await runner(2, 500)
    expect(await r.load([{ module: path.join(dir, 'throws.mjs'), version: 1 }, { module: path.join(dir, 'loops.mjs'), version: 3 }])).toEqual([1, 2, 3])
    const local = async (): Promise<unknown> => ({ status: 200, headers: {}, body: new Uint8Array() })
    await expect(r.serve(1, { path: '/bad' }, local)).rejects.toThrow('no such field')
    expect(await r.serve(1, { path: '/good' }, local)).toMatchObject({ status: 200 })
    // the daemon's thread keeps running while the SO loops: this timer fires on time
    let ticks = 0
    const timer = setInterval(() => { ticks++ }, 100)
    await expect(r.serve(3, { path: '/x' }, local)).rejects.toMatchObject({ name: 'SimulationTimeoutError' })
    clearInterval(timer)
    expect(ticks).toBeGreaterThan(5)
    expect(logs.join('\n')).toMatch(/blocked its worker for more than 2500 ms .*; 1 request\(s\) failed/)
    // a new worker, which loads the same SOs before it serves: the answer is the SO's
    expect(await r.serve(1, { path: '/good' }, local)).toMatchObject({ status: 200, headers: { by: 'so' } })
    await r.stop()
  })

  it('names an SO that cannot load, and speaks only what loads', async () => {
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'shapeless.mjs'), 'export default { version: 1 }\n')
    const { runner: r, logs } = await runner(2)
    expect(await r.load([{ module: path.join(dir, 'shapeless.mjs'), version: 1 }, { module: path.join(dir, 'missing.mjs'), version: 3 }])).toEqual([2])
    expect(logs.join('\n')).toMatch(/shapeless\.mjs: .*default export must be/)
    expect(logs.join('\n')).toMatch(/missing\.mjs/)
    await r.stop()
  })
})
