/**
 * `upgossip check`: transforms on sample state (down(up(state)) == state) and simulation
 * objects on sample requests, both ways, reported field by field; exit 1 on a mismatch.
 * Samples tagged with the new version's protocol go from a new-version peer to the
 * previous version and back, each lost field named as a JSON path. For process apps
 * (pykv, in Python), HTTP samples answered by their own version's program go through the
 * SOs both ways and through them to the other version's program (TCP apps:
 * check-tcp.test.ts).
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir, writeTree } from '../helpers.js'
import { kvVersion } from './support/kv-app.js'
import { kv3Version } from './support/kv3-app.js'
import { runCli } from './support/testnet.js'

let root: string
beforeAll(async () => { root = await tempDir('upgossip-check-') })
afterAll(async () => { await fs.rm(root, { recursive: true, force: true }) })

async function dir (name: string, files: Record<string, string>): Promise<string> {
  const d = path.join(root, name)
  await writeTree(d, files)
  return d
}

describe('upgossip check', () => {
  it('passes when the state and the requests survive the round trip', async () => {
    const v1 = await dir('a-v1', kvVersion('1.0.0', 'v1'))
    const v2 = await dir('a-v2', kvVersion('2.0.0', 'v2'))
    const state = await dir('a-state', { 'data.json': JSON.stringify({ a: 1, b: 'two' }) })
    const r = await runCli(['check', v2, '--previous', v1, '--state', state])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('transform up: ok (1 files)')
    expect(r.stdout).toContain('down(up(state)) == state: ok')
  })

  it('compares JSON state by value: a sample written by hand (indented, keys in another order, a final newline) passes a correct release', async () => {
    const v1 = await dir('n-v1', kvVersion('1.0.0', 'v1'))
    const v2 = await dir('n-v2', kvVersion('2.0.0', 'v2'))
    const state = await dir('n-state', { 'data.json': '{\n  "b": "two",\n  "a": 1\n}\n' })
    const r = await runCli(['check', v2, '--previous', v1, '--state', state])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain('down(up(state)) == state: ok')
  })

  it('reports a down transform that loses data, file by file', async () => {
    const v1 = await dir('b-v1', kvVersion('1.0.0', 'v1'))
    const files = kvVersion('2.0.0', 'v2')
    files['migrate/down.js'] = "import fs from 'node:fs/promises'\nimport path from 'node:path'\nexport default async ({ to }) => { await fs.writeFile(path.join(to, 'data.json'), '{}') }\n"
    const v2 = await dir('b-v2', files)
    const state = await dir('b-state', { 'data.json': JSON.stringify({ a: 1 }) })
    const r = await runCli(['check', v2, '--previous', v1, '--state', state])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('down(up(state)) == state: NO')
    expect(r.stdout).toContain('data.json: differs after the round trip, first at .a: 1 → missing')
    expect(r.stderr).toContain('[CheckFailedError]')
  })

  it('runs sample requests through past and future SOs and names each field that changed', async () => {
    const v1 = await dir('c-v1', kv3Version(1))
    const v2 = await dir('c-v2', kv3Version(2))
    const samples = path.join(root, 'samples.jsonl')
    await fs.writeFile(samples, [
      { request: { op: 'put', key: 'a', value: 1 }, response: { value: 1 } },
      { request: { op: 'get', key: 'a' }, response: { value: 2.5 } },
      { request: { op: 'put', key: 'pi', value: 3.14159 }, response: { value: 3.14159 } }
    ].map(s => JSON.stringify(s)).join('\n') + '\n')
    const r = await runCli(['check', v2, '--previous', v1, '--samples', samples, '--json'])
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout)
    // only the third sample loses precision in translation, in its request and its response
    for (const kind of ['past', 'future']) {
      expect(report.simulation[kind].samples).toBe(3)
      expect(report.simulation[kind].mismatches).toEqual([{ index: 2, problems: ['request .value: 3.14159 → 3.14', 'response .value: 3.14159 → 3.14'] }])
    }
    const bundleless = await runCli(['check', v2, '--previous', path.join(root, 'nope.car')])
    expect(bundleless.code).toBe(1)
    expect(bundleless.stderr).toContain('[InputFileError]')
  })
})

/** A notes app whose protocol 2 stamps each note with `ts`; 2.0.0's future SO `serve`s protocol 2 on 1.0.0 nodes. */
function notesVersion (protocol: 1 | 2, future?: string): Record<string, string> {
  const m = { app: 'notes', version: `${protocol}.0.0`, main: 'server.js', protocol, ...(future == null ? {} : { simulation: { future: 'so/future.js' } }) }
  return { 'upgossip.json': JSON.stringify(m), 'server.js': 'export {}\n', ...(future == null ? {} : { 'so/future.js': future }) }
}

// protocol 1: { op: 'add', text } → { id }; protocol 2: { op: 'add', text, ts } → { id, ts }
const DROPS_TS = `export default {
  version: 2,
  async serve (req2, local) { const res = await local({ op: req2.op, text: req2.text }); return { id: res.id, ts: req2.ts } },
  async call (req1, remote) { const res = await remote({ op: req1.op, text: req1.text }); return { id: res.id } }
}
`
// 1.0.0 ignores a field it does not know: the fixed SO passes ts along, and back
const KEEPS_TS = `export default {
  version: 2,
  async serve (req2, local) { const res = await local({ op: req2.op, text: req2.text, ts: req2.ts }); return { id: res.id, ts: req2.ts } },
  async call (req1, remote) { const res = await remote({ op: req1.op, text: req1.text, ...('ts' in req1 ? { ts: req1.ts } : {}) }); return { id: res.id } }
}
`

describe('upgossip check, samples in the new version\'s protocol', () => {
  it('sends them from a new-version peer through the future SO to the previous version and back, and names the field that does not survive', async () => {
    const v1 = await dir('t-v1', notesVersion(1))
    const samples = path.join(root, 't-samples.jsonl')
    await fs.writeFile(samples, [
      { request: { op: 'add', text: 'hi' }, response: { id: 1 } },
      { protocol: 2, request: { op: 'add', text: 'hi', ts: 1700000000 }, response: { id: 1, ts: 1700000000 } }
    ].map(s => JSON.stringify(s)).join('\n') + '\n')

    const broken = await dir('t-v2', notesVersion(2, DROPS_TS))
    const r = await runCli(['check', broken, '--previous', v1, '--samples', samples])
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(r.stdout).toContain('future SO: 2 samples (1 in protocol 1, 1 in protocol 2), 1 did not survive the round trip')
    expect(r.stdout).toContain('sample 2 (protocol 2): request field $.ts does not survive the future SO (2.0.0 → 1.0.0 → 2.0.0): sent 1700000000, came back missing')
    expect(r.stderr).toContain('1 problem(s) found [CheckFailedError]')
    const json = JSON.parse((await runCli(['check', broken, '--previous', v1, '--samples', samples, '--json'])).stdout)
    expect(json.simulation.future).toEqual({
      samples: 2,
      protocols: { 1: 1, 2: 1 },
      mismatches: [{
        index: 1,
        protocol: 2,
        problems: ['request field $.ts does not survive the future SO (2.0.0 → 1.0.0 → 2.0.0): sent 1700000000, came back missing'],
        fields: [{ side: 'request', path: '$.ts', expected: 1700000000 }]
      }]
    })

    // a loss the publisher expects, named as the report names it, is not a problem; a path that is not one is a usage error
    const accepted = await runCli(['check', broken, '--previous', v1, '--samples', samples, '--accept-loss', '$.ts'])
    expect(accepted.code, accepted.stdout + accepted.stderr).toBe(0)
    expect(accepted.stdout).toContain('future SO: 2 samples (1 in protocol 1, 1 in protocol 2), 0 did not survive the round trip')
    const other = await runCli(['check', broken, '--previous', v1, '--samples', samples, '--accept-loss', '$.text'])
    expect(other.code).toBe(1)
    const notPath = await runCli(['check', broken, '--previous', v1, '--samples', samples, '--accept-loss', 'ts'])
    expect(notPath.code).toBe(2)
    expect(notPath.stderr).toContain('--accept-loss ts: not a JSON path')

    const fixed = await dir('t-v2-fixed', notesVersion(2, KEEPS_TS))
    const ok = await runCli(['check', fixed, '--previous', v1, '--samples', samples])
    expect(ok.code, ok.stdout + ok.stderr).toBe(0)
    expect(ok.stdout).toContain('future SO: 2 samples (1 in protocol 1, 1 in protocol 2), 0 did not survive the round trip')
  })

  it('refuses a sample tagged with a protocol neither version speaks, naming its line', async () => {
    const v1 = await dir('u-v1', notesVersion(1))
    const v2 = await dir('u-v2', notesVersion(2, KEEPS_TS))
    const samples = path.join(root, 'u-samples.jsonl')
    await fs.writeFile(samples, '{"request": {"op": "add", "text": "hi"}}\n{"protocol": 3, "request": {"op": "add", "text": "hi"}}\n')
    const r = await runCli(['check', v2, '--previous', v1, '--samples', samples])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('u-samples.jsonl line 2: "protocol": 3 is neither 1.0.0\'s protocol (1) nor 2.0.0\'s (2) [CheckFailedError]')
  })
})

const hasPython = ((): boolean => {
  try {
    execFileSync('python3', ['--version'])
    return true
  } catch {
    return false
  }
})()
if (!hasPython && process.env.CI === 'true') throw new Error('check.test.ts needs python3 (CI=true): .ci/run installs it with apt')

const PYKV = fileURLToPath(new URL('../../testnet/apps/pykv/', import.meta.url))

/** A copy of a pykv version, its manifest changed by `edit`. */
async function pykv (version: 'v1' | 'v2', name: string, edit: (m: Record<string, unknown>) => void = () => {}, files: Record<string, string> = {}): Promise<string> {
  const d = path.join(root, name)
  await fs.cp(path.join(PYKV, version), d, { recursive: true })
  const m = JSON.parse(await fs.readFile(path.join(d, 'upgossip.json'), 'utf8')) as Record<string, unknown>
  edit(m)
  await writeTree(d, { 'upgossip.json': JSON.stringify(m), ...files })
  return d
}

const line = (value: unknown): string => JSON.stringify(value) + '\n'

describe.skipIf(!hasPython)('upgossip check, process apps (pykv)', () => {
  it('answers HTTP samples with the previous version\'s program, sends them through the SOs both ways and to the new program', async () => {
    const v1 = await pykv('v1', 'p-v1')
    // 2.0.0's SOs are what this test is about: its transforms are left out, and no state is given
    const v2 = await pykv('v2', 'p-v2', m => { delete m.transform })
    const samples = path.join(root, 'http-samples.jsonl')
    await fs.writeFile(samples, [
      { method: 'PUT', path: '/kv/colour', body: 'blue' },
      { method: 'GET', path: '/kv/colour' },
      { method: 'GET', path: '/kv/absent' },
      { method: 'PUT', path: '/kv/users%2F42', headers: { 'X-Replica': '1' }, body: 'ann' }
    ].map(line).join(''))
    const r = await runCli(['check', v2, '--previous', v1, '--samples', samples])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain('samples: 4 HTTP requests, answered by 1.0.0\'s program: 200 200 404 200')
    for (const kind of ['past', 'future']) {
      expect(r.stdout).toContain(`${kind} SO: 4 samples, 0 did not survive the round trip`)
      expect(r.stdout).toContain(`${kind} SO with 2.0.0's program: 4 samples, 0 answered otherwise than 1.0.0's`)
    }

    // a header the SOs do not carry through is named, as a field
    await fs.appendFile(samples, line({ method: 'PUT', path: '/kv/a', headers: { 'content-type': 'text/plain' }, body: 'x' }))
    const json = await runCli(['check', v2, '--previous', v1, '--samples', samples, '--json'])
    expect(json.code).toBe(1)
    const report = JSON.parse(json.stdout)
    expect(report.samples).toEqual({ by: '1.0.0', statuses: [200, 200, 404, 200, 200] })
    for (const kind of ['past', 'future']) {
      expect(report.simulation[kind].mismatches).toEqual([{ index: 4, problems: ['request .headers.content-type: "text/plain" → "text/plain; charset=utf-8"'] }])
      expect(report.simulation[kind].newVersion).toEqual({ samples: 5, mismatches: [] })
    }
  })

  it('names the answers that differ when an SO does not translate for the new program', async () => {
    const v1 = await pykv('v1', 'q-v1')
    // a past SO that passes 1.0.0's requests to 2.0.0 untranslated: the round trip is perfect, the answers are not
    const v2 = await pykv('v2', 'q-v2', m => { delete m.transform }, { 'past.js': 'export default { version: 1, serve: (req, local) => local(req), call: (req, remote) => remote(req) }\n' })
    const samples = path.join(root, 'q-samples.jsonl')
    await fs.writeFile(samples, line({ method: 'PUT', path: '/kv/colour', body: 'blue' }))
    const r = await runCli(['check', v2, '--previous', v1, '--samples', samples])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('past SO: 1 samples, 0 did not survive the round trip')
    expect(r.stdout).toContain('past SO with 2.0.0\'s program: 1 samples, 1 answered otherwise than 1.0.0\'s')
    expect(r.stdout).toContain('sample 1: response .status: 200 → 404')
    expect(r.stdout).toContain('future SO with 2.0.0\'s program: 1 samples, 0 answered otherwise than 1.0.0\'s')
    expect(r.stderr).toContain('1 problem(s) found [CheckFailedError]')

    // 2.0.0 started on 1.0.0's state (no transform): it refuses the state and exits, and check quotes why
    const state = await dir('q-state', { 'state.json': '{"colour":"red"}' })
    const onState = await runCli(['check', v2, '--previous', v1, '--samples', samples, '--state', state])
    expect(onState.code).toBe(1)
    expect(onState.stdout).toMatch(/future SO with 2\.0\.0's program: FAILED: 2\.0\.0's program \(python3 server\.py\) did not start: .*pykv 2: cannot load the state/)
  })

  it('answers samples in 2.0.0\'s protocol with 2.0.0\'s program, and names the JSON field the SOs lose on the way to 1.0.0 (pykv 1.0.0 keeps no times)', async () => {
    const v1 = await pykv('v1', 'w-v1')
    const v2 = await pykv('v2', 'w-v2', m => { delete m.transform })
    const samples = path.join(root, 'w-samples.jsonl')
    await fs.writeFile(samples, line({ protocol: 2, method: 'PUT', path: '/v2/kv/colour', headers: { 'content-type': 'application/json' }, body: { value: 'blue', updated: 1700000000 } }))
    const r = await runCli(['check', v2, '--previous', v1, '--samples', samples, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(1)
    const report = JSON.parse(r.stdout)
    expect(report.samples).toBeUndefined()
    expect(report.newProtocolSamples).toEqual({ by: '2.0.0', statuses: [200] })
    for (const kind of ['past', 'future']) {
      const so = report.simulation[kind]
      expect(so.protocols).toEqual({ 2: 1 })
      // the request's `updated` is dropped on the way to protocol 1, and the answer comes back with 1.0.0's 0
      expect(so.mismatches).toEqual([{
        index: 0,
        protocol: 2,
        problems: [
          `request field $.body.updated does not survive the ${kind} SO (2.0.0 → 1.0.0 → 2.0.0): sent 1700000000, came back missing`,
          `response field $.body.updated does not survive the ${kind} SO (2.0.0 → 1.0.0 → 2.0.0): sent 1700000000, came back 0`
        ],
        fields: [{ side: 'request', path: '$.body.updated', expected: 1700000000 }, { side: 'response', path: '$.body.updated', expected: 1700000000, got: 0 }]
      }])
      expect(so.newVersion).toBe('not exercised: no samples in 1.0.0\'s protocol (1)')
      // what a 2.0.0 peer gets from 1.0.0's program, through the SO, against 2.0.0's own answer
      expect(so.previousVersion.mismatches).toEqual([expect.objectContaining({
        index: 0,
        problems: [`response field $.body.updated differs through the ${kind} SO: 2.0.0's program answers 1700000000, 1.0.0's answer comes back as 0`]
      })])
    }
  })

  it('accepts the loss of a field the publisher names (--accept-loss): pykv 2.0.0\'s updated, which 1.0.0 keeps no trace of', async () => {
    const v1 = await pykv('v1', 'x-v1')
    const v2 = await pykv('v2', 'x-v2', m => { delete m.transform })
    const samples = path.join(root, 'x-samples.jsonl')
    await fs.writeFile(samples, line({ protocol: 2, method: 'PUT', path: '/v2/kv/colour', headers: { 'content-type': 'application/json' }, body: { value: 'blue', updated: 1700000000 } }))
    const r = await runCli(['check', v2, '--previous', v1, '--samples', samples, '--accept-loss', '$.body.updated'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  it('refuses samples that are not HTTP requests, naming the line', async () => {
    const v1 = await pykv('v1', 'r-v1')
    const v2 = await pykv('v2', 'r-v2', m => { delete m.transform })
    const samples = path.join(root, 'r-samples.jsonl')
    await fs.writeFile(samples, line({ method: 'GET', path: '/kv/a' }) + '\n' + line({ request: { op: 'get', key: 'a' }, response: { value: 1 } }))
    const r = await runCli(['check', v2, '--previous', v1, '--samples', samples])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/r-samples\.jsonl line 3: a process app's sample is an HTTP request .*"path" must be an origin-form target .*\[CheckFailedError\]/)
  })

  it('checks pykv 2.0.0 as published: command transforms on sample state, then both programs on it', async () => {
    const state = await dir('s-state', { 'state.json': '{"colour":"red","users/42":"ann"}' })
    const samples = path.join(root, 's-samples.jsonl')
    await fs.writeFile(samples, [
      { method: 'GET', path: '/kv/colour' },
      { method: 'GET', path: '/kv/users%2F42' },
      { method: 'PUT', path: '/kv/colour', body: 'blue' }
    ].map(line).join(''))
    const r = await runCli(['check', path.join(PYKV, 'v2'), '--previous', path.join(PYKV, 'v1'), '--state', state, '--samples', samples])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain('transform up: ok (1 files)')
    expect(r.stdout).toContain('down(up(state)) == state: ok')
    // 2.0.0 runs on what up.py made: the values 1.0.0 held answer the same
    expect(r.stdout).toContain('samples: 3 HTTP requests, answered by 1.0.0\'s program: 200 200 200')
    expect(r.stdout).toContain('past SO with 2.0.0\'s program: 3 samples, 0 answered otherwise than 1.0.0\'s')
  })
})
