/**
 * docs/apps.md, section 2 ("A complete example: kv 1.0.0 and 2.0.0"), run as a reader
 * runs it: the files it shows (`kv-v1/…`, `kv-v2/…`) written as shown, then every `$ `
 * line of its transcripts in one bash, as test/e2e/support/tutorial.ts runs the tutorial;
 * what each command printed must match what the page pasted under it (ids, times and
 * ports aside), so the transcript (a rollback's answers among them) cannot drift from the code.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { expectedStatus, missingLines, runTutorial, runningDaemons, stopDaemons, tutorialSteps } from './support/tutorial.ts'
import type { StepResult, TutorialStep } from './support/tutorial.ts'
import { tempDir } from '../helpers.js'

const APPS_GUIDE = fileURLToPath(new URL('../../docs/apps.md', import.meta.url))
const SECTION = '## 2. A complete example: kv 1.0.0 and 2.0.0'

/** The section's lines, from its heading to the next. */
function section (markdown: string, heading: string): string[] {
  const lines = markdown.split('\n')
  const start = lines.indexOf(heading)
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '))
  return lines.slice(start, end < 0 ? undefined : end)
}

/** The files the section shows under a caption such as "`kv-v2/migrate/up.js`:" (or "`kv-v2/upgossip.json` — …"). */
function shownFiles (lines: string[]): Map<string, string> {
  const files = new Map<string, string>()
  for (let i = 0; i < lines.length; i++) {
    const caption = /^`(kv-v[12]\/[^`]+)`/.exec(lines[i] ?? '')
    if (caption == null) continue
    let open = i + 1
    while (open < lines.length && !/^```[a-z]+$/.test(lines[open] ?? '')) open++
    const close = lines.indexOf('```', open + 1)
    files.set(caption[1] as string, lines.slice(open + 1, close).join('\n') + '\n')
    i = close
  }
  return files
}

/** The section's transcripts (plain ``` blocks) as the tutorial runner reads them (```console). */
function transcriptSteps (lines: string[]): TutorialStep[] {
  let inFence = false
  const marked = lines.map(line => {
    if (!line.startsWith('```')) return line
    const opening = !inFence
    inFence = !inFence
    return opening && line === '```' ? '```console' : line
  })
  // "[exit 1]" under a refusal is the page's note of the exit status, which is checked on its own
  return tutorialSteps(marked.join('\n')).map(step => ({ ...step, shown: step.shown.filter(l => !/^\[exit \d+\]$/.test(l)) }))
}

describe('docs/apps.md', () => {
  let dir: string | undefined

  afterAll(async () => {
    if (dir == null) return
    await stopDaemons(dir)
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('section 2 runs word for word, and prints what its transcripts show', async () => {
    const lines = section(await fs.readFile(APPS_GUIDE, 'utf8'), SECTION)
    const files = shownFiles(lines)
    expect([...files.keys()].sort()).toEqual(['kv-v1/server.js', 'kv-v1/upgossip.json', 'kv-v2/migrate/down.js', 'kv-v2/migrate/up.js', 'kv-v2/server.js', 'kv-v2/upgossip.json'])
    const steps = transcriptSteps(lines)
    expect(steps.map(s => s.command).join('\n')).toContain('upgossip rollback --data ./a')
    dir = await tempDir('upgossip-apps-guide-')
    for (const [name, text] of files) {
      await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true })
      await fs.writeFile(path.join(dir, name), text)
    }
    const { results, timedOut, raw } = await runTutorial(dir, steps, 240_000)
    const where = (r: StepResult): string => `docs/apps.md, section 2, line ${r.step.line} of the section: ${r.step.command.split('\n')[0] ?? ''}\n--- printed:\n${r.output.join('\n')}`
    expect(timedOut, `the section did not finish; output so far:\n${raw.slice(-4000)}`).toBe(false)
    for (const r of results) {
      expect(r.status, where(r)).toBe(expectedStatus(r.step))
      if (!r.step.varies) expect(missingLines(r.step.shown, r.output), where(r)).toEqual([])
    }
    // after the rollback, 1.0.0 answers, with the value written under 2.0.0 carried back
    const afterRollback = results.slice(results.findIndex(r => r.step.command === 'upgossip rollback --data ./a'))
    expect(afterRollback.filter(r => r.step.command.startsWith('upgossip call')).map(r => JSON.parse(r.output.join('\n')) as { version: string }).map(a => a.version)).toEqual(['1.0.0', '1.0.0'])
    expect(await runningDaemons(dir)).toEqual([])
  }, 300_000)
})
