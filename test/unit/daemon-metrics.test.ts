/**
 * The daemon's metrics as a scrape reads them: fetch progress and the running app read at
 * scrape time (gone once a fetch ends or no app runs), switches and calls counted with
 * bounded labels (SO hops beyond 4 are one `5+` series).
 */
import { describe, expect, it } from 'vitest'
import { DaemonMetrics } from '../../src/daemon/index.js'
import type { FetchProgress, RunningApp } from '../../src/daemon/index.js'

describe('daemon metrics', () => {
  it('reads fetch progress and the running app when scraped, and drops them when they are gone', async () => {
    const metrics = new DaemonMetrics({ processDefaults: false })
    let fetching: FetchProgress[] = [{ app: 'kv', version: '2.0.0', have: 1024, size: 4096 }]
    let running: RunningApp | undefined = { app: 'kv', version: '1.0.0', protocol: 1 }
    metrics.observe({ fetching: () => fetching, running: () => running, waiting: () => ({ 'halt-on-failures': 1 }) })
    let text = await metrics.text()
    expect(text).toContain('upgossip_fetch_bytes{app="kv",version="2.0.0"} 1024')
    expect(text).toContain('upgossip_fetch_size_bytes{app="kv",version="2.0.0"} 4096')
    expect(text).toContain('upgossip_app_info{app="kv",version="1.0.0",protocol="1"} 1')
    expect(text).toContain('upgossip_releases_waiting{rule="halt-on-failures"} 1')
    fetching = []
    running = undefined
    text = await metrics.text()
    expect(text).not.toMatch(/^upgossip_fetch_bytes\{/m)
    expect(text).not.toMatch(/^upgossip_app_info\{/m)
  })

  it('counts switches and calls with bounded labels', async () => {
    const metrics = new DaemonMetrics({ processDefaults: false })
    metrics.switched({ kind: 'upgrade', outcome: 'rolled-back', seconds: 3, held: 7 })
    metrics.called('ok', 0.002, 1)
    metrics.called('unreachable', 5, 9)
    const text = await metrics.text()
    expect(text).toContain('upgossip_switches_total{kind="upgrade",outcome="rolled-back"} 1')
    expect(text).toContain('upgossip_switch_duration_seconds_bucket{le="5",kind="upgrade",outcome="rolled-back"} 1')
    expect(text).toContain('upgossip_switch_held_requests_sum{kind="upgrade"} 7')
    expect(text).toContain('upgossip_app_calls_total{outcome="unreachable"} 1')
    expect(text).toContain('upgossip_app_call_duration_seconds_count{hops="1"} 1')
    expect(text).toContain('upgossip_app_call_duration_seconds_count{hops="5+"} 1')
  })

  it('counts bytes by protocol and direction, added up between reads', async () => {
    const metrics = new DaemonMetrics({ processDefaults: false })
    metrics.bytes('/upgossip/app/kv/1', 'out', 10)
    metrics.bytes('/upgossip/app/kv/1', 'out', 5)
    metrics.bytes('/upgossip/app/kv/1', 'in', 3)
    metrics.called('ok', 0.001, 0)
    let text = await metrics.text()
    expect(text).toContain('upgossip_bytes_total{protocol="/upgossip/app/kv/1",direction="out"} 15')
    expect(text).toContain('upgossip_bytes_total{protocol="/upgossip/app/kv/1",direction="in"} 3')
    expect(text).toContain('upgossip_app_calls_total{outcome="ok"} 1')
    metrics.bytes('/upgossip/app/kv/1', 'in', 4)
    metrics.bytes('/upgossip/app/kv/2', 'out', 1)
    metrics.called('ok', 0.001, 0)
    text = await metrics.text()
    expect(text).toContain('upgossip_bytes_total{protocol="/upgossip/app/kv/1",direction="in"} 7')
    expect(text).toContain('upgossip_bytes_total{protocol="/upgossip/app/kv/1",direction="out"} 15')
    expect(text).toContain('upgossip_bytes_total{protocol="/upgossip/app/kv/2",direction="out"} 1')
    expect(text).not.toContain('upgossip_bytes_total{protocol="/upgossip/app/kv/2",direction="in"}')
    expect(text).toContain('upgossip_app_calls_total{outcome="ok"} 2')
  })

  it('has the process and Node.js defaults unless told not to', async () => {
    expect(await new DaemonMetrics().text()).toMatch(/^process_cpu_seconds_total /m)
    expect(await new DaemonMetrics({ processDefaults: false }).text()).not.toContain('process_cpu_seconds_total')
  })
})
