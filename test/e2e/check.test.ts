/**
 * `upgossip check`: transforms on sample state (down(up(state)) == state) and simulation
 * objects on sample requests, both ways, reported field by field; exit 1 on a mismatch.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
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

  it('reports a down transform that loses data, file by file', async () => {
    const v1 = await dir('b-v1', kvVersion('1.0.0', 'v1'))
    const files = kvVersion('2.0.0', 'v2')
    files['migrate/down.js'] = "import fs from 'node:fs/promises'\nimport path from 'node:path'\nexport default async ({ to }) => { await fs.writeFile(path.join(to, 'data.json'), '{}') }\n"
    const v2 = await dir('b-v2', files)
    const state = await dir('b-state', { 'data.json': JSON.stringify({ a: 1 }) })
    const r = await runCli(['check', v2, '--previous', v1, '--state', state])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('down(up(state)) == state: NO')
    expect(r.stdout).toContain('data.json: content differs after the round trip')
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
