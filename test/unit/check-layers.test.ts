import { spawnSync } from 'node:child_process'
import fs from 'node:fs/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { checkLayers, findCycles, formatReport } from '../../scripts/check-layers.ts'
import { tempDir, writeTree } from '../helpers.js'

const script = new URL('../../scripts/check-layers.ts', import.meta.url).pathname
const dirs: string[] = []
afterAll(async () => { await Promise.all(dirs.map(async dir => { await fs.rm(dir, { recursive: true, force: true }) })) })

/** A src/-like tree of `files` in a fresh temporary directory. */
async function tree (files: Record<string, string>): Promise<string> {
  const dir = await tempDir('upgossip-layers-')
  dirs.push(dir)
  await writeTree(dir, files)
  return dir
}

/** A clean tree: each folder imports from folders before it, the top-level files from each other. */
const CLEAN = {
  'errors.ts': 'export class UpgossipError extends Error {}\n',
  'clock.ts': "import { UpgossipError } from './errors.js'\nexport const clock = (): number => { if (Date.now() < 0) throw new UpgossipError(); return 0 }\n",
  'index.ts': "export * from './store/index.js'\nexport * from './clock.js'\n",
  'store/index.ts': "export * from './block-store.js'\n",
  'store/block-store.ts': "import type { UpgossipError } from '../errors.js'\nimport { clock } from '../clock.js'\nexport type E = UpgossipError\nexport const now = clock\n",
  'release/record.ts': "import { now } from '../store/index.js'\nimport { x } from 'some-package'\nexport const t = now() + x\n",
  'ipc/messages.ts': 'export interface Ready { type: \'ready\' }\n',
  'host/ipc.ts': "export type { Ready } from '../ipc/messages.js'\n",
  'sdk/index.ts': "import type { Ready } from '../ipc/messages.js'\nimport { clock } from '../clock.js'\nexport const ready = (): Ready => ({ type: 'ready' })\nexport const c = clock\n",
  'cli/main.ts': "export async function run (): Promise<number> {\n  const { now } = await import('../store/index.js')\n  return now()\n}\n"
}

describe('check-layers', () => {
  it('passes a tree that keeps the layout', async () => {
    const report = await checkLayers(await tree(CLEAN))
    expect(report).toEqual({ files: Object.keys(CLEAN).length, layers: [], cycles: [], lengths: [] })
    expect(formatReport(report)).toMatchObject({ ok: true })
  })

  it('names an import from a folder later in the layout, a type-only one too, and a lazy one', async () => {
    const report = await checkLayers(await tree({
      ...CLEAN,
      'shim/shim.ts': "import { AppHost } from '../host/index.js'\nexport const h = AppHost\n",
      'store/atomic-file.ts': "// a comment that says import x from '../daemon/index.js' is not an import\nimport type { Options } from '../daemon/options.js'\nexport type O = Options\n",
      'package/pack.ts': "export async function f (): Promise<unknown> { return await import('../net/node.js') }\n"
    }))
    expect(report.layers).toEqual([
      expect.stringMatching(/^src\/package\/pack\.ts:1 imports '\.\.\/net\/node\.js': net\/ comes after package\//),
      expect.stringMatching(/^src\/shim\/shim\.ts:1 imports '\.\.\/host\/index\.js': host\/ comes after shim\//),
      expect.stringMatching(/^src\/store\/atomic-file\.ts:2 imports '\.\.\/daemon\/options\.js': daemon\/ comes after store\//)
    ])
    expect(report.cycles).toEqual([])
    const { ok, text } = formatReport(report)
    expect(ok).toBe(false)
    expect(text).toContain('3 problems')
  })

  it('holds the SDK to the IPC messages, a top-level file to the other top-level files, and refuses a folder not in the layout', async () => {
    const report = await checkLayers(await tree({
      ...CLEAN,
      'sdk/index.ts': "import { encode } from '../host/ipc.js'\nexport const e = encode\n",
      'errors.ts': "import type { Daemon } from './daemon/daemon.js'\nexport type D = Daemon\n",
      'store/lock.ts': "import { main } from '../index.js'\nexport const m = main\n",
      'widgets/box.ts': "import { now } from '../store/index.js'\nexport const n = now\n",
      'cli/extra.ts': "import { box } from '../widgets/box.js'\nexport const b = box\n"
    }))
    expect(report.layers).toEqual([
      expect.stringMatching(/^src\/widgets\/ is not in the layout \(store → .* → sdk\): add it to LAYERS/),
      expect.stringMatching(/^src\/errors\.ts:1 .*the top-level files .* import only each other, not daemon\//),
      expect.stringMatching(/^src\/sdk\/index\.ts:1 .*sdk\/ imports only from ipc\/ and the top-level files/),
      expect.stringMatching(/^src\/store\/lock\.ts:1 .*index\.ts is the package entry point/)
    ])
  })

  it('prints an import cycle between files, with its type-only steps', async () => {
    const report = await checkLayers(await tree({
      ...CLEAN,
      'daemon/daemon.ts': "import { ControlApi } from './control-api.js'\nexport class Daemon { api = new ControlApi() }\n",
      'daemon/control-api.ts': "import type { Daemon } from './daemon.js'\nexport class ControlApi { daemon?: Daemon }\n",
      'net/a.ts': "import { b } from './b.js'\nexport const a = (): number => b()\n",
      'net/b.ts': "export { c as b } from './c.js'\n",
      'net/c.ts': "import { a } from './a.js'\nexport const c = (): number => a()\n",
      'net/lazy.ts': "export const l = async (): Promise<unknown> => await import('./lazy-target.js')\n",
      'net/lazy-target.ts': "import { l } from './lazy.js'\nexport const t = l\n"
    }))
    expect(report.layers).toEqual([])
    expect(report.cycles).toEqual([
      'import cycle: src/daemon/control-api.ts → (import type) src/daemon/daemon.ts → src/daemon/control-api.ts',
      'import cycle: src/net/a.ts → src/net/b.ts → src/net/c.ts → src/net/a.ts'
    ])
    expect(formatReport(report).text).toContain('A type-only import in a cycle counts too')
  })

  it('finds the shortest cycle in a tangle and a file that imports itself', () => {
    const graph = new Map([
      ['a', ['b', 'x']], ['b', ['c', 'a']], ['c', ['a']], ['x', []], ['s', ['s']]
    ])
    expect(findCycles(graph)).toEqual([['s', 's'], ['a', 'b', 'a']])
  })

  it('names a file over 400 lines, and not one of exactly 400', async () => {
    const lines = (n: number): string => Array.from({ length: n }, (_, i) => `export const v${i} = ${i}`).join('\n') + '\n'
    const report = await checkLayers(await tree({ ...CLEAN, 'net/long.ts': lines(401), 'net/full.ts': lines(400), 'net/unended.ts': lines(400) + 'export const last = 1' }))
    expect(report.lengths).toEqual([
      'src/net/long.ts has 401 lines, over 400: split it',
      'src/net/unended.ts has 401 lines, over 400: split it'
    ])
  })

  it('exits 1 and names the problem when run as a command, 0 on a clean tree', async () => {
    const bad = await tree({ ...CLEAN, 'shim/shim.ts': "import '../host/index.js'\n" })
    const failed = spawnSync(process.execPath, [script, bad], { encoding: 'utf8' })
    expect(failed.status).toBe(1)
    expect(failed.stderr).toContain("src/shim/shim.ts:1 imports '../host/index.js'")
    const passed = spawnSync(process.execPath, [script, await tree(CLEAN)], { encoding: 'utf8' })
    expect(passed.stderr).toBe('')
    expect(passed.status).toBe(0)
    expect(passed.stdout).toMatch(/^check-layers: \d+ files, layout kept/)
  })
})
