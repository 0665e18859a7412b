/**
 * File permissions of a real daemon: a data directory open to others is closed (0700) at
 * start with one log line; everything the daemon and its app create — through an install,
 * requests that write state, and an upgrade — gives no permission to others (the daemon
 * runs with umask 077, and its app inherits it); a `--psk` key file that others may read
 * is refused, naming the file and the fix.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { TestNet, runCli } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

/** An SDK app that writes a file in a directory of its state on every request. */
function noteApp (version: string): Record<string, string> {
  return {
    'upgossip.json': JSON.stringify({ app: 'kv', version, main: 'server.js', protocol: 1, health: { stableFor: '500ms' } }),
    'server.js': `import fs from 'node:fs/promises'
import path from 'node:path'
import { connect } from 'upgossip/app'
const node = await connect()
node.serve(async request => {
  await fs.mkdir(path.join(node.stateDir, 'notes'), { recursive: true })
  await fs.writeFile(path.join(node.stateDir, 'notes', String(request.name)), String(request.note))
  return { version: node.version }
})
await node.ready()
`
  }
}

/** Every file and directory under `dir` (itself included) with its permission bits. */
async function modes (dir: string): Promise<Array<{ path: string, mode: number }>> {
  const out = [{ path: '.', mode: (await fs.stat(dir)).mode & 0o777 }]
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(e.parentPath, e.name)
    const stat = await fs.lstat(file)
    if (!stat.isSymbolicLink()) out.push({ path: path.relative(dir, file), mode: stat.mode & 0o777 })
  }
  return out
}

describe('permissions', () => {
  it('a 0755 data directory ends 0700, and nothing the daemon or its app creates gives others any permission', async () => {
    net = await TestNet.create()
    const v1 = await net.releaseFiles(noteApp('1.0.0'))
    const v2 = await net.releaseFiles(noteApp('2.0.0'))
    const dataDir = path.join(net.root, 'a')
    await fs.mkdir(dataDir)
    await fs.chmod(dataDir, 0o755)
    const a = await net.start('a', ['--install', v1.file])
    await a.waitVersion('1.0.0')
    expect(a.log.match(/data directory .* had mode/g)).toEqual(['data directory ' + dataDir + ' had mode'])
    expect(a.log).toContain(`data directory ${dataDir} had mode 0755; set to 0700, so that only its owner can read the peer's key, state and logs`)
    expect((await fs.stat(dataDir)).mode & 0o777).toBe(0o700)

    // the app writes state; a second version is installed by an upgrade (transform-free: the state is copied)
    await a.call({ name: 'one', note: 'written by 1.0.0' })
    const published = await runCli(['publish', v2.file, '--data', dataDir])
    expect(published.code, published.stderr).toBe(0)
    await a.waitVersion('2.0.0')
    await a.call({ name: 'two', note: 'written by 2.0.0' })
    expect(await fs.readFile(path.join(dataDir, 'state', v2.id, 'notes', 'one'), 'utf8')).toBe('written by 1.0.0')

    const all = await modes(dataDir)
    for (const name of ['state', 'app.log', 'node.json', 'events.jsonl', 'peer.key', 'control.json', 'trust.json', 'blocks', 'releases', 'packages', `state/${v2.id}/notes/two`, `packages/${v2.id}/server.js`]) {
      expect(all.map(e => e.path), name).toContain(name)
    }
    const open = all.filter(e => (e.mode & 0o077) !== 0).map(e => `${e.path} ${e.mode.toString(8)}`)
    expect(open).toEqual([])

    // a restart finds it private already: no second line
    await a.stop()
    const again = await net.start('a')
    await again.waitVersion('2.0.0')
    expect(again.log).not.toMatch(/had mode/)
  })

  it('a --psk key file that others may read is refused, naming the file and chmod 600, before the data directory is touched', async () => {
    net = await TestNet.create()
    const key = path.join(net.root, 'swarm.key')
    await fs.writeFile(key, `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`)
    await fs.chmod(key, 0o644)
    const data = path.join(net.root, 'p')
    const refused = await runCli(['daemon', '--data', data, '--trust', net.trustFile, '--psk', key, '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toBe(`upgossip: private-network key ${key} is open to other users (mode 0644); it must be readable by its owner only: chmod 600 ${key} [PskPermissionsError]\n`)
    await expect(fs.stat(data)).rejects.toThrow(/ENOENT/)
    // chmod 600, as it says: the same key is taken
    await fs.chmod(key, 0o600)
    const v1 = await net.release('1.0.0')
    const p = await net.start('p', ['--psk', key, '--install', v1.file])
    await p.waitVersion('1.0.0')
  })
})
