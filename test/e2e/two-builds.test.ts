/**
 * A network of two upgossip builds, as while upgossip itself is rolled across a network
 * peer by peer (docs/operator.md, "Upgrading upgossip itself"): a daemon of an earlier
 * commit (built here from the repository's history) and one of this build swarm a package,
 * see each other in their views, call each other's apps and both take an upgrade.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { kvVersion } from './support/kv-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** The earlier build: the last commit before daemons carried their build in beats, stopped as planned and served --metrics. */
const EARLIER = '3d52ece'

let earlierBin: string | undefined
let earlierDir: string | undefined
let missing: string | undefined
let net: TestNet | undefined

beforeAll(async () => {
  try {
    await run('git', ['cat-file', '-e', `${EARLIER}^{commit}`], { cwd: ROOT })
  } catch {
    // not a capability of the machine but of the clone: said loudly, not failed
    missing = `commit ${EARLIER} is not in this clone (a shallow clone?); clone with history to run it`
    console.warn(`two-builds.test.ts: skipped, ${missing}`)
    return
  }
  // the earlier source, built with this checkout's dependencies (the lock file is the same)
  const dir = await fs.mkdtemp(path.join(ROOT, '.build-earlier-'))
  earlierDir = dir
  await run('sh', ['-c', `git archive ${EARLIER} | tar -x -C "${dir}"`], { cwd: ROOT })
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: dir, timeout: 300_000 })
  earlierBin = path.join(dir, 'bin', 'upgossip.js')
}, 360_000)

afterAll(async () => {
  if (earlierDir != null) await fs.rm(earlierDir, { recursive: true, force: true })
})

afterEach(async () => {
  await net?.close()
  net = undefined
})

describe('two builds in one network', () => {
  it('an earlier daemon and this one swarm, see and call each other, and both upgrade', async ({ skip }) => {
    if (earlierBin == null) return skip(missing)
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kvVersion('1.0.0', 'v1'))
    const v2 = await net.releaseFiles(kvVersion('2.0.0', 'v2', { schedule: [{ rule: 'approve' }] }))
    const old = await net.start('old', ['--install', v1.file], {}, undefined, earlierBin)
    // this build joins with no code: it fetches 1.0.0's blocks from the earlier daemon
    const now = await net.start('now', ['--app', 'kv', '--bootstrap', old.addr])
    await now.waitVersion('1.0.0')
    expect((await runCli(['--version'])).stdout).toMatch(/^0\.1\.0 \(([0-9a-f]{7,}|unknown)\)\n$/)
    // each in the other's view, this build shown with its build, the earlier one without
    await waitFor('each to see the other', async () => (await old.status()).network.some(p => p.peerId === now.peerId) && (await now.status()).network.some(p => p.peerId === old.peerId))
    const rollout = JSON.parse((await runCli(['rollout', 'status', '--data', now.dataDir, '--json'])).stdout) as { peers: Array<{ peerId: string, build?: string }> }
    expect(rollout.peers.find(p => p.peerId === now.peerId)?.build).toMatch(/^0\.1\.0 /)
    expect(rollout.peers.find(p => p.peerId === old.peerId)?.build).toBeUndefined()
    // app calls both ways
    expect(await now.callPeer(old.peerId, { op: 'put', key: 'k', value: 1 })).toMatchObject({ ok: true })
    expect(await old.callPeer(now.peerId, { op: 'put', key: 'k', value: 2 })).toMatchObject({ ok: true })
    // a release published on the earlier daemon reaches this one; both upgrade when approved
    expect((await old.api('/publish', { method: 'POST', body: await fs.readFile(v2.file) })).status).toBe(200)
    await now.waitStaged(v2.id)
    for (const p of [old, now]) expect((await runCli(['approve', v2.id, '--data', p.dataDir])).code).toBe(0)
    for (const p of [old, now]) await p.waitVersion('2.0.0')
    expect(await now.callPeer(old.peerId, { op: 'get', key: 'k' })).toEqual({ value: 1, version: '2.0.0' })
    expect(await old.callPeer(now.peerId, { op: 'get', key: 'k' })).toEqual({ value: 2, version: '2.0.0' })
  }, 240_000)
})
