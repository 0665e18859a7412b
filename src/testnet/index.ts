/**
 * `testnet/` — a local network of real `upgossip daemon` processes on loopback running
 * the demo app (`testnet/apps/kv/`, the Python `testnet/apps/pykv/`, or the two classes of
 * `testnet/apps/classes/`) through a scenario of upgrades while clients keep
 * calling every peer, ending in a report of checks. Behind `upgossip testnet`.
 *
 * @example
 * ```ts
 * const net = new Testnet({ peers: 4, keep: false, stepTimeoutMs: 120_000, sink: { write: t => process.stderr.write(t), isTTY: false } })
 * const report = await runScenario(net, SCENARIOS.rolling)
 * console.log(report.checks.every(c => c.ok))
 * ```
 */
import { mostGrowth } from './memory.js'
import type { Testnet, TestnetReport } from './testnet.js'
import type { Scenario } from './scenarios.js'

export { SCENARIOS } from './scenarios.js'
export type { Scenario } from './scenarios.js'
export { Testnet, kvNative } from './testnet.js'
export { CLIENT_APP, STORE_APP, CLASSES_MIN_PEERS } from './classes.js'
export type { ClientStats } from './classes.js'
export { KV_APP, PYKV_APP, PYKV_CODECS, MissingPrerequisiteError, requirePython } from './apps.js'
export type { TestnetApp } from './apps.js'
export type { TestnetCheck, TestnetOptions, TestnetReport } from './testnet.js'
export { DaemonProcess, ControlCallError, DaemonProcessError, UPGOSSIP_BIN, pollUntil, sleep } from './daemon-process.js'
export { Workspace, DEMO_APP_DIR } from './workspace.js'
export { LoadGenerator, KV_CODECS, kvCodec, percentile } from './load.js'
export { Monitor } from './monitor.js'
export { MemorySampler, memoryReport, mostGrowth, residentBytes } from './memory.js'
export type { MemoryReport, MemorySample } from './memory.js'
export type { TimelineEntry, ViewSink } from './monitor.js'

/** Run `scenario` on `net` and stop it (unless kept); never throws: a failure is a failed check. */
export async function runScenario (net: Testnet, scenario: Scenario): Promise<TestnetReport> {
  const started = Date.now()
  let dashboard: string | undefined
  try {
    await scenario.preflight?.()
    const [publishers, threshold] = scenario.trust ?? [1, 1]
    await net.prepare(publishers, threshold, scenario.app, scenario.otherApps)
    const version = await scenario.run(net)
    dashboard = net.peers[0]?.dashboardUrl
    const load = await net.load.stop()
    await net.finalChecks(version, load)
  } catch (err) {
    net.check(`scenario "${scenario.name}" ran to its end`, false, (err as Error).message)
  }
  const load = net.load == null ? { sent: 0, failed: 0, p50Ms: 0, p99Ms: 0, failures: [] } : await net.load.stop()
  await net.monitor.stop()
  const report: TestnetReport = {
    scenario: scenario.name,
    peers: net.peers.length,
    durationMs: Date.now() - started,
    requests: { sent: load.sent, failed: load.failed, p50Ms: load.p50Ms, p99Ms: load.p99Ms },
    checks: net.checks,
    timeline: net.monitor.timeline,
    failures: load.failures,
    dir: net.ws?.root ?? '',
    kept: net.options.keep,
    ...(net.options.keep && dashboard != null ? { dashboard } : {}),
    ...(net.memory == null ? {} : { memory: net.memory })
  }
  await net.close()
  return report
}

/** The report for people: checks, requests, and where things are. */
export function formatReport (r: TestnetReport): string {
  const ok = r.checks.length > 0 && r.checks.every(c => c.ok)
  const lines = [
    `testnet ${r.scenario}: ${r.peers} peers, ${(r.durationMs / 1000).toFixed(1)} s — ${ok ? 'every check held' : 'FAILED'}`,
    `requests: ${r.requests.sent} sent, ${r.requests.failed} failed, p50 ${r.requests.p50Ms} ms, p99 ${r.requests.p99Ms} ms`,
    ...r.checks.map(c => `  ${c.ok ? '✓' : '✗'} ${c.name} — ${c.detail}`)
  ]
  if (r.memory != null) {
    const worst = mostGrowth(r.memory)
    lines.push(`memory: mean daemon RSS ${r.memory.earlyMb} MiB after warm-up, ${r.memory.lateMb} MiB at the end (${r.memory.growthPct >= 0 ? '+' : ''}${r.memory.growthPct} %), ${r.memory.samples.length} samples` +
      (worst == null ? '' : `; most growth: ${worst.name} ${worst.earlyMb} → ${worst.lateMb} MiB (${worst.growthPct >= 0 ? '+' : ''}${worst.growthPct} %)`))
  }
  if (r.kept) {
    lines.push(`kept running in ${r.dir} (logs in ${r.dir}/logs); stop with: kill $(cat ${r.dir}/pids)`)
    if (r.dashboard != null) lines.push(`dashboard: ${r.dashboard}`)
  }
  return lines.join('\n')
}
