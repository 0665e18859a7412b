/**
 * `upgossip init`: a scaffolded app packs, releases, installs on a real daemon and answers
 * calls; its next-version templates, copied into place, pass `upgossip check` against it;
 * a non-empty directory and a bad app name are refused (exit 1, named error); `--help`.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir, writeTree } from '../helpers.js'
import { TestNet, runCli } from './support/testnet.js'

let net: TestNet
beforeAll(async () => { net = await TestNet.create() })
afterAll(async () => { await net.close() })

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
  })
})
