/**
 * The docs say what the code does, and lead somewhere: the options table of
 * docs/operator.md is the one the config schema renders, every relative link and anchor
 * resolves, the benchmark report links only to sections of the hand-written analysis that
 * exist, the README's benchmark figures are those of docs/benchmarks/run.json, and the
 * npm package ships the docs without their run data.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { OPERATOR_DOC, renderOptionsTable, withOptionsTable } from '../../scripts/gen-options-doc.ts'
import { ANALYSIS_ANCHORS, ANALYSIS_PAGE, writeReport } from '../../scripts/bench/report.ts'
import { runOf, sectionOf } from '../../scripts/bench/result.ts'
import { parseRun } from '../../scripts/bench/saved-run.ts'
import { buildProgram } from '../../src/cli/main.js'
import { DaemonConfigSchema, resolveDaemonOptions } from '../../src/daemon/options.js'
import { formatDuration } from '../../src/duration.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Tests a page names as `` `unit/x.test.ts` › "name", "name" `` that do not exist: no such file, or no test of that name in it. */
function missingTests (page: string, markdown: string): string[] {
  const missing: string[] = []
  const cited = /`((?:test\/)?(?:unit|e2e)\/[^`]+\.test\.ts)` ›\s*((?:"(?:[^"\\]|\\.)+"(?:,\s*)?(?:\([^)]*\)\s*,?\s*)?)+)/g
  for (const [, file = '', list = ''] of markdown.matchAll(cited)) {
    const rel = file.startsWith('test/') ? file : `test/${file}`
    let source: string
    try {
      source = fs.readFileSync(path.join(ROOT, rel), 'utf8').replace(/\\'/g, "'").replace(/\s+/g, ' ')
    } catch {
      missing.push(`${page}: ${rel} does not exist`)
      continue
    }
    // names made from templates (\`crash at ${step}: …\`): their fixed parts in order
    const templates = [...source.matchAll(/\b(?:it|describe)(?:\.\w+\([^)]*\))?\(`([^`]*\$\{[^`]*)`/g)]
      .map(([, t = '']) => new RegExp(`^${t.split(/\$\{[^}]*\}/).map(part => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+')}$`))
    for (const [, quoted = ''] of list.matchAll(/"((?:[^"\\]|\\.)+)"/g)) {
      const name = quoted.replace(/\\"/g, '"').replace(/\s+/g, ' ')
      // STEP and … in a cited name stand for the part a template or the page leaves out
      const parts = name.split(/STEP|…/).map(p => p.trim()).filter(p => p !== '')
      if (parts.every(p => source.includes(p)) || templates.some(t => t.test(name))) continue
      missing.push(`${page}: ${rel} has no test "${name}"`)
    }
  }
  return missing
}

/** Every markdown page of the docs (the init template's README has placeholders, and is not one). */
function pages (): string[] {
  const docs = fs.readdirSync(path.join(ROOT, 'docs')).filter(f => f.endsWith('.md')).map(f => path.join('docs', f))
  return ['README.md', 'ARCHITECTURE.md', 'testnet/README.md', 'scripts/README.md', 'testnet/apps/kv/README.md', 'testnet/apps/pykv/README.md', 'testnet/apps/tcpchat/README.md', ...docs]
}

/** The text outside fenced code blocks. */
function prose (markdown: string): string[] {
  const out: string[] = []
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    else if (!fenced) out.push(line)
  }
  return out
}

/** GitHub's anchors of a page's headings (lower-cased, punctuation dropped, spaces to hyphens; repeats numbered). */
export function anchors (markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const line of prose(markdown)) {
    const heading = /^#{1,6} (.*)$/.exec(line)
    if (heading == null) continue
    const text = (heading[1] as string).replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    const slug = text.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    out.add(n === 0 ? slug : `${slug}-${n}`)
  }
  return out
}

/** The relative links of a page that do not resolve: a missing file, or a missing anchor. */
function brokenLinks (file: string, markdown: string): string[] {
  const broken: string[] = []
  for (const line of prose(markdown)) {
    const text = line.replace(/`[^`]*`/g, '')
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1] as string
      if (/^[a-z]+:/.test(target)) continue
      const [rel, anchor] = target.split('#') as [string, string | undefined]
      const resolved = rel === '' ? path.join(ROOT, file) : path.join(ROOT, path.dirname(file), decodeURIComponent(rel))
      if (!fs.existsSync(resolved)) {
        broken.push(`${file}: ${target} (no such file)`)
        continue
      }
      if (anchor == null || !resolved.endsWith('.md')) continue
      if (!anchors(fs.readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${file}: ${target} (no such heading)`)
    }
  }
  return broken
}

describe('docs', () => {
  it('the options table of docs/operator.md is the one the config schema renders (node scripts/gen-options-doc.ts)', () => {
    const data = process.env.UPGOSSIP_DATA
    delete process.env.UPGOSSIP_DATA
    let defaults: Record<string, unknown>
    try {
      defaults = resolveDaemonOptions({}) as unknown as Record<string, unknown>
    } finally {
      if (data != null) process.env.UPGOSSIP_DATA = data
    }
    const daemon = buildProgram().commands.find(c => c.name() === 'daemon')
    const cli = (daemon?.options ?? []).filter(o => o.long != null && o.long !== '--help').map(o => ({ long: o.long as string, attribute: o.attributeName(), boolean: o.isBoolean() }))
    const table = renderOptionsTable({ shape: DaemonConfigSchema.shape, defaults, cli, formatDuration })
    // every key of the schema is in it, with its CLI flag where it has one
    for (const key of Object.keys(DaemonConfigSchema.shape)) expect(table).toContain(`\`${key}\``)
    expect(table).toMatch(/^\| `--app-config` \| `appConfig` \| string \|/m)
    expect(table).toMatch(/^\| — \| `freezeAfter` \| duration \| `5m` \|/m)
    const text = fs.readFileSync(OPERATOR_DOC, 'utf8')
    expect(withOptionsTable(text, table), 'docs/operator.md: the options table is out of date; run "npm run build && node scripts/gen-options-doc.ts"').toBe(text)
  })

  it('a key of the schema with no meaning written for it is an error, not a silent gap', () => {
    const shape = { ...DaemonConfigSchema.shape, brandNew: DaemonConfigSchema.shape.mdns }
    expect(() => renderOptionsTable({ shape, defaults: {}, cli: [], formatDuration })).toThrow(/no meaning for brandNew/)
  })

  it('every relative link and anchor in the docs resolves', () => {
    const broken = pages().flatMap(f => brokenLinks(f, fs.readFileSync(path.join(ROOT, f), 'utf8')))
    expect(broken).toEqual([])
  })

  it('every test a page cites by name (SECURITY.md\'s test column) exists, under that name', () => {
    const missing = pages().flatMap(f => missingTests(f, fs.readFileSync(path.join(ROOT, f), 'utf8')))
    expect(missing).toEqual([])
    // and the check can fail: a renamed test, a missing file
    expect(missingTests('x.md', '`e2e/cli.test.ts` › "no such test here"; `unit/nope.test.ts` › "x"')).toEqual(['x.md: test/e2e/cli.test.ts has no test "no such test here"', 'x.md: test/unit/nope.test.ts does not exist'])
  })

  it('no page cites a design document that is not in the repository', () => {
    for (const f of pages()) expect(fs.readFileSync(path.join(ROOT, f), 'utf8'), f).not.toMatch(/DESIGN\.md|the design document/)
  })

  it('the benchmark report links only to sections of the analysis that exist, and writes nothing but itself and its plots', async () => {
    const analysis = anchors(fs.readFileSync(path.join(ROOT, 'docs', ANALYSIS_PAGE), 'utf8'))
    for (const [target, anchor] of Object.entries(ANALYSIS_ANCHORS)) expect(analysis.has(anchor), `${target} → #${anchor}`).toBe(true)
    // the report of the recorded run, written elsewhere: its links resolve as if it were docs/benchmarks.md
    const run = parseRun(fs.readFileSync(path.join(ROOT, 'docs', 'benchmarks', 'run.json'), 'utf8'), 'docs/benchmarks/run.json')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'upgossip-report-'))
    try {
      const written = await writeReport(run, path.join(dir, 'benchmarks.md'))
      expect(written.every(f => f.startsWith(dir))).toBe(true)
      const md = fs.readFileSync(path.join(dir, 'benchmarks.md'), 'utf8')
      const links = brokenLinks('docs/benchmarks.md', md).filter(l => !l.includes('benchmarks/') || !l.includes('.svg'))
      expect(links).toEqual([])
      expect(md).toContain(`](${ANALYSIS_PAGE}#`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('the README is a front door: at most 200 lines, and its benchmark figures are those of docs/benchmarks/run.json, each with the commit of its run', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
    expect(readme.split('\n').length).toBeLessThanOrEqual(200)
    expect(readme).not.toContain('bench:start')
    const run = parseRun(fs.readFileSync(path.join(ROOT, 'docs', 'benchmarks', 'run.json'), 'utf8'), 'docs/benchmarks/run.json')
    const rows = [...readme.matchAll(/^\| `([^`]+)` \| [^|]+ \| ([^|]+) \| (met|missed) \|$/gm)]
    expect(rows.length).toBeGreaterThan(0)
    for (const [, name, value, verdict] of rows) {
      const target = run.targets.find(t => t.name === name)
      expect(target, `README names ${name ?? ''}, which run.json has no target of`).toBeDefined()
      expect(String(target?.value), `README's ${name ?? ''}: update it from docs/benchmarks/run.json`).toBe((value as string).trim())
      expect(target?.met === true ? 'met' : 'missed').toBe(verdict)
      // a merged run.json holds figures of several runs: the README names the commit each row was measured at
      const commit = runOf(run, sectionOf(name as string))?.commit
      expect(readme, `README's ${name ?? ''} comes from the run at commit ${commit ?? 'unknown'}: name it`).toContain(`commit \`${commit ?? ''}\``)
    }
  })

  it('the npm package ships the docs pages and small plots, not run data', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[] }
    const docs = pkg.files.filter(f => f.startsWith('docs'))
    expect(docs.length).toBeGreaterThan(0)
    for (const entry of docs) expect(entry, 'a "files" entry under docs/ names pages or plots only').toMatch(/\*\.(md|svg)$/)
  })
})
