/**
 * `upgossip check` of simulation objects on samples in either version's protocol
 * (shim/so-check.ts, cli/commands/check-protocols.ts, check-samples.ts): the round trip
 * goes the way a daemon sends a sample of that protocol, every field that does not survive
 * is named as a JSON path, and the `"protocol"` tag of a samples line is read and checked.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { httpView } from '../../src/cli/commands/check-http.js'
import { readProtocolTag, roundTripMismatch, sdkRoundTrips } from '../../src/cli/commands/check-protocols.js'
import type { SampleVersions, Tagged } from '../../src/cli/commands/check-protocols.js'
import { readSamples } from '../../src/cli/commands/check-samples.js'
import type { Manifest } from '../../src/package/index.js'
import { diffFields, diffValues, roundTrip } from '../../src/shim/index.js'
import type { CheckedSimulationObject, Sample } from '../../src/shim/index.js'
import { tempDir } from '../helpers.js'

const versions: SampleVersions = { previous: { version: '1.0.0', protocol: 1 }, next: { version: '2.0.0', protocol: 2 } }

/** Protocol 1 `{ op, key, value }` → `{ value }`; protocol 2 adds `ts` to a request, `at` to a response. */
const to2 = (r: any): unknown => ({ op: r.op, key: r.key, value: r.value, ...(r.ts !== undefined ? { ts: r.ts } : {}) })

/**
 * 2.0.0's future SO, loaded by 1.0.0 nodes; it records the way each request went in
 * `way`. It drops `ts` on the way to protocol 1, unless `keepTs` (1.0.0 ignores a field it
 * does not know, so the fixed SO passes it along).
 */
function futureSo (way: string[] = [], keepTs = false): CheckedSimulationObject {
  const to1 = (r: any): unknown => ({ op: r.op, key: r.key, value: r.value, ...(keepTs && r.ts !== undefined ? { ts: r.ts } : {}) })
  return {
    version: 2,
    serve: async (req2, local) => { way.push('serve'); const res = await local(to1(req2)) as { value: unknown }; return { value: res.value, at: 0 } },
    call: async (req1, remote) => { way.push('call'); const res = await remote(to2(req1)) as { value: unknown }; return { value: res.value } }
  }
}

const tagged = <T>(index: number, protocol: number, sample: T): Tagged<T> => ({ index, protocol, sample })

describe('the structural comparison', () => {
  it('names every path that differs, key order aside, with both sides', () => {
    expect(diffFields({ a: 1, b: [1, { ts: 2 }] }, { b: [1, {}], a: 1 })).toEqual([{ path: '.b[1].ts', before: 2, after: undefined }])
    expect(diffFields(1, 'x')).toEqual([{ path: '', before: 1, after: 'x' }])
    expect(diffValues({ a: 1 }, { a: 1 })).toEqual([])
    expect(diffValues({ items: [{ name: 'a' }] }, { items: [{ name: 'b' }], extra: true })).toEqual(['.items[0].name: "a" → "b"', '.extra: missing → true'])
  })
})

describe('the round trip of a sample through an SO', () => {
  it('serves a sample in the SO\'s own protocol first (new → previous), then calls it back (previous → new)', async () => {
    const way: string[] = []
    const [r] = await roundTrip(futureSo(way), [{ request: { op: 'put', key: 'a', value: 1, ts: 1700000000 }, response: { value: 1, at: 5 } }], { protocol: 2 })
    expect(way).toEqual(['serve', 'call'])
    expect(r?.differences).toEqual([
      { side: 'request', path: '.ts', before: 1700000000, after: undefined },
      { side: 'response', path: '.at', before: 5, after: 0 }
    ])
    expect(r?.problems).toEqual(['request .ts: 1700000000 → missing', 'response .at: 5 → 0'])
  })

  it('calls a sample in the other protocol first (previous → new), then serves it back', async () => {
    const way: string[] = []
    const [r] = await roundTrip(futureSo(way), [{ request: { op: 'get', key: 'a' }, response: { value: 1 } }], { protocol: 1 })
    expect(way).toEqual(['call', 'serve'])
    expect(r?.problems).toEqual([])
  })

  it('an SO that carries the field through passes', async () => {
    const [r] = await roundTrip(futureSo([], true), [{ request: { op: 'put', key: 'a', value: 1, ts: 1700000000 } }], { protocol: 2 })
    expect(r?.problems).toEqual([])
  })

  it('without a response, checks the request alone, whatever the SO makes of the missing answer', async () => {
    const [r] = await roundTrip(futureSo(), [{ request: { op: 'put', key: 'a', value: 1, ts: 7 } }], { protocol: 2 })
    expect(r?.problems).toEqual(['request .ts: 7 → missing'])
  })

  it('an SO that throws fails its sample, saying why', async () => {
    const broken: CheckedSimulationObject = { version: 2, serve: () => { throw new Error('no v1 for that') }, call: async (r, remote) => await remote(r) }
    const [r] = await roundTrip(broken, [{ request: {} }], { protocol: 2 })
    expect(r).toEqual({ index: 0, problems: ['threw: no v1 for that'], differences: [] })
  })

  it('an HTTP app\'s JSON bodies are compared field by field', async () => {
    const enc = new TextEncoder()
    // drops `updated` on the way to protocol 1, as pykv 2.0.0's SOs do
    const so: CheckedSimulationObject = {
      version: 2,
      serve: async (req, local) => await local(req),
      call: async (req: any, remote) => {
        const { value } = JSON.parse(new TextDecoder().decode(req.body))
        return await remote({ ...req, body: enc.encode(JSON.stringify({ value })) })
      }
    }
    const sample: Sample = {
      request: { method: 'PUT', path: '/v2/kv/a', headers: {}, body: enc.encode('{"value": "blue", "updated": 17}') },
      response: { status: 200, headers: {}, body: enc.encode('{"updated":17,"value":"blue"}') }
    }
    const [r] = await roundTrip(so, [sample], { protocol: 2, view: httpView })
    expect(r?.problems).toEqual(['request .body.updated: 17 → missing'])
  })
})

describe('samples in the new version\'s protocol, as the report words them', () => {
  it('each lost field as a JSON path, with the way the sample went', async () => {
    const checked = await sdkRoundTrips(futureSo(), 'future', [
      tagged(0, 1, { request: { op: 'get', key: 'a' }, response: { value: 1 } }),
      tagged(1, 2, { request: { op: 'put', key: 'a', value: 1, ts: 1700000000 } }),
      tagged(2, 2, { request: { op: 'get', key: 'a' }, response: { value: 1, at: 0 } })
    ], versions)
    expect(checked.samples).toBe(3)
    expect(checked.protocols).toEqual({ 1: 1, 2: 2 })
    expect(checked.mismatches).toEqual([{
      index: 1,
      protocol: 2,
      problems: ['request field $.ts does not survive the future SO (2.0.0 → 1.0.0 → 2.0.0): sent 1700000000, came back missing'],
      fields: [{ side: 'request', path: '$.ts', expected: 1700000000 }]
    }])
  })

  it('keeps the first wording for samples in the previous version\'s protocol', () => {
    const result = { index: 0, problems: ['request .value: 3.14159 → 3.14'], differences: [{ side: 'request' as const, path: '.value', before: 3.14159, after: 3.14 }] }
    expect(roundTripMismatch(result, tagged(4, 1, {}), 'past', versions)).toEqual({ index: 4, problems: ['request .value: 3.14159 → 3.14'] })
    expect(roundTripMismatch(result, tagged(4, 2, {}), 'past', versions)?.problems).toEqual(['request field $.value does not survive the past SO (2.0.0 → 1.0.0 → 2.0.0): sent 3.14159, came back 3.14'])
    expect(roundTripMismatch({ index: 0, problems: [], differences: [] }, tagged(4, 2, {}), 'past', versions)).toBeUndefined()
    // a field the SO adds is named too
    const added = { index: 0, problems: ['response .at: missing → 0'], differences: [{ side: 'response' as const, path: '.at', before: undefined, after: 0 }] }
    expect(roundTripMismatch(added, tagged(0, 2, {}), 'future', versions)).toEqual({
      index: 0,
      protocol: 2,
      problems: ['response field $.at appears on the way through the future SO (2.0.0 → 1.0.0 → 2.0.0): not sent, came back 0'],
      fields: [{ side: 'response', path: '$.at', got: 0 }]
    })
  })
})

describe('the "protocol" of a samples line', () => {
  it('is the previous version\'s when absent, and is taken off the sample', () => {
    expect(readProtocolTag({ request: 1 }, versions)).toEqual({ protocol: 1, value: { request: 1 } })
    expect(readProtocolTag({ protocol: 2, request: 1 }, versions)).toEqual({ protocol: 2, value: { request: 1 } })
    expect(readProtocolTag({ protocol: 1, request: 1 }, versions)).toEqual({ protocol: 1, value: { request: 1 } })
  })

  it('is refused when it is neither version\'s, naming both', () => {
    for (const bad of [3, 0, '2', null]) expect(() => readProtocolTag({ protocol: bad, request: 1 }, versions)).toThrow(/is neither 1\.0\.0's protocol \(1\) nor 2\.0\.0's \(2\)/)
  })

  it('is read from the file with its line number; a TCP app\'s samples stay in the previous protocol', async () => {
    const dir = await tempDir('upgossip-samples-')
    try {
      const file = path.join(dir, 'samples.jsonl')
      await fs.writeFile(file, '{"request": {"op": "get"}}\n\n{"protocol": 2, "request": {"action": "fetch"}}\n')
      const sdk = { app: 'kv', version: '2.0.0', protocol: 2, main: 'server.js' } as unknown as Manifest
      expect(await readSamples(file, sdk, versions)).toEqual({ kind: 'sdk', samples: [tagged(0, 1, { request: { op: 'get' } }), tagged(1, 2, { request: { action: 'fetch' } })] })

      await fs.appendFile(file, '{"protocol": 5, "request": {}}\n')
      await expect(readSamples(file, sdk, versions)).rejects.toThrow(/samples\.jsonl line 4: "protocol": 5 is neither/)

      const http = { ...sdk, main: undefined, run: { command: ['x'], wire: 'http' } } as unknown as Manifest
      await fs.writeFile(file, '{"protocol": 2, "method": "PUT", "path": "/v2/kv/a", "body": {"value": "blue"}}\n')
      const read = await readSamples(file, http, versions)
      expect(read.kind).toBe('http')
      expect(new TextDecoder().decode((read.samples[0]?.sample as { body: Uint8Array }).body)).toBe('{"value":"blue"}')

      const tcp = { ...http, run: { command: ['x'], wire: 'tcp' } } as unknown as Manifest
      await fs.writeFile(file, '{"send": "hi"}\n{"protocol": 2, "send": "hi"}\n')
      await expect(readSamples(file, tcp, versions)).rejects.toThrow(/line 2: a TCP app's samples are replayed in 1\.0\.0's protocol \(1\) only/)
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })
})
