/**
 * The daemon's life on its data directory: one daemon per directory, the trust store
 * and --replace-trust, private networks (--psk), the --config file, clean stops.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { generatePublisherKey } from '../../src/release/index.js'
import { writeTree } from '../helpers.js'
import { BIN, TestNet, runCli, waitFor } from './support/testnet.js'
import { spawn } from 'node:child_process'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

async function pskFile (dir: string, name: string): Promise<string> {
  const file = path.join(dir, name)
  await fs.writeFile(file, `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`, { mode: 0o600 })
  return file
}

describe('daemon lifecycle', () => {
  it('refuses a second daemon on the same data directory, and stops cleanly on SIGTERM', async () => {
    net = await TestNet.create()
    const a = await net.start('a')
    const second = await runCli(['daemon', '--data', a.dataDir, '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(second.code).toBe(1)
    expect(second.stderr).toMatch(/in use by process \d+.*\[DataDirLockedError\]/)
    // a listen address that is taken is a named refusal, not a stack trace
    const port = /\/tcp\/(\d+)\//.exec(a.addr)?.[1]
    const taken = await runCli(['daemon', '--data', path.join(net.root, 'taken'), '--listen', `/ip4/127.0.0.1/tcp/${port ?? ''}`])
    expect(taken.code).toBe(1)
    expect(taken.stderr).toMatch(/address is in use \[ListenFailedError\]/)
    // a --control port that is taken refuses a restart before the app runs again (its program leaves a mark)
    const mark = path.join(net.root, 'app-started')
    const marking = await net.releaseFiles({ 'upgossip.json': JSON.stringify({ app: 'kv', version: '1.0.0', protocol: 1, run: { command: ['sh', '-c', `touch ${mark}; exec sleep 60`], wire: 'tcp' } }) })
    const m = await net.start('m', ['--install', marking.file])
    await waitFor('m\'s app to start', async () => await fs.stat(mark).then(() => true, () => false))
    await m.stop()
    await fs.rm(mark)
    const controlPort = new URL(a.control.url).port
    const busy = await runCli(['daemon', '--data', m.dataDir, '--control', controlPort, '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(busy.code).toBe(1)
    expect(busy.stderr).toContain(`--control ${controlPort}: the port is in use on 127.0.0.1; choose another or leave it out for a free one [ControlPortInUseError]`)
    await expect(fs.stat(mark)).rejects.toThrow(/ENOENT/)
    expect(a.exited).toBeUndefined()
    await a.stop()
    expect(a.exited).toBe(0)
    // the lock and control.json are gone: the directory can be used again
    await expect(fs.stat(path.join(a.dataDir, 'control.json'))).rejects.toThrow(/ENOENT/)
    await expect(fs.stat(path.join(a.dataDir, 'lock'))).rejects.toThrow(/ENOENT/)
    const events = (await fs.readFile(path.join(a.dataDir, 'events.jsonl'), 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { type: string })
    expect(events.map(e => e.type)).toContain('stopped')
  })

  it('control.json is private, complete and loopback first', async () => {
    net = await TestNet.create()
    const a = await net.start('a')
    const file = path.join(a.dataDir, 'control.json')
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600)
    expect(a.control.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(a.control.multiaddrs[0]).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${a.peerId}$`))
    expect((await fs.stat(path.join(a.dataDir, 'peer.key'))).mode & 0o777).toBe(0o600)
  })

  it('a different --trust file on a later start is refused unless --replace-trust', async () => {
    net = await TestNet.create()
    const a = await net.start('a')
    await a.stop()
    const other = path.join(net.root, 'other-trust.json')
    await fs.writeFile(other, JSON.stringify({ apps: { kv: { publishers: [(await generatePublisherKey()).id], threshold: 1 } } }))
    const refused = await runCli(['daemon', '--data', a.dataDir, '--trust', other, '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('[TrustConflictError]')
    // the same file again, or none, is fine; --replace-trust replaces
    const again = await net.start('a')
    await again.stop()
    const replaced = await net.start('a', ['--trust', other, '--replace-trust'])
    const stored = JSON.parse(await fs.readFile(path.join(replaced.dataDir, 'trust.json'), 'utf8'))
    expect(stored).toEqual(JSON.parse(await fs.readFile(other, 'utf8')))
  })

  it('a data directory runs one app: joining it as another is AppMismatchError, installing another app there is refused', async () => {
    net = await TestNet.create()
    const v1 = await net.release('1.0.0')
    const a = await net.start('a', ['--install', v1.file])
    await a.waitVersion('1.0.0')
    await a.stop()
    const nodeJson = path.join(a.dataDir, 'node.json')
    const before = await fs.readFile(nodeJson, 'utf8')
    expect(JSON.parse(before)).toMatchObject({ app: 'kv', current: { id: v1.id, version: '1.0.0' } })
    const daemon = async (dataDir: string, args: string[]): Promise<{ code: number, stderr: string }> =>
      await runCli(['daemon', '--data', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--config', net?.configFile ?? '', ...args])
    const joined = await daemon(a.dataDir, ['--app', 'notes'])
    expect(joined.code).toBe(1)
    expect(joined.stderr).toMatch(/this data directory runs kv; it cannot join as notes .*\[AppMismatchError\]/)
    // nothing was changed: the directory still runs kv 1.0.0
    expect(await fs.readFile(nodeJson, 'utf8')).toBe(before)

    // a directory that joined as kv and has nothing installed yet takes no other app's bundle
    const notes = await net.releaseFiles({ 'upgossip.json': JSON.stringify({ app: 'notes', version: '1.0.0', main: 'server.js', protocol: 1 }), 'server.js': '' })
    const b = await net.start('b', ['--app', 'kv'])
    await b.stop()
    const installed = await daemon(b.dataDir, ['--install', notes.file])
    expect(installed.code).toBe(1)
    expect(installed.stderr).toMatch(/is notes, but this peer serves kv \[PublishRefusedError\]/)
  })

  it('an import the package does not bundle is resolved from node_modules above the data directory (not defended)', async () => {
    net = await TestNet.create()
    // a module nobody signed, in a folder above the data directories
    await writeTree(path.join(net.root, 'node_modules', 'not-in-the-package'), {
      'package.json': JSON.stringify({ name: 'not-in-the-package', type: 'module', main: 'index.js' }),
      'index.js': "export default 'code nobody signed'\n"
    })
    const v1 = await net.releaseFiles({
      'upgossip.json': JSON.stringify({ app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 }),
      'server.js': "import { connect } from 'upgossip/app'\nimport unsigned from 'not-in-the-package'\nconst node = await connect()\nnode.serve(async () => ({ unsigned }))\nawait node.ready()\n"
    })
    const a = await net.start('a', ['--install', v1.file])
    await a.waitVersion('1.0.0')
    expect(await a.call({})).toEqual({ unsigned: 'code nobody signed' })
  })

  it('--psk makes a private network: peers without the key cannot connect', async () => {
    net = await TestNet.create()
    const key1 = await pskFile(net.root, 'one.psk')
    const key2 = await pskFile(net.root, 'two.psk')
    const v1 = await net.release('1.0.0')
    const a = await net.start('a', ['--psk', key1, '--install', v1.file])
    const member = await net.start('member', ['--psk', key1, '--app', 'kv', '--bootstrap', a.addr])
    const outsider = await net.start('outsider', ['--psk', key2, '--app', 'kv', '--bootstrap', a.addr])
    const open = await net.start('open', ['--app', 'kv', '--bootstrap', a.addr])
    await member.waitStaged(v1.id)
    // the others tried a, and say that they could not get in (after 15 s without a connection) …
    for (const p of [outsider, open]) {
      await waitFor(`${p.name} to warn that its bootstrap peer is unreachable`, async () =>
        (await fs.readFile(path.join(p.dataDir, 'events.jsonl'), 'utf8')).includes('"bootstrap-unreachable"'), 30_000)
    }
    // … and nothing else happened: no connection, no release, and a knows only the member
    for (const p of [outsider, open]) {
      const s = await p.status()
      expect(s.connections).toBe(0)
      expect(s.releases).toEqual([])
    }
    expect((await a.status()).network.map(p => p.peerId)).toEqual([member.peerId])
    const badKey = path.join(net.root, 'bad.psk')
    await fs.writeFile(badKey, 'not a key', { mode: 0o600 })
    const refused = await runCli(['daemon', '--data', path.join(net.root, 'bad'), '--psk', badKey, '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('[PskInvalidError]')
  })

  it('a daemon that refuses to start leaves a new data directory as it found it: absent stays absent, empty stays empty', async () => {
    net = await TestNet.create()
    const policy = path.join(net.root, 'policy.json')
    await fs.writeFile(policy, JSON.stringify({ rules: [{ rule: 'rollling', max: 1 }] }))
    const listen = ['--listen', '/ip4/127.0.0.1/tcp/0']
    // a mistyped --policy on a directory (and its parent) that did not exist: the trust store is not seeded there
    const fresh = path.join(net.root, 'new-parent', 'fresh')
    const bad = await runCli(['daemon', '--data', fresh, '--trust', net.trustFile, '--policy', policy, ...listen])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain(`policy ${policy}: rule "rollling" in "rules[0]" is not a rule; did you mean "rolling"? [PolicyInvalidError]`)
    await expect(fs.stat(path.join(net.root, 'new-parent'))).rejects.toThrow(/ENOENT/)
    // refused after the trust store was seeded and the event log opened (a bundle that is not one): an empty directory is emptied again
    const empty = path.join(net.root, 'empty')
    await fs.mkdir(empty)
    const notABundle = path.join(net.root, 'not-a-bundle.car')
    await fs.writeFile(notABundle, 'hello')
    const refused = await runCli(['daemon', '--data', empty, '--trust', net.trustFile, '--install', notABundle, ...listen])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/\[\w+Error\]/)
    expect(await fs.readdir(empty)).toEqual([])
    // a directory in use is never touched: its trust store and event log stay
    const a = await net.start('a')
    await a.stop()
    // a lock left by a daemon that had to be killed on a loaded machine is stale, and the next start may clear it
    const listing = async (): Promise<string[]> => (await fs.readdir(a.dataDir)).filter(name => name !== 'lock').sort()
    const before = await listing()
    const again = await runCli(['daemon', '--data', a.dataDir, '--install', notABundle, ...listen])
    expect(again.code).toBe(1)
    expect(await listing()).toEqual(before)
    expect(before).toContain('trust.json')
  })

  it('takes its options from --config, refuses unknown keys there, and command-line values win', async () => {
    net = await TestNet.create()
    const config = path.join(net.root, 'peer.json')
    await fs.writeFile(config, JSON.stringify({ label: ['zone=from-config'], network: 'lab', beatInterval: '1s' }))
    const dataDir = path.join(net.root, 'c')
    const proc = spawn(process.execPath, [BIN, 'daemon', '--data', dataDir, '--config', config, '--listen', '/ip4/127.0.0.1/tcp/0', '--label', 'zone=cli'], { stdio: 'ignore' })
    try {
      const control = await waitFor('c to start', async () => JSON.parse(await fs.readFile(path.join(dataDir, 'control.json'), 'utf8')) as { url: string, token: string })
      const status = await (await fetch(control.url + '/status', { headers: { authorization: `Bearer ${control.token}` } })).json()
      expect(status).toMatchObject({ networkName: 'lab', labels: { zone: 'cli' } })
    } finally {
      proc.kill('SIGTERM')
      await new Promise(resolve => proc.once('exit', resolve))
    }
    await fs.writeFile(config, JSON.stringify({ colour: 'red' }))
    const bad = await runCli(['daemon', '--data', dataDir, '--config', config])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/unknown key "colour".*\[DaemonConfigError\]/)
    // option mistakes are usage errors that name the option
    for (const [args, mention] of [
      [['--bootstrap', '/ip4/127.0.0.1/udp/1'], 'not the address of a peer'],
      [['--listen', 'not-a-multiaddr'], '--listen'],
      [['--network', 'Bad/Name'], '--network'],
      [['--install', 'x.car', '--app', 'kv'], 'not both'],
      [['--label', 'nolabel'], 'K=V']
    ] as const) {
      const r = await runCli(['daemon', '--data', path.join(net.root, 'never'), ...args])
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toContain(mention)
    }
    await expect(fs.stat(path.join(net.root, 'never'))).rejects.toThrow(/ENOENT/)
  })

  it('--network keeps networks apart even when their peers connect', async () => {
    net = await TestNet.create()
    const v1 = await net.release('1.0.0')
    const a = await net.start('a', ['--install', v1.file])
    const same = await net.start('same', ['--app', 'kv', '--bootstrap', a.addr])
    const other = await net.start('other', ['--network', 'staging', '--app', 'kv', '--bootstrap', a.addr])
    await same.waitStaged(v1.id)
    await waitFor('the staging peer to connect', async () => (await other.status()).connections >= 1)
    // its sync reached a, which answered it with nothing, and says so …
    await waitFor('a to answer the staging peer\'s sync with nothing', async () => (await fs.readFile(path.join(a.dataDir, 'events.jsonl'), 'utf8'))
      .includes(`sync request from ${other.peerId} for network \\"staging\\" answered with nothing: this peer is on network \\"default\\"`))
    // … and nothing else reached it: no release by sync, by gossip or by beats
    expect((await other.status()).releases).toEqual([])
    expect((await other.status()).network).toEqual([])
    expect((await other.status()).networkName).toBe('staging')
  })
})
