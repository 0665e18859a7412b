/**
 * The benchmark scripts keep working: their arithmetic, the report writer, the simulator
 * on 100 peers, and the JSON of a tiny run on real daemons. Benchmarks are not tests:
 * nothing here asserts a time.
 */
import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { certificateWithNodeCrypto } from '../../scripts/bench/certificate.ts'
import { metricSum, parseMetrics, releaseBytesOut } from '../../scripts/bench/prometheus.ts'
import { writeReport } from '../../scripts/bench/report.ts'
import { swarmResult, targets } from '../../scripts/bench/result.ts'
import type { BenchResult } from '../../scripts/bench/result.ts'
import { quantile, ratio, summarize, swarmRatios } from '../../scripts/bench/stats.ts'
import { mostAtOnce } from '../../scripts/bench/rollout.ts'
import { simulateRollout } from '../../scripts/sim/simulator.ts'
import { tempDir } from '../helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

describe('benchmark arithmetic', () => {
  it('computes the swarm ratios of issue 7 from raw figures', () => {
    const MiB = 1048576
    expect(swarmRatios({ peers: 10, packageBytes: 4 * MiB, publisherSentBytes: 6 * MiB, blockBytesReceived: 36 * MiB, swarmMs: 900, httpsMs: 600 }))
      .toEqual({ publisherEgressRatio: 1.5, duplicateRatio: 1, timeVsHttps: 1.5 })
    expect(ratio(1, 0)).toBeNull()
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2)
    expect(summarize([5, 1, 3]).p50Ms).toBe(3)
    expect(mostAtOnce([{ start: 0, end: 10 }, { start: 5, end: 15 }, { start: 10, end: 20 }])).toBe(2)
  })

  it('reads Prometheus text and leaves beats and app traffic out of the release bytes', () => {
    const m = parseMetrics([
      '# HELP upgossip_bytes_total Bytes',
      'upgossip_bytes_total{protocol="/upgossip/blocks/1.0.0",direction="out"} 1000',
      'upgossip_bytes_total{protocol="upgossip/default/status",direction="out"} 50',
      'upgossip_bytes_total{protocol="upgossip/default/releases",direction="out"} 7',
      'upgossip_bytes_total{protocol="/upgossip/app/kv/1",direction="out"} 9',
      'upgossip_block_bytes_total{direction="in"} 4096'
    ].join('\n'))
    expect(releaseBytesOut(m)).toBe(1007)
    expect(metricSum(m, 'upgossip_block_bytes_total', { direction: 'in' })).toBe(4096)
  })

  it('makes a certificate for localhost without openssl', () => {
    const cert = new X509Certificate(certificateWithNodeCrypto().cert)
    expect(cert.checkHost('localhost')).toBe('localhost')
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1')
    expect(cert.verify(cert.publicKey)).toBe(true)
  })

  it('checks the targets and writes a report with its plots from any result', async () => {
    const run = { peers: 50, packageBytes: 16 * 1048576, bundleBytes: 1, swarmMs: 2000, publishMs: 10, announceMs: 20, publisherSentBytes: 20 * 1048576, publisherBlockBytes: 1, blockBytesReceived: 49 * 16 * 1048576, peerServedBytes: 1, httpsMs: 1000, httpsOriginSentBytes: 49 * 16 * 1048576, swarmCpuMs: 3000, httpsCpuMs: 500, publisherEgressRatio: 1.25, duplicateRatio: 1, timeVsHttps: 2 }
    const result: BenchResult = {
      benchmark: 'upgossip', version: '0', mode: 'full', commit: null, startedAt: new Date().toISOString(), wallMs: 1,
      machine: { cpus: 2, cpuModel: 'x', memoryGiB: 1, node: 'v22', platform: 'linux', loadStart: 1, loadEnd: 1 },
      note: null,
      swarm: swarmResult([run], null, [], 'openssl'), announce: null, shim: null, rollout: null, footprint: null, simulation: null, targets: [], errors: {}
    }
    result.targets = targets(result)
    const byName = Object.fromEntries(result.targets.map(t => [t.name, t]))
    expect(byName['swarm.publisherEgressRatio at N = 50']?.met).toBe(true)
    expect(byName['swarm.timeVsHttps at N = 50, 16 MiB']?.met).toBe(false)
    expect(byName['announce.ratio']?.met).toBeNull()
    const dir = await tempDir()
    const written = await writeReport(result, path.join(dir, 'benchmarks.md'))
    const md = await fs.readFile(path.join(dir, 'benchmarks.md'), 'utf8')
    expect(md).toMatch(/swarm\.timeVsHttps at N = 50, 16 MiB.*\*\*missed\*\*/)
    expect(md).toContain('On one machine the swarm cannot beat the origin')
    expect(written.some(f => f.endsWith('.svg'))).toBe(true)
    for (const f of written.filter(x => x.endsWith('.svg'))) expect(await fs.readFile(f, 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\n$/)
  })
})

describe('the simulator', () => {
  it('rolls 100 peers out within the rolling limit, and its shortcut gives what asking the engine for every peer gives', async () => {
    const params = { peers: 100, rules: [{ rule: 'rolling' as const, maxFraction: 0.1 }], beatMs: 1000, fetchMs: 2000, switchMs: 2000, seed: 7 }
    const fast = await simulateRollout(params)
    const slow = await simulateRollout({ ...params, exhaustive: true })
    expect(fast.rolloutMs).not.toBeNull()
    expect(fast.slotLimit).toBe(10)
    expect(fast.peakConcurrent).toBeLessThanOrEqual(10)
    expect(fast.timeline.at(-1)?.done).toBe(100)
    expect({ ms: fast.rolloutMs, peak: fast.peakConcurrent, backoffs: fast.backoffs }).toEqual({ ms: slow.rolloutMs, peak: slow.peakConcurrent, backoffs: slow.backoffs })
  })

  it('lets a canary rule alone switch everyone else at once after the soak', async () => {
    const r = await simulateRollout({ peers: 100, rules: [{ rule: 'canary', fraction: 0.1, soak: '10s' }], beatMs: 1000, fetchMs: 1000, switchMs: 3000, seed: 3 })
    expect(r.rolloutMs).not.toBeNull()
    expect(r.peakConcurrent).toBeGreaterThan(50)
    const exhaustive = await simulateRollout({ peers: 100, rules: [{ rule: 'canary', fraction: 0.1, soak: '10s' }], beatMs: 1000, fetchMs: 1000, switchMs: 3000, seed: 3, exhaustive: true })
    expect(exhaustive.rolloutMs).toBe(r.rolloutMs)
  })
})

describe('npm run bench -- --tiny --json', () => {
  it('prints one JSON object with the fields of issue 7 (swarm and simulation on 3 daemons)', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'bench.ts'), '--tiny', '--json', '--only', 'swarm,simulation'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      child.stdout.on('data', d => { out += String(d) })
      child.stderr.on('data', d => { err += String(d) })
      child.on('error', reject)
      child.on('close', c => { resolve({ code: c, stdout: out, stderr: err }) })
    })
    expect(code, stderr).toBe(0)
    const r = JSON.parse(stdout) as BenchResult
    expect(Object.keys(r)).toEqual(['benchmark', 'version', 'mode', 'commit', 'startedAt', 'wallMs', 'machine', 'note', 'command', 'swarm', 'announce', 'shim', 'rollout', 'footprint', 'simulation', 'targets', 'errors'])
    expect(r.errors).toEqual({})
    expect(r.swarm).toMatchObject({ publisherEgressRatio: expect.any(Number), duplicateRatio: expect.any(Number), timeVsHttps: expect.any(Number) })
    const run = r.swarm?.runs[0]
    expect(run?.peers).toBe(3)
    // the two peers fetched the package, each block once, about one copy from the publisher
    expect(run?.duplicateRatio).toBeGreaterThan(0.9)
    expect(run?.duplicateRatio).toBeLessThanOrEqual(1.1)
    expect(r.swarm?.delta?.fractionOfPackage).toBeLessThan(0.01)
    expect(r.simulation?.map(s => s.policy)).toEqual(['rolling', 'canary', 'canary+rolling'])
    expect(r.targets.map(t => t.name)).toContain('shim.latencyRatio')
    expect(r.announce).toBeNull()
    expect(r.command).toBe('--tiny --json --only swarm,simulation')

    // --report writes the report again from that JSON, running nothing
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'run.json'), stdout)
    const again = await new Promise<{ code: number | null, stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'bench.ts'), '--report', path.join(dir, 'run.json'), '--out', path.join(dir, 'benchmarks.md')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
      let err = ''
      child.stderr.on('data', d => { err += String(d) })
      child.on('error', reject)
      child.on('close', c => { resolve({ code: c, stderr: err }) })
    })
    expect(again.code, again.stderr).toBe(0)
    const md = await fs.readFile(path.join(dir, 'benchmarks.md'), 'utf8')
    expect(md).toContain('Generated by `npm run bench -- --tiny --only swarm,simulation` (**tiny mode**)')
    // the swarm table has the run's row, from the JSON's figures
    expect(md).toMatch(new RegExp(`^\\| 3 \\| .* \\| ${r.swarm?.runs[0]?.publisherEgressRatio ?? 'none'} \\|`, 'm'))
    expect(await fs.readdir(path.join(dir, 'benchmarks'))).toContain('simulation.svg')
  }, 90_000)
})
