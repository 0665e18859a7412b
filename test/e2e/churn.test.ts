/**
 * `npm run churn` on a tiny run (12 releases, 2 daemons): its JSON has the documented
 * shape and every daemon switched to every release, its state carried through every
 * transform. Nothing here asserts a time or a size: the level is what docs/churn.md shows.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { ChurnResult } from '../../scripts/churn.ts'
import { diskUse } from '../../scripts/churn/footprint.ts'
import { markdownTable } from '../../scripts/churn/report.ts'
import { tempDir, writeTree } from '../helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

async function churn (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'churn.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', d => { out += String(d) })
    child.stderr.on('data', d => { err += String(d) })
    child.on('error', reject)
    child.on('close', c => { resolve({ code: c, stdout: out, stderr: err }) })
  })
}

describe('npm run churn', () => {
  it('publishes 12 releases that both daemons run, and samples both at release 10', async () => {
    const run = await churn(['--releases', '12', '--peers', '2', '--json'])
    expect(run.code, run.stderr).toBe(0)
    const result = JSON.parse(run.stdout) as ChurnResult
    expect(result.releases).toBe(12)
    expect(result.samples.map(s => [s.release, s.peer])).toEqual([[10, 'peer-1'], [10, 'peer-2']])
    for (const s of result.samples) {
      expect(Object.keys(s.disk).sort()).toEqual(['blocks', 'logs', 'packages', 'records', 'state', 'total'])
      for (const part of ['blocks', 'packages', 'state', 'logs', 'records'] as const) {
        expect(s.disk[part]).toBeGreaterThan(0)
        expect(s.disk[part]).toBeLessThanOrEqual(s.disk.total)
      }
      expect(s.rssMB).toBeGreaterThan(0)
      expect(s.disk.blocks + s.disk.packages + s.disk.state + s.disk.logs + s.disk.records).toBeLessThanOrEqual(s.disk.total)
    }
    // every daemon ran every release, and each transform ran on its state
    expect(result.switches).toEqual({ 'peer-1': 12, 'peer-2': 12 })
    expect(result.generations).toEqual({ 'peer-1': 12, 'peer-2': 12 })
  }, 240_000)

  it('counts a data directory by folder: the rotated logs are logs, the release records their own', async () => {
    const dir = await tempDir()
    await writeTree(dir, {
      'blocks/a': 'x'.repeat(10),
      'packages/p/server.js': 'x'.repeat(20),
      'state/s/data.json': 'x'.repeat(30),
      'releases/r.cbor': 'x'.repeat(40),
      'releases/revocations/r.cbor': 'x'.repeat(5),
      'events.jsonl': 'x'.repeat(1),
      'events.1.jsonl': 'x'.repeat(2),
      'app.log': 'x'.repeat(3),
      'app.2.log': 'x'.repeat(4),
      'peer.key': 'x'.repeat(100)
    })
    await fs.mkdir(path.join(dir, 'empty'))
    const disk = await diskUse(dir)
    expect(disk).toEqual({ blocks: 10, packages: 20, state: 30, logs: 10, records: 45, total: 215 })
    const table = markdownTable({ releases: 10, peers: 1, samples: [{ release: 10, peer: 'peer-1', disk, rssMB: 100 }] })
    expect(table.split('\n')[2]).toBe('| 10 | peer-1 | 0 | 0 | 0 | 0 | 0 | 0.1 | 0.2 | 100 |')
  })

  it('refuses a run without --releases (exit 2, with the usage)', async () => {
    const run = await churn(['--peers', '2'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('--releases N is required')
  })
})
