/**
 * A partial benchmark run written over the saved one (scripts/bench/saved-run.ts): the
 * sections run replace the saved ones, the others keep their figures and the run that
 * measured them, the report says which run each section and each target comes from, and
 * a saved run.json that cannot be merged is refused with the reason. Fake results: no
 * daemons, nothing measured.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeReport } from '../../scripts/bench/report.ts'
import { runOf, sectionOf, swarmResult, targets } from '../../scripts/bench/result.ts'
import type { BenchResult } from '../../scripts/bench/result.ts'
import type { ProcessResult } from '../../scripts/bench/process.ts'
import { SavedRunError, mergeRuns, parseRun, readSavedRun } from '../../scripts/bench/saved-run.ts'
import { tempDir } from '../helpers.js'

const MiB = 1048576

/** A full run as docs/benchmarks/run.json held it before runs were merged: no `sections`, no `earlierRuns`, no `process`. */
function savedBeforeMerging (): Record<string, unknown> {
  const swarmRun = { peers: 50, packageBytes: 16 * MiB, bundleBytes: 16 * MiB, swarmMs: 20_000, publishMs: 10, announceMs: 20, publisherSentBytes: 40 * MiB, publisherBlockBytes: 1, blockBytesReceived: 49 * 16 * MiB, peerServedBytes: 1, httpsMs: 4000, httpsOriginSentBytes: 49 * 16 * MiB, swarmCpuMs: 30_000, httpsCpuMs: 5000, publisherEgressRatio: 2.5, duplicateRatio: 1, timeVsHttps: 5 }
  const footprint = { idleRssMB: 99.2, idleUssMB: 40, idleRssSmallYoungGenMB: 90, appRssMB: 50, idleCpuPercent: 0.5, idlePeers: 10, idleSeconds: 60, startToControlMs: 300, startToReadyMs: 600, helpMs: 100 }
  const r = {
    benchmark: 'upgossip',
    version: '0.1.0',
    mode: 'full',
    commit: 'f42d64b',
    startedAt: '2026-11-28T02:16:34.934Z',
    wallMs: 3_148_114,
    machine: { cpus: 2, cpuModel: 'Xeon', memoryGiB: 24, node: 'v22.23.3', platform: 'linux', loadStart: 3.93, loadEnd: 1.01 },
    note: null,
    command: '--full --json',
    swarm: swarmResult([swarmRun], null, [], 'openssl'),
    announce: null,
    shim: null,
    rollout: null,
    footprint,
    simulation: null,
    targets: [] as unknown[],
    // the rollout section failed in that run
    errors: { rollout: 'the testnet did not start' }
  }
  r.targets = targets({ ...r, mode: 'full', process: null } as unknown as BenchResult)
  return r
}

function latency (p50Ms: number): ProcessResult['direct'] {
  return { count: 2000, p50Ms, p90Ms: p50Ms * 1.2, p99Ms: p50Ms * 2, meanMs: p50Ms, maxMs: p50Ms * 3 }
}

/** What `npm run bench -- --quick --only process --write` measures (without its wire "tcp" part). */
function processRun (): BenchResult {
  const process: ProcessResult = { latencyRatio: 1.5, soHopRatio: 1.3, tcpThroughputRatio: null, tcpThroughputNote: 'the TCP measurement failed (errors["process.tcp"])', app: 'node:http', requests: 2000, warmup: 200, direct: latency(0.2), sameVersion: latency(0.3), soHop: latency(0.39), ownProxy: latency(0.25), cpu: null, method: '', tcp: null }
  const r: BenchResult = {
    benchmark: 'upgossip',
    version: '0.2.0',
    mode: 'quick',
    commit: 'abc1234',
    startedAt: '2026-12-06T09:30:00.000Z',
    wallMs: 180_000,
    machine: { cpus: 2, cpuModel: 'Xeon', memoryGiB: 24, node: 'v22.23.3', platform: 'linux', loadStart: 0.4, loadEnd: 0.6 },
    note: 'a quiet machine',
    command: '--quick --only process --write',
    sections: ['process'],
    swarm: null,
    announce: null,
    shim: null,
    rollout: null,
    footprint: null,
    simulation: null,
    process,
    targets: [],
    errors: { 'process.tcp': 'the sink did not answer' },
    earlierRuns: []
  }
  r.targets = targets(r)
  return r
}

const SAVED = 'docs/benchmarks/run.json'

describe('a saved run.json, read back', () => {
  it('reads a run saved before merging: its sections are those with figures or an error, sections added since are null', () => {
    const saved = parseRun(JSON.stringify(savedBeforeMerging()), SAVED)
    expect(saved.sections).toEqual(['swarm', 'rollout', 'footprint'])
    expect(saved.earlierRuns).toEqual([])
    expect(saved.process).toBeNull()
    expect(saved.command).toBe('--full --json')
    // npm's banner before the object (`npm run bench -- --json > FILE`) is skipped
    expect(parseRun(`\n> upgossip@0.1.0 bench\n> node scripts/bench.ts\n\n${JSON.stringify(savedBeforeMerging())}`, SAVED).commit).toBe('f42d64b')
  })

  it('refuses a file it cannot merge into, naming the file, what is wrong, and --replace', () => {
    const good = savedBeforeMerging()
    const bad: Array<[string, string, RegExp]> = [
      ['not JSON', '{"benchmark": "upgossip", ', /not JSON/],
      ['another program\'s JSON', JSON.stringify({ name: 'x' }), /not the JSON of an upgossip bench run/],
      ['a section of the wrong type', JSON.stringify({ ...good, swarm: 'fast' }), /"swarm" is not an object/],
      ['an unknown mode', JSON.stringify({ ...good, mode: 'huge' }), /"mode" is "huge"/],
      ['no machine', JSON.stringify({ ...good, machine: null }), /"machine" lacks/],
      ['an unknown section', JSON.stringify({ ...good, sections: ['swarm', 'gpu'], earlierRuns: [] }), /"sections" names "gpu"/],
      ['two runs claiming one section', JSON.stringify({ ...good, sections: ['swarm', 'footprint', 'rollout'], earlierRuns: [{ ...good, sections: ['swarm'] }] }), /both the run and earlierRuns\[0\] claim the swarm section/],
      ['figures no run measured', JSON.stringify({ ...good, sections: ['footprint', 'rollout'], earlierRuns: [] }), /"swarm" has figures, but no run in the file measured it/],
      ['an error of no section', JSON.stringify({ ...good, errors: { gpu: 'x' } }), /"errors" has "gpu"/],
      ['targets that are not targets', JSON.stringify({ ...good, targets: [{ name: 'x' }] }), /targets\[0\] is not a target/]
    ]
    for (const [what, text, reason] of bad) {
      const read = (): BenchResult => parseRun(text, SAVED)
      expect(read, what).toThrow(SavedRunError)
      expect(read, what).toThrow(reason)
      expect(read, what).toThrow(/^docs\/benchmarks\/run\.json: .*; fix or remove it, or write this run's report alone with --replace$/)
    }
  })

  it('finds no saved run where there is no file, and refuses a file it cannot read', async () => {
    const dir = await tempDir()
    expect(readSavedRun(path.join(dir, 'run.json'))).toBeNull()
    await fs.writeFile(path.join(dir, 'run.json'), '[]')
    expect(() => readSavedRun(path.join(dir, 'run.json'))).toThrow(/run\.json: not the JSON of an upgossip bench run/)
  })
})

describe('a partial run merged into the saved one', () => {
  it('replaces the sections it ran, keeps the others with their errors and their run, and checks each target on its own run\'s figures', () => {
    const saved = parseRun(JSON.stringify(savedBeforeMerging()), SAVED)
    const run = processRun()
    const merged = mergeRuns(saved, run)
    // the run's own fields are the new run's
    expect(merged).toMatchObject({ mode: 'quick', commit: 'abc1234', sections: ['process'], note: 'a quiet machine' })
    expect(merged.process).toEqual(run.process)
    // the swarm and the footprint are the saved ones, the rollout still failed in the saved run
    expect(merged.swarm).toEqual(saved.swarm)
    expect(merged.footprint).toEqual(saved.footprint)
    expect(merged.errors).toEqual({ rollout: 'the testnet did not start', 'process.tcp': 'the sink did not answer' })
    expect(merged.earlierRuns).toEqual([{ version: '0.1.0', mode: 'full', commit: 'f42d64b', startedAt: '2026-11-28T02:16:34.934Z', wallMs: 3_148_114, machine: saved.machine, note: null, command: '--full --json', sections: ['swarm', 'rollout', 'footprint'] }])
    // each target: its section's figures and run
    const byName = Object.fromEntries(merged.targets.map(t => [t.name, { value: t.value, met: t.met, commit: runOf(merged, sectionOf(t.name))?.commit ?? null }]))
    expect(byName['swarm.publisherEgressRatio']).toEqual({ value: 2.5, met: false, commit: 'f42d64b' })
    expect(byName['footprint.idleRssMB']).toEqual({ value: 99.2, met: true, commit: 'f42d64b' })
    expect(byName['process.latencyRatio']).toEqual({ value: 1.5, met: true, commit: 'abc1234' })
    expect(byName['process.soHopRatio']).toEqual({ value: 1.3, met: false, commit: 'abc1234' })
    expect(byName['rollout.failedRequests']).toEqual({ value: null, met: null, commit: 'f42d64b' })
    expect(byName['shim.latencyRatio']).toEqual({ value: null, met: null, commit: null })
    // what is written reads back the same
    expect(parseRun(JSON.stringify(merged), SAVED)).toEqual(merged)
  })

  it('drops an earlier run once every section of its own is run again, and its errors with it', () => {
    const first = mergeRuns(parseRun(JSON.stringify(savedBeforeMerging()), SAVED), processRun())
    // the rollout and the footprint run again, and the rollout works this time
    const rollout: BenchResult = { ...processRun(), commit: 'def5678', startedAt: '2026-12-07T10:00:00.000Z', command: '--only rollout,footprint --write', sections: ['rollout', 'footprint'], process: null, footprint: { ...first.footprint as NonNullable<BenchResult['footprint']>, idleRssMB: 120 }, errors: {}, note: null }
    const second = mergeRuns(parseRun(JSON.stringify(first), SAVED), rollout)
    expect(second.earlierRuns.map(x => [x.commit, x.sections])).toEqual([['abc1234', ['process']], ['f42d64b', ['swarm']]])
    expect(second.errors).toEqual({ 'process.tcp': 'the sink did not answer' })
    expect(second.targets.find(t => t.name === 'footprint.idleRssMB')).toMatchObject({ value: 120, met: false })
    expect(second.process).toEqual(first.process)
    // a section run again that fails now: its old figures are not kept, its failure is
    const failed: BenchResult = { ...processRun(), commit: 'fff0000', startedAt: '2026-12-08T10:00:00.000Z', process: null, errors: { process: 'the app did not start' } }
    const third = mergeRuns(second, failed)
    expect(third.process).toBeNull()
    expect(third.errors).toEqual({ process: 'the app did not start' })
    expect(third.earlierRuns.map(x => x.commit)).toEqual(['def5678', 'f42d64b'])
    // a run of every section keeps nothing
    const all: BenchResult = { ...failed, sections: ['swarm', 'announce', 'shim', 'process', 'rollout', 'footprint', 'simulation'] }
    expect(mergeRuns(third, all).earlierRuns).toEqual([])
  })

  it('writes a report that names the run of each section and of each target', async () => {
    const merged = mergeRuns(parseRun(JSON.stringify(savedBeforeMerging()), SAVED), processRun())
    const dir = await tempDir()
    await writeReport(merged, path.join(dir, 'benchmarks.md'))
    const md = await fs.readFile(path.join(dir, 'benchmarks.md'), 'utf8')
    // at the top, both runs, newest first, with the sections each made
    expect(md).toContain('This page puts together the figures of 2 runs, newest first')
    expect(md).toMatch(/^- \*\*process\*\*: `npm run bench -- --quick --only process` \(\*\*quick mode\*\*\) on 2026-12-06 09:30 UTC, upgossip 0\.2\.0 at commit `abc1234`, in 3\.0 min\. Machine: 2 × Xeon/m)
    expect(md).toMatch(/^- \*\*swarm, rollout, footprint\*\*: `npm run bench -- --full` \(\*\*full mode\*\*\) on 2026-11-28 02:16 UTC, upgossip 0\.1\.0 at commit `f42d64b`, in 52\.5 min\./m)
    expect(md).toContain('> **A draft from a quick run** (process, run of 2026-12-06 09:30 UTC).')
    expect(md).toContain('> **Conditions of the run of 2026-12-06 09:30 UTC:** a quiet machine')
    expect(md).toContain('> **Noisy figures in the run of 2026-11-28 02:16 UTC.** The load average went above the number of CPUs: the benchmark\'s own daemons (up to 50, each with its app)')
    // the targets: each with the run that measured it
    expect(md).toMatch(/^\| `process\.latencyRatio` \| [^|]+ \| 1\.5 \| \*\*met\*\* \| quick, 2026-12-06 09:30 UTC, `abc1234` \|$/m)
    expect(md).toMatch(/^\| `swarm\.publisherEgressRatio` \| [^|]+ \| 2\.5 \| \*\*missed\*\* \| full, 2026-11-28 02:16 UTC, `f42d64b` \|$/m)
    expect(md).toMatch(/^\| `shim\.latencyRatio` \| [^|]+ \| – \| not measured \| – \|$/m)
    // a failure is said to be of the run it happened in
    expect(md).toContain('> The rollout section failed in the run of 2026-11-28 02:16 UTC: the testnet did not start')
    expect(md).toContain('> The process.tcp section failed in the run of 2026-12-06 09:30 UTC: the sink did not answer')
    // under each section's heading, its run
    expect(md).toContain('## Process apps\n\n*Measured by `npm run bench -- --quick --only process` (quick mode) on 2026-12-06 09:30 UTC at commit `abc1234`; 1-minute load average 0.4 → 0.6 on 2 CPUs; conditions: a quiet machine.*')
    expect(md).toContain('## Swarm against an HTTPS origin\n\n*Measured by `npm run bench -- --full` (full mode) on 2026-11-28 02:16 UTC at commit `f42d64b`; 1-minute load average 3.93 → 1.01 on 2 CPUs (noisy).*')
    expect(md).toContain('## Footprint\n\n*Measured by `npm run bench -- --full` (full mode)')
    // the rollout failed in the full run: its target is listed with what that run has
    expect(md).toContain('Targets their full runs could not measure, with the figures they have:')
  })

  it('leaves a report of one run as it was: no list of runs, no line under each heading', async () => {
    const saved = parseRun(JSON.stringify(savedBeforeMerging()), SAVED)
    const dir = await tempDir()
    await writeReport(saved, path.join(dir, 'benchmarks.md'))
    const md = await fs.readFile(path.join(dir, 'benchmarks.md'), 'utf8')
    expect(md).toContain('Generated by `npm run bench -- --full` (**full mode**) on 2026-11-28 02:16 UTC, upgossip 0.1.0 at commit `f42d64b`, in 52.5 min.')
    expect(md).toMatch(/^\| figure \| target \| this run \| +\|$/m)
    expect(md).not.toContain('*Measured by')
    expect(md).toContain('> The rollout section failed in this run: the testnet did not start')
  })
})
