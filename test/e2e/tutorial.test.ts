/**
 * docs/tutorial.md works when followed word for word: its commands run in a fresh
 * directory with the built CLI and real daemons on loopback, and what each prints matches
 * the transcript pasted under it (ids, times and ports aside). The steps that are timing
 * snapshots are marked `<!-- tutorial: output varies -->` there; they must still succeed.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { TUTORIAL, expectedStatus, missingLines, runTutorial, runningDaemons, stopDaemons, tutorialSteps } from './support/tutorial.ts'
import type { StepResult } from './support/tutorial.ts'
import { tempDir } from '../helpers.js'

describe('docs/tutorial.md', () => {
  let dir: string | undefined

  afterAll(async () => {
    if (dir == null) return
    await stopDaemons(dir)
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('the tutorial\'s steps are found: init, keygen, release, three daemons, publish, calls, approve, rollback, stop', async () => {
    const steps = tutorialSteps(await fs.readFile(TUTORIAL, 'utf8'))
    const commands = steps.map(s => s.command).join('\n')
    for (const expected of ['upgossip init notes', 'upgossip keygen', 'upgossip release notes ', 'upgossip daemon --data peer-a', 'upgossip daemon --data peer-c', 'upgossip check notes-v2', 'upgossip publish notes-2.0.0.car', 'upgossip approve', 'upgossip rollback --data peer-b', 'kill %1 %2 %3']) {
      expect(commands).toContain(expected)
    }
    // the set-up block (clone, install, build) is the one block not run
    expect(commands).not.toContain('npm install')
  })

  it('runs word for word, and prints what its transcripts show', async () => {
    dir = await tempDir('upgossip-tutorial-')
    const steps = tutorialSteps(await fs.readFile(TUTORIAL, 'utf8'))
    const { results, timedOut, raw } = await runTutorial(dir, steps, 420_000)
    const where = (r: StepResult): string => `docs/tutorial.md:${r.step.line}: ${r.step.command.split('\n')[0] ?? ''}\n--- printed:\n${r.output.join('\n')}`
    expect(timedOut, `the tutorial did not finish; output so far:\n${raw.slice(-4000)}`).toBe(false)
    for (const r of results) {
      expect(r.status, where(r)).toBe(r.step.kind === 'sh' ? 0 : expectedStatus(r.step))
      if (r.step.kind === 'console' && !r.step.varies) expect(missingLines(r.step.shown, r.output), where(r)).toEqual([])
    }

    // what the reader is told happened, checked on the peers themselves
    const byCommand = (text: string): string => results.filter(r => r.step.command.includes(text)).map(r => r.output.join('\n')).join('\n')
    expect(byCommand('upgossip status --data peer-c\n'.trim())).toMatch(/notes 2\.0\.0 +waiting .* waiting on approve/)
    expect(byCommand('\'{"op":"get","key":"draft"}\'')).toContain('"value": "written on 2.0.0"')
    expect(byCommand('upgossip rollback --data peer-b')).toContain('rolled back 2.0.0 → 1.0.0')
    // the last step stopped every daemon it started: no lock is held, no process is left
    expect(await runningDaemons(dir)).toEqual([])
    for (const peer of ['peer-a', 'peer-b', 'peer-c']) {
      const entries = await fs.readdir(path.join(dir, peer))
      expect(entries).not.toContain('lock')
      expect(entries).not.toContain('control.json')
    }
  }, 480_000)
})
