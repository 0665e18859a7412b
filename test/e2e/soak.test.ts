/**
 * The soak scenario, short: `upgossip testnet --scenario soak` cycles 1.0.0 → 2.0.i →
 * revoked → 1.0.0 under client load for a minute while it samples every
 * daemon's memory. The long runs are in docs/soak.md; this one proves in every CI run that
 * the scenario runs, cycles more than once, samples enough memory to judge a trend, and
 * holds all of its checks.
 */
import fs from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { runCli } from './support/testnet.js'

interface SoakReport {
  scenario: string
  peers: number
  requests: { sent: number, failed: number }
  checks: Array<{ name: string, ok: boolean, detail: string }>
  memory?: { samples: unknown[], earlyMb: number, lateMb: number }
  dir: string
  kept: boolean
}

describe('upgossip testnet --scenario soak', { timeout: 300_000 }, () => {
  it('cycles upgrade and revocation under load for a minute: no failed request, memory sampled and flat', async () => {
    const { code, stdout, stderr } = await runCli(['testnet', '--scenario', 'soak', '--peers', '3', '--minutes', '1', '--json'], {}, 280_000)
    let report: SoakReport
    try {
      report = JSON.parse(stdout) as SoakReport
    } catch {
      throw new Error(`stdout is not one JSON object (exit ${code}):\n${stdout.slice(0, 500)}\nstderr:\n${stderr.slice(-3000)}`)
    }
    const failed = report.checks.filter(c => !c.ok)
    expect(failed, `failed checks:\n${JSON.stringify(failed, null, 2)}\n${stderr.slice(-4000)}`).toEqual([])
    expect(code).toBe(0)
    expect(report.scenario).toBe('soak')
    expect(report.peers).toBe(3)
    const cycles = report.checks.find(c => c.name.startsWith('soak: ') && c.name.includes('cycles'))
    expect(cycles, report.checks.map(c => c.name).join(' | ')).toBeDefined()
    // more than one whole cycle: the second one runs on a network that has already revoked a release
    expect(Number(/soak: (\d+) cycles/.exec(cycles?.name ?? '')?.[1])).toBeGreaterThanOrEqual(2)
    expect(report.checks.find(c => c.name === 'soak: daemon memory shows no growth trend')?.ok).toBe(true)
    expect(report.memory?.samples.length).toBeGreaterThanOrEqual(8)
    expect(report.requests.sent).toBeGreaterThan(100)
    expect(report.requests.failed).toBe(0)
    expect(report.kept).toBe(false)
    await expect(fs.stat(report.dir)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
