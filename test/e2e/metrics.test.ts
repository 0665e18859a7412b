/**
 * What an operator scrapes, checked by Prometheus's own tool on a real daemon: `/metrics`
 * after an upgrade, calls across versions and a rollback passes `promtool check metrics`
 * and says what happened (the running app, switches by kind and outcome with their
 * durations, calls by outcome with latency by SO hops, the process defaults). The
 * example alert rules pass `promtool check rules`, and every metric they and the Grafana
 * dashboard's panels name is one the daemon exposes, so docs/monitoring/ stays valid.
 *
 * promtool is Debian's `prometheus` package (`.ci/run` installs it). Without it the test
 * is skipped with a warning, unless `CI=true` or `UPGOSSIP_REQUIRE_PROMTOOL=1` (`.ci/run`),
 * where that is a failure.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { kv3Version } from './support/kv3-app.js'
import { TestNet, runCli, waitFor } from './support/testnet.js'

const havePromtool = spawnSync('promtool', ['--version']).status === 0
const requirePromtool = process.env.CI === 'true' || process.env.UPGOSSIP_REQUIRE_PROMTOOL === '1'
if (!havePromtool && !requirePromtool) {
  console.warn('metrics.test.ts: skipped, no promtool on PATH (install Debian\'s "prometheus" package; CI=true or UPGOSSIP_REQUIRE_PROMTOOL=1 makes this a failure)')
}

const ROOT = new URL('../..', import.meta.url).pathname
const ALERTS = `${ROOT}docs/monitoring/alerts.yml`
const DASHBOARD = `${ROOT}docs/monitoring/grafana-dashboard.json`

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

/** Run promtool with `input` on stdin; its exit code and what it said. */
function promtool (args: string[], input?: string): { code: number | null, output: string } {
  const r = spawnSync('promtool', args, { input, encoding: 'utf8' })
  return { code: r.status, output: `${r.stdout}${r.stderr}` }
}

/** The metric families `/metrics` names (from `# TYPE`), with a histogram's series names. */
function exposedNames (text: string): Set<string> {
  const names = new Set<string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m
    names.add(name)
    if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s)
  }
  return names
}

// PromQL words that look like metric names: functions, aggregations, keywords
const PROMQL_WORDS = new Set(['sum', 'min', 'max', 'avg', 'count', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'rate', 'irate', 'increase', 'delta', 'changes', 'resets', 'histogram_quantile', 'time', 'timestamp', 'absent', 'up', 'bool', 'offset', 'label_replace', 'clamp_min', 'clamp_max', 'topk', 'bottomk', 'le', 'vector', 'scalar', 'abs', 'max_over_time', 'min_over_time', 'avg_over_time', 'sum_over_time', 'last_over_time', 'job', 'instance'])

/** The metric names a PromQL expression reads (label matchers, strings and durations left out). */
function metricNames (expr: string): string[] {
  const stripped = expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, '').replace(/\[[^\]]*\]/g, '').replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
  return [...new Set([...stripped.matchAll(/\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map(m => m[0]).filter(w => !PROMQL_WORDS.has(w) && !/^\d/.test(w) && !/^(Inf|NaN)$/.test(w)))]
}

/** Every `expr` of a Grafana dashboard's panels (rows' panels included). */
function panelExprs (dashboard: { panels?: unknown[] }): Array<{ panel: string, expr: string }> {
  const out: Array<{ panel: string, expr: string }> = []
  const visit = (panels: unknown[] | undefined): void => {
    for (const p of panels ?? []) {
      const panel = p as { title?: string, panels?: unknown[], targets?: Array<{ expr?: string }> }
      for (const t of panel.targets ?? []) if (typeof t.expr === 'string') out.push({ panel: panel.title ?? '?', expr: t.expr })
      visit(panel.panels)
    }
  }
  visit(dashboard.panels)
  return out
}

describe('metrics', () => {
  it.runIf(havePromtool || requirePromtool)('a daemon that upgraded, called across versions and rolled back exposes metrics promtool accepts, and docs/monitoring names only those', async () => {
    if (!havePromtool) throw new Error('CI=true or UPGOSSIP_REQUIRE_PROMTOOL=1 but there is no promtool on PATH: install Debian\'s "prometheus" package')
    net = await TestNet.create()
    const v1 = await net.releaseFiles(kv3Version(1))
    const v2 = await net.releaseFiles(kv3Version(2, { schedule: [{ rule: 'approve' }] }))
    const a = await net.start('a', ['--install', v1.file])
    const b = await net.start('b', ['--install', v1.file, '--bootstrap', a.addr])
    await a.waitVersion('1.0.0')
    await b.waitVersion('1.0.0')
    expect((await runCli(['publish', v2.file, '--data', a.dataDir])).code).toBe(0)
    await b.waitStaged(v2.id)
    // a alone moves to 2.0.0: its calls to b (on 1.0.0) go through one SO
    expect((await runCli(['approve', v2.id, '--data', a.dataDir])).code).toBe(0)
    await a.waitVersion('2.0.0')
    await waitFor('a to see b', async () => (await a.status()).network.some(p => p.peerId === b.peerId && p.version === '1.0.0'))
    await a.callPeer(b.peerId, { action: 'set', k: 'x', v: 1 })
    expect(await a.callPeer(b.peerId, { action: 'fetch', k: 'x' })).toMatchObject({ result: 1 })

    const upgraded = await a.metrics()
    expect(upgraded).toContain('upgossip_app_info{app="kv",version="2.0.0",protocol="2"} 1')
    expect(await a.metric('upgossip_switches_total', { kind: 'upgrade', outcome: 'committed' })).toBe(1)
    expect(await a.metric('upgossip_switch_duration_seconds_count', { kind: 'upgrade', outcome: 'committed' })).toBe(1)
    expect(await a.metric('upgossip_switch_held_requests_count', { kind: 'upgrade' })).toBe(1)
    expect(await a.metric('upgossip_app_calls_total', { outcome: 'ok' })).toBe(2)
    expect(await a.metric('upgossip_app_call_duration_seconds_count', { hops: '1' })).toBe(2)
    expect(await a.metric('process_cpu_seconds_total')).toBeGreaterThan(0)
    expect(upgraded).toMatch(/^nodejs_heap_size_used_bytes \d+/m)
    // b waits on the operator's approval of 2.0.0
    expect(await b.metric('upgossip_releases_waiting', { rule: 'approve' })).toBe(1)

    expect((await runCli(['rollback', '--data', a.dataDir])).code).toBe(0)
    await a.waitVersion('1.0.0')
    const text = await a.metrics()
    expect(text).toContain('upgossip_app_info{app="kv",version="1.0.0",protocol="1"} 1')
    expect(await a.metric('upgossip_switches_total', { kind: 'downgrade', outcome: 'committed' })).toBe(1)

    const checked = promtool(['check', 'metrics'], text)
    expect(checked.output.trim()).toBe('')
    expect(checked.code).toBe(0)

    // the example alerts are valid rules, and they and the dashboard name only metrics a daemon exposes
    const rules = promtool(['check', 'rules', ALERTS])
    expect(rules.code, rules.output).toBe(0)
    const exposed = exposedNames(text)
    const alertExprs = [...(await fs.readFile(ALERTS, 'utf8')).matchAll(/^\s*expr:\s*(.+)$/gm)].map(m => ({ panel: 'alerts.yml', expr: m[1] }))
    const dashboard = JSON.parse(await fs.readFile(DASHBOARD, 'utf8')) as { panels?: unknown[] }
    const exprs = [...alertExprs, ...panelExprs(dashboard)]
    expect(alertExprs.length).toBeGreaterThanOrEqual(4)
    expect(panelExprs(dashboard).length).toBeGreaterThanOrEqual(5)
    const unknown = exprs.flatMap(({ panel, expr }) => metricNames(expr).filter(n => !exposed.has(n)).map(n => `${panel}: ${n} (in ${expr})`))
    expect(unknown).toEqual([])
  })
})
