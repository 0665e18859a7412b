/**
 * `upgossip init`: a scaffolded app packs, releases, installs on a real daemon and answers
 * calls; its next-version templates, copied into place, pass `upgossip check` against it;
 * `--lang python` scaffolds a process app whose server runs as it is, on a real daemon too,
 * with transforms that carry its state both ways and simulation objects of the right shape;
 * a non-empty directory and a bad app name are refused (exit 1, named error); an unknown
 * `--lang` is a usage error; `--help`.
 */
import { execFile, execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseManifest } from '../../src/package/index.js'
import { tempDir, writeTree } from '../helpers.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'

let net: TestNet
beforeAll(async () => { net = await TestNet.create() })
afterAll(async () => { await net.close() })

const hasPython = ((): boolean => {
  try {
    execFileSync('python3', ['--version'])
    return true
  } catch {
    return false
  }
})()
if (!hasPython && process.env.CI === 'true') throw new Error('init.test.ts needs python3 (CI=true): .ci/run installs it with apt')

/** A port on 127.0.0.1 that was free a moment ago. */
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => { resolve(port) })
    })
  })
}

/** A refusal: exit 1, nothing on stdout, one line naming the error. */
function expectRefused (r: Awaited<ReturnType<typeof runCli>>, name: string): void {
  expect(r.code, r.stderr).toBe(1)
  expect(r.stdout).toBe('')
  expect(r.stderr.trim().split('\n')).toHaveLength(1)
  expect(r.stderr).toMatch(new RegExp(`^upgossip: .+ \\[${name}\\]\\n$`))
}

describe('upgossip init', () => {
  it('scaffolds an app that packs, releases, installs and answers calls', async () => {
    // the app is named after the directory: kv, the app TestNet's trust file names
    const dir = path.join(net.root, 'kv')
    const init = await runCli(['init', dir])
    expect(init.code, init.stderr).toBe(0)
    expect(init.stdout.trim().split('\n').map(l => path.relative(dir, l))).toEqual([
      'README.md', 'next/migrate/down.js', 'next/migrate/up.js', 'next/so/future.js', 'next/so/past.js', 'next/upgossip.json', 'server.js', 'upgossip.json'
    ])
    expect(init.stderr).toContain('README.md')
    expect(JSON.parse(await fs.readFile(path.join(dir, 'upgossip.json'), 'utf8'))).toMatchObject({ app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 })
    const readme = await fs.readFile(path.join(dir, 'README.md'), 'utf8')
    expect(readme).toContain('upgossip release kv --key publisher.key --out kv-1.0.0.car')
    expect(readme).not.toContain('{{')

    const pack = await runCli(['pack', dir])
    expect(pack.code, pack.stderr).toBe(0)
    expect(pack.stdout).toMatch(/^bafy\w+\n$/)
    const car = path.join(net.root, 'kv-1.0.0.car')
    const release = await runCli(['release', dir, '--key', net.keyFile, '--out', car])
    expect(release.code, release.stderr).toBe(0)

    const peer = await net.start('a', ['--install', car])
    await peer.waitVersion('1.0.0')
    expect(await peer.call({ op: 'put', key: 'hello', value: 'world' })).toEqual({ value: 'world' })
    expect(await peer.call({ op: 'get', key: 'hello' })).toEqual({ value: 'world' })
    expect(await peer.call({ op: 'get', key: 'nothing' })).toEqual({ value: null })

    // the next-version templates, put in place as the README says, make a valid 2.0.0
    // whose transforms and simulation objects pass the publisher's check as they are
    const v2 = path.join(net.root, 'kv-v2')
    await fs.cp(dir, v2, { recursive: true })
    await fs.cp(path.join(v2, 'next'), v2, { recursive: true })
    await fs.rm(path.join(v2, 'next'), { recursive: true })
    const state = path.join(net.root, 'sample-state')
    await writeTree(state, { 'data.json': JSON.stringify({ hello: 'world' }) })
    const samples = path.join(net.root, 'samples.jsonl')
    await fs.writeFile(samples, JSON.stringify({ request: { op: 'put', key: 'a', value: 1 }, response: { value: 1 } }) + '\n')
    const check = await runCli(['check', v2, '--previous', dir, '--state', state, '--samples', samples])
    expect(check.code, check.stdout + check.stderr).toBe(0)
    expect(check.stdout).toContain('checking kv 1.0.0 → 2.0.0')
    expect(check.stdout).toContain('down(up(state)) == state: ok')
  })

  it('takes --app and prints JSON', async () => {
    const dir = path.join(net.root, 'some-dir')
    const r = await runCli(['init', dir, '--app', 'my.app', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ dir, app: 'my.app', version: '1.0.0' })
    expect(out.files).toContain('next/so/past.js')
    expect(JSON.parse(await fs.readFile(path.join(dir, 'next', 'upgossip.json'), 'utf8'))).toMatchObject({ app: 'my.app', version: '2.0.0', protocol: 2, upgrades: '^1.0.0' })
  })

  describe.skipIf(!hasPython)('--lang python', () => {
    it('scaffolds a process app: its files, manifests that parse, a server that starts and answers /healthz, transforms that carry its state both ways', async () => {
      const dir = path.join(net.root, 'pyapp')
      const init = await runCli(['init', dir, '--lang', 'python', '--app', 'kv'])
      expect(init.code, init.stderr).toBe(0)
      expect(init.stdout.trim().split('\n').map(l => path.relative(dir, l))).toEqual([
        'README.md', 'next/migrate/down.py', 'next/migrate/up.py', 'next/so/future.js', 'next/so/past.js', 'next/upgossip.json', 'server.py', 'upgossip.json'
      ])
      for (const file of ['README.md', 'server.py', 'upgossip.json', 'next/upgossip.json', 'next/so/past.js']) {
        expect(await fs.readFile(path.join(dir, file), 'utf8')).not.toContain('{{')
      }

      // 1.0.0 is a process app
      const v1 = parseManifest(JSON.parse(await fs.readFile(path.join(dir, 'upgossip.json'), 'utf8')))
      expect(v1).toMatchObject({ app: 'kv', version: '1.0.0', protocol: 1, run: { command: ['python3', 'server.py'], wire: 'http' }, health: { http: '/healthz' } })
      expect(v1.main).toBeUndefined()
      expect(v1.transform).toBeUndefined()
      // 2.0.0 names its transforms as commands and its SOs as modules, all of them in next/
      const v2json: unknown = JSON.parse(await fs.readFile(path.join(dir, 'next', 'upgossip.json'), 'utf8'))
      expect(() => parseManifest(v2json)).not.toThrow()
      const v2 = v2json as { transform: Record<'up' | 'down', { command: string[] }>, simulation: Record<'past' | 'future', string> }
      expect(v2).toMatchObject({
        app: 'kv',
        version: '2.0.0',
        protocol: 2,
        upgrades: '^1.0.0',
        run: { command: ['python3', 'server.py'], wire: 'http' },
        transform: { up: { command: ['python3', 'migrate/up.py'] }, down: { command: ['python3', 'migrate/down.py'] } },
        simulation: { past: 'so/past.js', future: 'so/future.js' },
        health: { http: '/healthz' }
      })
      for (const file of [v2.transform.up.command[1], v2.transform.down.command[1], v2.simulation.past, v2.simulation.future]) {
        expect((await fs.stat(path.join(dir, 'next', file ?? ''))).isFile()).toBe(true)
      }
      // its SOs have the shape the daemon loads, and pass HTTP messages through as they are
      for (const [kind, version] of [['past', 1], ['future', 2]] as const) {
        const so = (await import(pathToFileURL(path.join(dir, 'next', v2.simulation[kind])).href) as { default: { version: number, serve: Function, call: Function } }).default
        expect(so.version).toBe(version)
        const request = { method: 'PUT', path: '/kv/a?x=1', headers: { 'x-replica': '1' }, body: new TextEncoder().encode('v') }
        const response = { status: 200, headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode('v') }
        const seen: unknown[] = []
        expect(await so.serve(request, async (r: unknown) => { seen.push(r); return response })).toEqual(response)
        expect(await so.call(request, async (r: unknown) => { seen.push(r); return response })).toEqual(response)
        expect(seen).toEqual([request, request])
      }

      // server.py runs as the daemon runs it: in the package, on a port of 127.0.0.1, with a state directory
      const port = await freePort()
      const state = path.join(net.root, 'pyapp-state')
      const server = spawn('python3', ['server.py'], { cwd: dir, env: { ...process.env, UPGOSSIP_PORT: String(port), UPGOSSIP_STATE: state }, stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      server.stderr.on('data', d => { stderr += String(d) })
      const exited = new Promise<number | null>(resolve => server.on('exit', code => { resolve(code) }))
      const url = `http://127.0.0.1:${port}`
      try {
        await waitFor('server.py to answer /healthz', async () => (await fetch(`${url}/healthz`)).status === 200, 15_000, 100)
        const put = await fetch(`${url}/kv/hello%2Fworld`, { method: 'PUT', body: 'wörld' })
        expect([put.status, await put.text()]).toEqual([200, 'wörld'])
        const get = await fetch(`${url}/kv/hello%2Fworld`)
        expect([get.status, await get.text()]).toEqual([200, 'wörld'])
        expect((await fetch(`${url}/kv/absent`)).status).toBe(404)
        // without UPGOSSIP_PROXY it is not run by a daemon, and says so
        expect((await fetch(`${url}/everywhere/hello%2Fworld`)).status).toBe(503)
      } finally {
        server.kill('SIGTERM')
      }
      // SIGTERM is how a daemon stops it: a prompt, clean exit
      expect(await exited, stderr).toBe(0)
      expect(stderr).toContain(`kv 1.0.0: serving 0 keys on 127.0.0.1:${port}`)
      const written = await fs.readFile(path.join(state, 'data.json'))
      expect(JSON.parse(written.toString())).toEqual({ 'hello/world': 'wörld' })

      // the transforms, run as a daemon runs command transforms, carry that state to 2.0.0 and back, byte for byte
      const run = promisify(execFile)
      const up = path.join(net.root, 'pyapp-up')
      const down = path.join(net.root, 'pyapp-down')
      await fs.mkdir(up)
      await fs.mkdir(down)
      expect((await run('python3', v2.transform.up.command.slice(1), { cwd: path.join(dir, 'next'), env: { ...process.env, UPGOSSIP_FROM: state, UPGOSSIP_TO: up } })).stdout).toBe('up: moved 1 keys\n')
      expect((await run('python3', v2.transform.down.command.slice(1), { cwd: path.join(dir, 'next'), env: { ...process.env, UPGOSSIP_FROM: up, UPGOSSIP_TO: down } })).stdout).toBe('down: moved 1 keys back\n')
      expect((await fs.readFile(path.join(down, 'data.json'))).equals(written)).toBe(true)
    })

    it('its next-version templates, put in place, make a 2.0.0 that passes upgossip check against 1.0.0', async () => {
      const dir = path.join(net.root, 'pycheck')
      expect((await runCli(['init', dir, '--lang', 'python', '--app', 'kv'])).code).toBe(0)
      const v2 = path.join(net.root, 'pycheck-v2')
      await fs.cp(dir, v2, { recursive: true })
      await fs.cp(path.join(v2, 'next'), v2, { recursive: true })
      await fs.rm(path.join(v2, 'next'), { recursive: true })
      // state as 1.0.0's server.py writes it, and requests of protocol 1 as the README shows them
      const state = path.join(net.root, 'pycheck-state')
      await writeTree(state, { 'data.json': JSON.stringify({ hello: 'world' }) })
      const samples = path.join(net.root, 'pycheck-samples.jsonl')
      await fs.writeFile(samples, [{ method: 'PUT', path: '/kv/hello', body: 'world' }, { method: 'GET', path: '/kv/hello' }, { method: 'GET', path: '/everywhere/hello' }].map(s => JSON.stringify(s) + '\n').join(''))
      const check = await runCli(['check', v2, '--previous', dir, '--state', state, '--samples', samples])
      expect(check.code, check.stdout + check.stderr).toBe(0)
      expect(check.stdout).toContain('down(up(state)) == state: ok')
      expect(check.stdout).toContain('samples: 3 HTTP requests, answered by 1.0.0\'s program: 200 200 200')
      expect(check.stdout).toContain('past SO with 2.0.0\'s program: 3 samples, 0 answered otherwise than 1.0.0\'s')
    })

    it('scaffolds a process app that releases, installs on a real daemon and reaches the daemon\'s proxy', async () => {
      const dir = path.join(net.root, 'pyrelease')
      expect((await runCli(['init', dir, '--lang', 'python', '--app', 'kv'])).code).toBe(0)
      const car = path.join(net.root, 'py-1.0.0.car')
      const release = await runCli(['release', dir, '--key', net.keyFile, '--out', car])
      expect(release.code, release.stderr).toBe(0)
      const peer = await net.start('py', ['--install', car])
      await peer.waitVersion('1.0.0')
      // one start of the program (an install once started it twice), and it answers
      expect((await fs.readFile(path.join(peer.dataDir, 'app.log'), 'utf8')).match(/starting kv@1\.0\.0/g)).toHaveLength(1)
      const call = async (request: unknown): Promise<{ status: number, body: string }> => {
        const r = await runCli(['call', '--data', peer.dataDir, JSON.stringify(request)])
        expect(r.code, r.stderr).toBe(0)
        return JSON.parse(r.stdout) as { status: number, body: string }
      }
      expect(await call({ method: 'PUT', path: '/kv/hello', body: 'world' })).toMatchObject({ status: 200, body: 'world' })
      expect(await call({ method: 'GET', path: '/kv/hello' })).toMatchObject({ status: 200, body: 'world' })
      // /everywhere asks the proxy for the peers, with the credentials of UPGOSSIP_PROXY: alone, there are none to ask
      expect(await call({ method: 'GET', path: '/everywhere/hello' })).toMatchObject({ status: 200, body: '{}' })
      expect(await fs.readFile(path.join(peer.dataDir, 'app.log'), 'utf8')).toMatch(/kv 1\.0\.0: serving 0 keys on 127\.0\.0\.1:\d+/)
    })
  })

  it('writes into an existing empty directory, and refuses a non-empty one without touching it', async () => {
    const empty = await tempDir('upgossip-init-empty-')
    const full = await tempDir('upgossip-init-full-')
    try {
      expect((await runCli(['init', empty, '--app', 'ok'])).code).toBe(0)
      await fs.writeFile(path.join(full, 'mine.txt'), 'keep me')
      expectRefused(await runCli(['init', full, '--app', 'ok']), 'DirectoryNotEmptyError')
      expect(await fs.readdir(full)).toEqual(['mine.txt'])
    } finally {
      await fs.rm(empty, { recursive: true, force: true })
      await fs.rm(full, { recursive: true, force: true })
    }
  })

  it('refuses an app name the manifest would refuse, and creates nothing', async () => {
    const bad = path.join(net.root, 'Bad Name')
    const byDir = await runCli(['init', bad])
    expectRefused(byDir, 'InvalidAppNameError')
    expect(byDir.stderr).toContain('--app NAME')
    expectRefused(await runCli(['init', path.join(net.root, 'fine'), '--app', 'UPPER']), 'InvalidAppNameError')
    expect(await fs.stat(bad).catch(() => null)).toBeNull()
    expect(await fs.stat(path.join(net.root, 'fine')).catch(() => null)).toBeNull()
  })

  it('has --help, and usage errors exit 2', async () => {
    const help = await runCli(['init', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Usage: upgossip init [options] <dir>')
    expect(help.stdout).toContain('--app <name>')
    expect((await runCli(['init'])).code).toBe(2)
    expect((await runCli(['init', path.join(net.root, 'x'), '--name', 'y'])).code).toBe(2)
    expect(help.stdout).toMatch(/--lang <lang>[^]*"node",\s+"python"/)
    const go = await runCli(['init', path.join(net.root, 'go-app'), '--lang', 'go'])
    expect(go.code).toBe(2)
    expect(go.stderr).toContain('Allowed choices are node, python')
    expect(await fs.stat(path.join(net.root, 'go-app')).catch(() => null)).toBeNull()
  })
})
