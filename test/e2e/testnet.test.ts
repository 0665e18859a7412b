/**
 * `upgossip testnet`: every scenario on a small real network (3 daemons on loopback),
 * its JSON report checked. The scenarios' own checks are the assertions that matter;
 * here we prove the command runs them, reports them in the promised shape, exits by
 * them, and cleans up after itself.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from './support/testnet.js'

const hasPython = ((): boolean => {
  try {
    execFileSync('python3', ['--version'])
    return true
  } catch {
    return false
  }
})()
if (!hasPython && process.env.CI === 'true') throw new Error('testnet.test.ts (polyglot) needs python3 (CI=true): .ci/run installs it with apt')

interface Report {
  scenario: string
  peers: number
  durationMs: number
  requests: { sent: number, failed: number, p50Ms: number, p99Ms: number }
  checks: Array<{ name: string, ok: boolean, detail: string }>
  timeline: Array<{ atMs: number, peer?: string, event: string, detail: string }>
  dir: string
}

async function testnet (scenario: string, peers = 3): Promise<{ code: number, report: Report, stderr: string }> {
  const { code, stdout, stderr } = await runCli(['testnet', '--scenario', scenario, '--peers', String(peers), '--json'], {}, 280_000)
  let report: Report
  try {
    report = JSON.parse(stdout) as Report
  } catch {
    throw new Error(`stdout is not one JSON object (exit ${code}):\n${stdout.slice(0, 500)}\nstderr:\n${stderr.slice(-3000)}`)
  }
  return { code, report, stderr }
}

function expectHeld (run: { code: number, report: Report, stderr: string }, scenario: string, ownChecks: RegExp[]): void {
  const { code, report, stderr } = run
  const failed = report.checks.filter(c => !c.ok)
  expect(failed, `failed checks:\n${JSON.stringify(failed, null, 2)}\n${stderr.slice(-4000)}`).toEqual([])
  expect(code).toBe(0)
  expect(report.scenario).toBe(scenario)
  expect(report.requests.sent).toBeGreaterThan(50)
  expect(report.requests.failed).toBe(0)
  expect(report.durationMs).toBeGreaterThan(0)
  const names = report.checks.map(c => c.name)
  // the clients were answered while the peers switched (between the first publish and the last change seen on a peer), none failed
  for (const common of [/^every peer runs /, /^no client request failed$/, /^clients were answered during the rollout$/, /^state written before the upgrades reads back$/, /^peers read each other through the shim$/]) {
    expect(names.some(n => common.test(n)), `missing check ${String(common)} in ${names.join(' | ')}`).toBe(true)
  }
  for (const own of ownChecks) expect(names.some(n => own.test(n)), `missing check ${String(own)} in ${names.join(' | ')}`).toBe(true)
  expect(report.timeline.some(e => e.event === 'publish' || e.event === 'start')).toBe(true)
  // the live view went to stderr as plain lines (not a terminal here); with several classes each names its app
  expect(stderr).toMatch(/peer-1 +(\w+ )?\d\.0\.0 running/)
}

describe('upgossip testnet', { timeout: 300_000 }, () => {
  it('rolling (the default): v1 → v2 rolling, v2 → v3 with canaries, mixed versions talking', async () => {
    const run = await testnet('rolling')
    expectHeld(run, 'rolling', [/^rolling: at most one peer/, /^a v1 peer and v2 peers read each other/, /incr\) works on a v2 peer/, /^canaries switched to 3\.0\.0 first/])
    expect(run.report.peers).toBe(3)
    // the throwaway directory is gone
    await expect(fs.stat(run.report.dir)).rejects.toThrow()
  })

  it('canary', async () => {
    expectHeld(await testnet('canary'), 'canary', [/^canaries switched to 2\.0\.0 first/])
  })

  it('broken: v4 fails on the canary, rolls back, the rollout halts', async () => {
    const run = await testnet('broken')
    expectHeld(run, 'broken', [/^the broken release failed on its canary/, /^the rollout halted/])
    expect(run.report.checks.find(c => c.name.startsWith('every peer runs'))?.name).toBe('every peer runs 3.0.0')
  })

  it('partition: a stopped peer catches up step by step', async () => {
    expectHeld(await testnet('partition'), 'partition', [/caught up through 2\.0\.0 to 3\.0\.0/])
  })

  it('late-join: a peer joining with --app installs the newest release', async () => {
    const run = await testnet('late-join')
    expectHeld(run, 'late-join', [/^the late joiner installed the newest release/])
    expect(run.report.peers).toBe(4)
  })

  it('threshold: one signature of a 2-of-3 trust is refused, two roll out', async () => {
    expectHeld(await testnet('threshold'), 'threshold', [/^a release signed by 1 of 3 publishers is refused/, /^no peer took the under-signed release/, /^co-signed by a second publisher/])
  })

  it('revoke: the network rolls back and keeps what was written', async () => {
    expectHeld(await testnet('revoke'), 'revoke', [/^the revoked release is revoked on every peer/, /^writes made on 2\.0\.0 survive the rollback/])
  })

  it.skipIf(!hasPython)('polyglot: pykv, a Python process app, rolls v1 → v2 with a mixed network whose peers copy writes to each other', async () => {
    const run = await testnet('polyglot')
    expectHeld(run, 'polyglot', [/^rolling: at most one peer/, /^a v1 peer and v2 peers read each other's writes/, /^up\.py carried the state written on 1\.0\.0/])
    const { report } = run
    expect(report.peers).toBe(3)
    expect(report.checks.find(c => c.name.startsWith('every peer runs'))?.name).toBe('every peer runs 2.0.0')
    expect(report.timeline.some(e => e.event === 'publish' && /^publish pykv 2\.0\.0/.test(e.detail))).toBe(true)
    // the holdout was approved while the others already ran 2.0.0: the network was mixed
    expect(report.timeline.some(e => e.event === 'approve' && /on peer-3$/.test(e.detail))).toBe(true)
    expect(run.stderr).toMatch(/peer-3 +1\.0\.0 running · 2\.0\.0 waiting on approve/)
    await expect(fs.stat(report.dir)).rejects.toThrow()
  })

  it('classes: stores roll out first, clients wait on `after` and follow, calling the stores across classes and versions throughout', async () => {
    const run = await testnet('classes', 4)
    expectHeld(run, 'classes', [/^every cross-class call in the mixed phases answered$/, /^the clients switched only after every store ran 2\.0\.0$/, /^state written before the rollout reads back/])
    const { report, stderr } = run
    expect(report.peers).toBe(4)
    const detail = (name: RegExp): string => report.checks.find(c => name.test(c.name))?.detail ?? ''
    expect(report.checks.find(c => c.name.startsWith('every peer runs'))?.name).toBe('every peer runs 2.0.0')
    // the clients' own calls: none failed, and in each mixed phase every client called every store, across versions
    const calls = detail(/^every cross-class call/)
    expect(Number(/^(\d+) calls from clients to stores between the first publish and the last switch, 0 failed; /.exec(calls)?.[1])).toBeGreaterThan(20)
    expect(calls).toMatch(/stores on 1\.0\.0 and 2\.0\.0, clients on 1\.0\.0: \d+ calls, every client to every store \(.*client 1\.0\.0 \(protocol 1\) → store 2\.0\.0/)
    expect(calls).toContain('client 1.0.0 (protocol 1) → store 1.0.0')
    expect(calls).toMatch(/clients on 1\.0\.0 and 2\.0\.0, stores on 2\.0\.0: \d+ calls, every client to every store \(.*client 2\.0\.0 \(protocol 2\) → store 2\.0\.0/)
    // peer-1, peer-2 are stores (peer-2 the holdout), peer-3, peer-4 clients (peer-4 the holdout)
    expect(detail(/^the clients switched only after/)).toMatch(/^the last store, peer-2, committed 2\.0\.0 at .*; clients started peer-3 \+\d+\.\d s, peer-4 \+\d+\.\d s after it; before that, peer-3 waited on after \(1 of 2 peers of store run a version in >=2\.0\.0; waiting for 2\)$/)
    expect(detail(/^state written before the rollout/)).toMatch(/^4 seeds written on 1\.0\.0 \(2 on the stores, 2 through the clients: peer-3's on peer-[12], peer-4's on peer-[12]\) read back .* as \{ value, rev: 0 \}/)
    // the order in the timeline: the store holdout approved, then the clients' first switch
    const at = (pred: (e: Report['timeline'][number]) => boolean): number => report.timeline.find(pred)?.atMs ?? NaN
    const storeApproved = at(e => e.event === 'approve' && e.detail === 'approve store 2.0.0 on peer-2')
    const clientSwitched = at(e => (e.peer === 'peer-3' || e.peer === 'peer-4') && e.event === 'version' && e.detail.startsWith('client 2.0.0'))
    expect(storeApproved).toBeLessThan(clientSwitched)
    expect(report.timeline.some(e => e.event === 'publish' && e.detail === 'publish client 2.0.0 (1 signature) through peer-3')).toBe(true)
    expect(stderr).toMatch(/peer-3 +client 1\.0\.0 running · 2\.0\.0 waiting on after/)
    expect(stderr).toMatch(/peer-2 +store 1\.0\.0 running · 2\.0\.0 waiting on approve/)
    await expect(fs.stat(report.dir)).rejects.toThrow()
  })

  it('polyglot without python3: a clear error before anything starts', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'upgossip-nopython-'))
    try {
      const { code, stdout, stderr } = await runCli(['testnet', '--scenario', 'polyglot', '--peers', '2', '--json'], { PATH: empty })
      expect(code).toBe(1)
      expect(stdout).toBe('')
      expect(stderr).toMatch(/^upgossip: the polyglot scenario runs pykv, a Python program: python3 was not found on PATH; install Python 3 .*\[MissingPrerequisiteError\]\n$/)
    } finally {
      await fs.rm(empty, { recursive: true, force: true })
    }
  })

  it('a check that fails makes the run fail: exit 1, the failed check in the report, nothing left running', async () => {
    // one second is too short for the first step (starting the daemons): the wait times out
    const { code, stdout, stderr } = await runCli(['testnet', '--scenario', 'canary', '--peers', '2', '--step-timeout', '1s', '--json'], {}, 120_000)
    expect(code).toBe(1)
    const report = JSON.parse(stdout) as Report
    expect(report.checks.find(c => !c.ok)?.detail).toMatch(/timed out after 1 s/)
    expect(stderr).toMatch(/TestnetFailedError/)
    await expect(fs.stat(report.dir)).rejects.toThrow()
  })

  it('a usage error: unknown scenario and a bad peer count exit 2; --help lists the scenarios', async () => {
    expect((await runCli(['testnet', '--scenario', 'nope'])).code).toBe(2)
    expect((await runCli(['testnet', '--peers', '1'])).code).toBe(2)
    const few = await runCli(['testnet', '--scenario', 'classes', '--peers', '3'])
    expect(few.code).toBe(2)
    expect(few.stderr).toContain('--peers 3: the classes scenario needs at least 4 peers')
    const help = await runCli(['testnet', '--help'])
    expect(help.code).toBe(0)
    for (const s of ['rolling', 'canary', 'broken', 'partition', 'late-join', 'threshold', 'revoke', 'polyglot', 'classes']) expect(help.stdout).toContain(s)
    expect(help.stdout).toMatch(/first ceil\(N\/2\) peers stores and the rest clients/)
  })
})
