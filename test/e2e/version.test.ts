/**
 * Which upgossip runs where, on real daemons: `--version` prints `0.1.0 (1a2b3c4)` (the
 * version and the commit `npm run build` wrote into dist), and the same build is in
 * `status` (text and --json), in the beats (so another peer's `status` and `rollout
 * status`, text and --json, show it per peer).
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { RolloutView } from '../../src/daemon/index.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

const BUILD = /^\d+\.\d+\.\d+ \(([0-9a-f]{7,}|unknown)\)$/

describe('version and build', () => {
  it('--version, status and rollout status show the build of every peer', async () => {
    const version = (await runCli(['--version'])).stdout.trim()
    expect(version).toMatch(BUILD)
    // CI builds from a git clone: the commit is known there
    if (process.env.CI === 'true') expect(version).not.toContain('unknown')

    net = await TestNet.create()
    const v1 = await net.release('1.0.0')
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--app', 'kv', '--bootstrap', a.addr])
    await b.waitVersion('1.0.0')

    const json = await runCli(['status', '--json', '--data', b.dataDir])
    expect(json.code, json.stderr).toBe(0)
    const status = JSON.parse(json.stdout) as { build: string, network: Array<{ peerId: string, build?: string }> }
    expect(status.build).toBe(version)
    // A's build, from its beats
    await waitFor('b to hear a\'s build', async () => (await b.status()).network.find(p => p.peerId === a.peerId)?.build === version)

    const text = await runCli(['status', '--data', b.dataDir])
    expect(text.stdout.trimEnd().split('\n').at(-1)).toBe(`upgossip  ${version}`)

    const rollout = JSON.parse((await runCli(['rollout', 'status', '--json', '--data', b.dataDir])).stdout) as RolloutView
    expect(rollout.peers.map(p => [p.peerId, p.build])).toEqual(expect.arrayContaining([[b.peerId, version], [a.peerId, version]]))
    const table = (await runCli(['rollout', 'status', '--data', b.dataDir])).stdout.split('\n')
    expect(table.find(l => l.startsWith('PEER'))).toMatch(/ UPGOSSIP +WAITING ON$/)
    const escaped = version.replace(/[.()]/g, '\\$&')
    expect(table.filter(l => new RegExp(` ${escaped} `).test(l))).toHaveLength(2)
  })
})
