import { describe, expect, it } from 'vitest'
import { KV_APP, LoadGenerator, MissingPrerequisiteError, Monitor, PYKV_APP, formatReport, kvCodec, kvNative, percentile, requirePython } from '../../src/testnet/index.js'
import type { DaemonProcess, TestnetReport } from '../../src/testnet/index.js'
import type { DaemonStatus } from '../../src/daemon/index.js'

/** A stand-in for a daemon whose app is a map, speaking protocol 1 (or breaking on purpose). */
function fakePeer (name: string, behave: 'right' | 'wrong' | 'throw' = 'right'): DaemonProcess {
  const data = new Map<string, unknown>()
  return {
    name,
    exited: false,
    async call (request: any) {
      if (behave === 'throw') throw new Error('connection refused')
      if (request.op === 'put') { data.set(request.key, request.value); return { value: request.value } }
      return { value: behave === 'wrong' ? 'stale' : data.get(request.key) ?? null }
    }
  } as unknown as DaemonProcess
}

describe('testnet load generator', () => {
  it('checks every answer: right answers count as sent, wrong or failed ones as failures', async () => {
    const load = new LoadGenerator({ codec: kvCodec(1), elapsed: () => 0, intervalMs: 1, maxRequests: 40 })
    const good = fakePeer('good')
    const stale = fakePeer('stale', 'wrong')
    const down = fakePeer('down', 'throw')
    for (const p of [good, stale, down]) load.add(p)
    await new Promise(resolve => setTimeout(resolve, 50))
    const s = await load.stop()
    expect(s.sent).toBeGreaterThanOrEqual(6)
    expect(s.sent).toBeLessThanOrEqual(46)
    const byPeer = (name: string): string[] => s.failures.filter(f => f.peer === name).map(f => `${f.op}: ${f.error}`)
    expect(byPeer('good')).toEqual([])
    expect(byPeer('stale').every(f => /^get: expected "stale:\d+", got "stale"$/.test(f))).toBe(true)
    expect(byPeer('stale').length).toBeGreaterThan(0)
    expect(byPeer('down').some(f => f.startsWith('put: connection refused'))).toBe(true)
  })

  it('pause stops one client and waits for its request in flight; add resumes it', async () => {
    const load = new LoadGenerator({ codec: kvCodec(1), elapsed: () => 0, intervalMs: 1 })
    const p = fakePeer('p')
    load.add(p)
    await new Promise(resolve => setTimeout(resolve, 20))
    await load.pause(p)
    const paused = load.summary().sent
    await new Promise(resolve => setTimeout(resolve, 20))
    expect(load.summary().sent).toBe(paused)
    load.add(p)
    await new Promise(resolve => setTimeout(resolve, 20))
    const s = await load.stop()
    expect(s.sent).toBeGreaterThan(paused)
    expect(s.failed).toBe(0)
  })

  it('codecs: each protocol of the demo app, and answers of the wrong shape are refused', () => {
    expect(kvCodec(2).put('a', 1)).toEqual({ action: 'set', k: 'a', v: 1 })
    expect(kvCodec(3).get('a')).toEqual({ cmd: ['get', 'a'] })
    expect(kvCodec(3).value({ ok: 4 })).toBe(4)
    expect(() => kvCodec(1).value({ result: 4 })).toThrow(/has no "value"/)
    expect(() => kvCodec(1).value(null)).toThrow(/has no "value"/)
    expect(() => kvCodec(9)).toThrow(/no protocol 9/)
    expect(kvNative('2.0.0')).toBe(2)
    expect(kvNative('4.0.0')).toBe(3)
  })

  it('pykv codecs: HTTP request messages for POST /call, keys percent-encoded, answers checked', () => {
    const v1 = PYKV_APP.codec(1)
    const v2 = PYKV_APP.codec(2)
    expect(v1.put('load/peer-1/3', 'x')).toEqual({ method: 'PUT', path: '/kv/load%2Fpeer-1%2F3', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'x' })
    expect(v1.get('a b')).toEqual({ method: 'GET', path: '/kv/a%20b', headers: {} })
    expect(v2.put('k', 'x')).toEqual({ method: 'PUT', path: '/v2/kv/k', headers: { 'content-type': 'application/json' }, body: '{"value":"x"}' })
    expect(v1.value({ status: 200, headers: {}, body: 'blue' })).toBe('blue')
    expect(v2.value({ status: 200, headers: {}, body: '{"value":"blue","updated":0}' })).toBe('blue')
    expect(() => v1.value({ status: 404, headers: {}, body: 'not found' })).toThrow(/HTTP 404: not found/)
    expect(() => v2.value({ status: 200, headers: {}, body: 'blue' })).toThrow(/not JSON/)
    expect(() => v1.value({ value: 'x' })).toThrow(/not an HTTP response/)
    expect(() => PYKV_APP.codec(3)).toThrow(/pykv has no protocol 3/)
    expect([PYKV_APP.native('1.0.0'), PYKV_APP.native('2.0.0'), KV_APP.native('4.0.0')]).toEqual([1, 2, 3])
  })

  it('requirePython: a named error that says what is missing', async () => {
    const path = process.env.PATH
    process.env.PATH = '/nonexistent'
    try {
      const err = await requirePython('the polyglot scenario runs pykv').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(MissingPrerequisiteError)
      expect((err as Error).message).toMatch(/^the polyglot scenario runs pykv: python3 was not found on PATH/)
    } finally {
      process.env.PATH = path
    }
  })

  it('percentile', () => {
    expect(percentile([], 0.5)).toBe(0)
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2)
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 0.99)).toBe(99)
    expect(percentile([5], 0.99)).toBe(5)
  })
})

function status (version: string, pending?: { version: string, state: string, waitingOn?: string, have: number, size: number }): DaemonStatus {
  return {
    peerId: '12D3KooWabcdef',
    app: 'kv',
    version,
    state: 'running',
    labels: {},
    networkName: 'default',
    multiaddrs: [],
    connections: 2,
    releases: pending == null ? [] : [{ id: 'bafy', app: 'kv', signers: 1, expires: '', ...pending } as DaemonStatus['releases'][number]],
    network: []
  }
}

describe('testnet monitor', () => {
  it('plain lines on a non-terminal: one per change, none when nothing changed', async () => {
    let out = ''
    const peer = { name: 'peer-1', exited: false, status: async () => current } as unknown as DaemonProcess
    let current = status('1.0.0')
    const m = new Monitor({ write: t => { out += t }, isTTY: false }, () => 1500)
    m.watch([peer])
    await m.poll()
    await m.poll()
    current = status('1.0.0', { version: '2.0.0', state: 'waiting', waitingOn: 'canary', have: 5, size: 10 })
    await m.poll()
    expect(out.trimEnd().split('\n')).toEqual([
      '    1.5s  peer-1    1.0.0 running',
      '    1.5s  peer-1    1.0.0 running · 2.0.0 waiting on canary'
    ])
    expect(m.timeline.map(e => e.event)).toEqual(['version', 'state'])
  })

  it('on a terminal: redraws its lines in place with progress bars and the version counts', async () => {
    let out = ''
    const peer = { name: 'peer-1', exited: false, status: async () => status('1.0.0', { version: '2.0.0', state: 'fetching', have: 5, size: 10 }) } as unknown as DaemonProcess
    const m = new Monitor({ write: t => { out += t }, isTTY: true, columns: 200 }, () => 3000, () => 'requests 9 sent, 0 failed')
    m.watch([peer])
    await m.poll()
    expect(out).toContain('→ 2.0.0 fetching  █████░░░░░  50%')
    expect(out).toContain('versions  1.0.0: 1  ·  requests 9 sent, 0 failed  ·  3 s')
    out = ''
    await m.poll()
    // moves up over the two lines drawn before and clears them
    expect(out.startsWith('\x1b[2F\x1b[J')).toBe(true)
  })

  it('formatReport says whether every check held', () => {
    const report: TestnetReport = { scenario: 'rolling', peers: 3, durationMs: 12_300, requests: { sent: 10, failed: 0, p50Ms: 1, p99Ms: 2 }, checks: [{ name: 'a', ok: true, detail: 'fine' }, { name: 'b', ok: false, detail: 'broke' }], timeline: [], failures: [], dir: '/tmp/x', kept: false }
    const text = formatReport(report)
    expect(text).toMatch(/^testnet rolling: 3 peers, 12\.3 s — FAILED/)
    expect(text).toContain('✗ b — broke')
    expect(formatReport({ ...report, checks: [report.checks[0] as TestnetReport['checks'][number]] })).toMatch(/every check held/)
  })
})

describe('soak memory figures', () => {
  it('growth compares the second quarter (after warm-up) with the last', async () => {
    const { memoryReport, residentBytes } = await import('../../src/testnet/index.js')
    const samples = [300, 100, 100, 100, 110, 110, 120, 120].map((mb, i) => ({ atMs: i * 1000, rssMb: { 'peer-1': mb, 'peer-2': mb } }))
    const r = memoryReport(samples, 1000)
    expect(r).toMatchObject({ earlyMb: 100, lateMb: 120, growthPct: 20 })
    expect(memoryReport([], 1000).growthPct).toBe(0)
    // this very process has a resident set on Linux
    const mine = await residentBytes(process.pid)
    if (process.platform === 'linux') expect(mine).toBeGreaterThan(1024 * 1024)
    expect(await residentBytes(2 ** 30)).toBeUndefined()
  })

  it('names the daemon that grows even when the mean over all of them stays under the limit', async () => {
    const { memoryReport, mostGrowth } = await import('../../src/testnet/index.js')
    // peer-1 grows 100 → 120 (+20 %), three others stay at 100: the mean grows only 5 %
    const samples = [100, 100, 100, 100, 110, 110, 120, 120].map((mb, i) => ({ atMs: i * 1000, rssMb: { 'peer-1': mb, 'peer-2': 100, 'peer-3': 100, 'peer-4': 100 } }))
    const r = memoryReport(samples, 1000)
    expect(r.growthPct).toBe(5)
    expect(r.perPeer['peer-2']).toEqual({ earlyMb: 100, lateMb: 100, growthPct: 0 })
    expect(mostGrowth(r)).toEqual({ name: 'peer-1', earlyMb: 100, lateMb: 120, growthPct: 20 })
    expect(mostGrowth(memoryReport([], 1000))).toBeUndefined()
    const { formatReport } = await import('../../src/testnet/index.js')
    const text = formatReport({ scenario: 'soak', peers: 4, durationMs: 8000, requests: { sent: 1, failed: 0, p50Ms: 1, p99Ms: 1 }, checks: [], timeline: [], failures: [], dir: '/tmp/x', kept: false, memory: r })
    expect(text).toContain('memory: mean daemon RSS 100 MiB after warm-up, 105 MiB at the end (+5 %), 8 samples; most growth: peer-1 100 → 120 MiB (+20 %)')
  })
})
