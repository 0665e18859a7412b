/**
 * `upgossip rollout status` on real daemons: a mixed network (one peer on 2.0.0, one
 * waiting for approval, one held) seen from one peer, with counts and what each waits on;
 * a commit and a rollback reach the others' views at once, not at the next beat tick; and
 * `call --peer` with ids as people type them.
 */
import { spawn } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import type { DaemonStatus, RolloutView } from '../../src/daemon/index.js'
import { shortPeerId } from '../../src/cli/peer-ids.js'
import { kvVersion } from './support/kv-app.js'
import { BIN, TestNet, runCli, waitFor } from './support/testnet.js'
import type { Peer } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

/** The version `viewer` sees `peer` run, from its view of the network. */
async function seenVersion (viewer: Peer, peer: Peer): Promise<string | null | undefined> {
  const s: DaemonStatus = await viewer.status()
  return s.network.find(p => p.peerId === peer.peerId)?.version
}

/** How long (ms) until `viewer` sees `peer` run `version`. */
async function timeUntilSeen (viewer: Peer, peer: Peer, version: string): Promise<number> {
  const start = Date.now()
  await waitFor(`${viewer.name} to see ${peer.name} on ${version}`, async () => await seenVersion(viewer, peer) === version, 20_000, 100)
  return Date.now() - start
}

async function rolloutJson (viewer: Peer, ...args: string[]): Promise<RolloutView> {
  const r = await runCli(['rollout', 'status', ...args, '--json', '--data', viewer.dataDir])
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as RolloutView
}

describe('rollout status', () => {
  it('shows a mixed network from one peer; a commit and a rollback are announced at once; call --peer takes prefixes and short forms', async () => {
    // beats tick every 20 s: a view that converges within 4 s was told at once
    net = await TestNet.create({ beatInterval: '20s', peerTimeout: '120s' })
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    const c = await net.start('c', ['--app', 'kv', '--bootstrap', a.addr])
    for (const p of [a, b, c]) await p.waitVersion('1.0.0')

    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { upgrades: '^1.0.0', schedule: [{ rule: 'approve' }] }))
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    for (const p of [a, b, c]) await p.waitStaged(v2.id)
    expect((await runCli(['hold', 'kv@2.0.0', '--data', c.dataDir])).code).toBe(0)
    await waitFor('b and c to see a on 1.0.0', async () => await seenVersion(b, a) === '1.0.0' && await seenVersion(c, a) === '1.0.0', 60_000)
    expect((await runCli(['approve', 'kv@2.0.0', '--data', a.dataDir])).code).toBe(0)
    await a.waitVersion('2.0.0')
    expect(await timeUntilSeen(b, a, '2.0.0')).toBeLessThan(4000)

    // from a: one peer on 2.0.0, one waiting for approval, one held
    const view = await waitFor('a to see b wait on approve and c on hold', async () => {
      const v = await rolloutJson(a)
      const on = new Map(v.peers.map(p => [p.peerId, p.waitingOn]))
      return on.get(b.peerId) === 'approve' && on.get(c.peerId) === 'hold' ? v : undefined
    }, 60_000, 1000)
    expect(view).toMatchObject({ app: 'kv', target: '2.0.0', targetId: v2.id, counts: { '2.0.0': 1, '1.0.0': 2 } })
    expect(view.peers.map(p => p.peerId)).toEqual([a.peerId, ...[b.peerId, c.peerId].sort()])
    const size = (await a.status()).releases.find(r => r.id === v2.id)?.size
    for (const p of view.peers) expect(p).toMatchObject({ app: 'kv', state: 'running', have: size, size })
    expect(view.peers[0]).toMatchObject({ version: '2.0.0', self: true })
    expect(view.peers.find(p => p.peerId === c.peerId)?.reason).toMatch(/held by the operator/)
    expect(view.peers.find(p => p.peerId === b.peerId)).not.toHaveProperty('failed')

    const text = await runCli(['rollout', 'status', 'kv@2.0.0', '--data', a.dataDir])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain('rollout of kv to 2.0.0')
    expect(text.stdout).toMatch(/2\.0\.0 ×1, 1\.0\.0 ×2/)
    // the UPGOSSIP column: the build of each peer's daemon
    expect(text.stdout).toMatch(new RegExp(`${shortPeerId(b.peerId)} +kv +1\\.0\\.0 +running +100% +- +0\\.1\\.0 \\(([0-9a-f]{7,}|unknown)\\) +approve`))
    expect(text.stdout).toMatch(new RegExp(`${shortPeerId(c.peerId)} .* hold: held by the operator`))

    // --watch --json: one JSON line per change, until Ctrl-C (exit 0)
    const watch = spawn(process.execPath, [BIN, 'rollout', 'status', '--watch', '--json', '--data', a.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let watched = ''
    watch.stdout.on('data', d => { watched += String(d) })
    await waitFor('a first watched view', () => watched.includes('\n'), 10_000, 100)
    const exited = new Promise<number | null>(resolve => watch.on('close', code => { resolve(code) }))
    watch.kill('SIGINT')
    expect(await exited).toBe(0)
    expect((JSON.parse(watched.split('\n')[0] as string) as RolloutView).counts).toEqual({ '2.0.0': 1, '1.0.0': 2 })

    // a rollback is announced as soon as it is over
    const back = await runCli(['rollback', '--data', a.dataDir])
    expect(back.code, back.stderr).toBe(0)
    expect(await timeUntilSeen(c, a, '1.0.0')).toBeLessThan(4000)
    expect((await rolloutJson(c, 'kv')).counts).toEqual({ '1.0.0': 3 })
    expect((await runCli(['rollout', 'status', 'kv@', '--data', a.dataDir])).code).toBe(2)

    // call --peer: a prefix, the short form status prints, an unknown id, an ambiguous one
    const get = JSON.stringify({ op: 'get', key: 'nothing' })
    const byPrefix = await runCli(['call', '--data', a.dataDir, '--peer', b.peerId.slice(0, 16), get])
    expect(byPrefix.code, byPrefix.stderr).toBe(0)
    expect(JSON.parse(byPrefix.stdout)).toMatchObject({ version: '1.0.0' })
    const byShort = await runCli(['call', '--data', a.dataDir, '--peer', shortPeerId(c.peerId), get])
    expect(byShort.code, byShort.stderr).toBe(0)
    const unknown = await runCli(['call', '--data', a.dataDir, '--peer', `${b.peerId.slice(0, 30)}zzzz`, get])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('[UnknownPeerError]')
    // the closest known peer first: the one whose id was mistyped
    expect(unknown.stderr).toContain(`the closest known: ${b.peerId} (kv 1.0.0)`)
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1)
    const ambiguous = await runCli(['call', '--data', a.dataDir, '--peer', '12D3KooW', get])
    expect(ambiguous.code).toBe(1)
    expect(ambiguous.stderr).toContain('[AmbiguousPeerError]')
    for (const p of [a, b, c]) expect(ambiguous.stderr).toContain(p.peerId)
  })

  it('--help names the arguments and has an example', async () => {
    const r = await runCli(['rollout', 'status', '--help'])
    expect(r.code).toBe(0)
    for (const option of ['[app[@version]]', '--watch', '--json', '--data', '--daemon', '--token', 'Example']) expect(r.stdout).toContain(option)
    expect((await runCli(['--help'])).stdout).toContain('rollout')
  })
})
