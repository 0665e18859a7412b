/**
 * docs/process-apps.md works when followed word for word: its worked example (pykv, a
 * Python process app, on two daemons: the proxy, a copied write, 2.0.0 checked and rolled
 * out with command transforms and HTTP SOs through a mixed network) runs in a
 * fresh directory with the built CLI, and what each command prints matches the transcript
 * pasted under it (ids, tokens, times, ports and pids aside). Needs python3, curl and jq.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { PROCESS_APPS_GUIDE, missingLines, runTutorial, runningDaemons, stopDaemons, tutorialSteps } from './support/tutorial.ts'
import type { StepResult } from './support/tutorial.ts'
import { tempDir } from '../helpers.js'

const missingTools = ['python3', 'curl', 'jq'].filter(tool => {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' })
    return false
  } catch {
    return true
  }
})
if (missingTools.length > 0 && process.env.CI === 'true') throw new Error(`process-apps-guide.test.ts needs ${missingTools.join(', ')} (CI=true)`)

describe.skipIf(missingTools.length > 0)('docs/process-apps.md', () => {
  let dir: string | undefined

  afterAll(async () => {
    if (dir == null) return
    await stopDaemons(dir)
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('the guide\'s steps are found: pykv copied, released, two daemons, the proxy, a write, 2.0.0 checked, published and approved, stop', async () => {
    const commands = tutorialSteps(await fs.readFile(PROCESS_APPS_GUIDE, 'utf8')).map(s => s.command).join('\n')
    for (const expected of ['cp -r "$UPGOSSIP_REPO/testnet/apps/pykv/v1" pykv-v1', 'upgossip release pykv-v1 ', 'upgossip daemon --data peer-a', 'upgossip daemon --data peer-b', 'curl -s -x "$PROXY" http://upgossip/peers', 'upgossip check pykv-v2 --previous pykv-v1', 'upgossip publish pykv-2.0.0.car', 'upgossip approve pykv@2.0.0', 'kill %1 %2']) {
      expect(commands).toContain(expected)
    }
    expect(commands).not.toContain('npm install')
  })

  it('runs word for word, and prints what its transcripts show', async () => {
    dir = await tempDir('upgossip-process-apps-')
    const steps = tutorialSteps(await fs.readFile(PROCESS_APPS_GUIDE, 'utf8'))
    const { results, timedOut, raw } = await runTutorial(dir, steps, 240_000)
    const where = (r: StepResult): string => `docs/process-apps.md:${r.step.line}: ${r.step.command.split('\n')[0] ?? ''}\n--- printed:\n${r.output.join('\n')}`
    expect(timedOut, `the guide did not finish; output so far:\n${raw.slice(-4000)}`).toBe(false)
    for (const r of results) {
      expect(r.status, where(r)).toBe(0)
      if (r.step.kind === 'console' && !r.step.varies) expect(missingLines(r.step.shown, r.output), where(r)).toEqual([])
    }

    // what the reader is told happened, checked on the peers themselves
    const byCommand = (text: string): string => results.filter(r => r.step.command.includes(text)).map(r => r.output.join('\n')).join('\n')
    // while mixed, each side read the other in its own protocol; then B's up.py carried the value written on 2.0.0 across
    expect(byCommand('curl -s -x "$PROXY_B" "http://$A/kv/colour"')).toBe('green')
    expect(byCommand('cat peer-b/app.log')).toMatch(/transform command python3 up\.py \(1\.0\.0 → 2\.0\.0\)\nup\.py: moved 1 keys to pykv 2 state\n[^]*pykv 2: serving 1 keys/)
    expect(byCommand('curl -s -x "$PROXY" "http://$B/v2/kv/colour"').split('\n')).toEqual(['{"value":"blue","updated":0}', '{"value": "green", "updated": 0}'])
    expect(await runningDaemons(dir)).toEqual([])
    for (const peer of ['peer-a', 'peer-b']) expect(await fs.readdir(path.join(dir, peer))).not.toContain('control.json')
  }, 300_000)
})
