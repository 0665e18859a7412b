/**
 * docs/tutorial.md (and any page written the same way: docs/process-apps.md), run word for
 * word: every ```sh block and every `$ ` line of a ```console block, in order, in one bash
 * with job control (as in a terminal), in a fresh temporary directory, with `upgossip` an
 * alias of this checkout's bin/upgossip.js and `$UPGOSSIP_REPO` this checkout — what the
 * page's set-up block makes. That set-up block (marked `<!-- tutorial: setup -->`) is the
 * one block not run: it clones and builds, which the caller has done.
 *
 * The tests (test/e2e/tutorial.test.ts, test/e2e/process-apps-guide.test.ts) compare what
 * each command printed with the transcript pasted under it; run this file to see a fresh
 * transcript, e.g. after changing a page:
 *
 * @example
 * ```sh
 * npm run build && node test/e2e/support/tutorial.ts          # prints the tutorial's transcript
 * node test/e2e/support/tutorial.ts --keep                     # and keeps the directory
 * node test/e2e/support/tutorial.ts --doc docs/process-apps.md # another page
 * ```
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))
export const TUTORIAL = path.join(ROOT, 'docs', 'tutorial.md')
/** The guide to process apps, run the same way. */
export const PROCESS_APPS_GUIDE = path.join(ROOT, 'docs', 'process-apps.md')

/** One thing the tutorial tells the reader to run. */
export interface TutorialStep {
  /** `sh`: a block pasted whole; `console`: one `$ ` line of a transcript. */
  kind: 'sh' | 'console'
  command: string
  /** The output pasted under a `$ ` line (none for `sh` blocks). */
  shown: string[]
  /** The block was marked `<!-- tutorial: output varies -->`: only its exit status is checked. */
  varies: boolean
  /** Line number in the markdown, for messages. */
  line: number
}

/** What a step printed (stdout and stderr together, as in a terminal) and its exit status. */
export interface StepResult {
  step: TutorialStep
  output: string[]
  status: number | null
}

/** The steps of the tutorial, in the order a reader meets them. */
export function tutorialSteps (markdown: string): TutorialStep[] {
  const lines = markdown.split('\n')
  const steps: TutorialStep[] = []
  let marker = ''
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    const comment = /^<!-- tutorial: ([a-z ]+) -->$/.exec(line.trim())
    if (comment != null) {
      marker = comment[1] as string
      continue
    }
    const fence = /^```(sh|console)\s*$/.exec(line)
    if (fence == null) {
      if (line.trim() !== '') marker = ''
      continue
    }
    const kind = fence[1] as 'sh' | 'console'
    const start = i + 1
    let end = start
    while (end < lines.length && lines[end] !== '```') end++
    const body = lines.slice(start, end)
    i = end
    const skip = marker === 'setup'
    const varies = marker === 'output varies'
    marker = ''
    if (skip) continue
    if (kind === 'sh') {
      steps.push({ kind, command: body.join('\n'), shown: [], varies, line: start })
      continue
    }
    for (let j = 0; j < body.length; j++) {
      const text = body[j] as string
      if (!text.startsWith('$ ')) continue
      const shown: string[] = []
      while (j + 1 < body.length && !(body[j + 1] as string).startsWith('$ ')) shown.push(body[++j] as string)
      steps.push({ kind, command: text.slice(2), shown, varies, line: start + j + 1 - shown.length })
    }
  }
  return steps
}

const MARK = '@@tutorial-step'

/** The bash script that runs the steps, each between markers that carry its exit status. */
function script (steps: TutorialStep[]): string {
  const out = [
    'set -m', // job control, as in a terminal: `kill %1` stops a daemon started with `&`
    'shopt -s expand_aliases',
    `alias upgossip=${JSON.stringify(path.join(ROOT, 'bin', 'upgossip.js'))}`,
    'exec 2>&1'
  ]
  steps.forEach((s, i) => {
    out.push(`printf '\\n${MARK} ${i}\\n'`, s.command, `printf '\\n${MARK}-status %d\\n' $?`)
  })
  return out.join('\n') + '\n'
}

/** Job-control chatter a terminal prints too ("[1]+  Done …"), which the transcript leaves out. */
const JOB_NOTICE = /^\[\d+\][+-]?\s+(Done|Exit \d+|Terminated|Killed|Running|Stopped)\b/

/** Split the combined output at the markers. */
function splitOutput (steps: TutorialStep[], text: string): StepResult[] {
  const results: StepResult[] = steps.map(step => ({ step, output: [], status: null }))
  let current: StepResult | undefined
  for (const line of text.split('\n')) {
    const begin = new RegExp(`^${MARK} (\\d+)$`).exec(line)
    const end = new RegExp(`^${MARK}-status (\\d+)$`).exec(line)
    if (begin != null) {
      current = results[Number(begin[1])]
    } else if (end != null && current != null) {
      current.status = Number(end[1])
      // the marker's own leading newline
      if (current.output.at(-1) === '') current.output.pop()
      current = undefined
    } else if (current != null && !JOB_NOTICE.test(line)) {
      current.output.push(line)
    }
  }
  return results
}

/** The pids of daemons still holding a data directory under `dir` (from their lock files). */
export async function runningDaemons (dir: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await fs.readdir(dir).catch(() => [])) {
    const lock = await fs.readFile(path.join(dir, entry, 'lock'), 'utf8').catch(() => undefined)
    if (lock == null) continue
    const pid = (JSON.parse(lock) as { pid?: number }).pid
    if (typeof pid !== 'number') continue
    try {
      process.kill(pid, 0)
      pids.push(pid)
    } catch {}
  }
  return pids
}

/** Stop daemons the tutorial left running (a step failed before its last one). */
export async function stopDaemons (dir: string): Promise<void> {
  for (const pid of await runningDaemons(dir)) {
    try { process.kill(pid, 'SIGTERM') } catch {}
  }
}

/** Run the tutorial's steps in `dir` (empty); resolves when bash exits or `timeoutMs` passes. */
export async function runTutorial (dir: string, steps: TutorialStep[], timeoutMs = 600_000): Promise<{ results: StepResult[], timedOut: boolean, raw: string }> {
  const file = path.join(os.tmpdir(), `upgossip-tutorial-${process.pid}-${Date.now()}.sh`)
  await fs.writeFile(file, script(steps))
  // `upgossip` on PATH as well as an alias: an alias is not seen by a command that runs
  // another (`timeout 120 upgossip daemon …`), as a reader's installed command is
  const bin = await fs.mkdtemp(path.join(os.tmpdir(), 'upgossip-tutorial-bin-'))
  await fs.symlink(path.join(ROOT, 'bin', 'upgossip.js'), path.join(bin, 'upgossip'))
  // the caller's PATH as it is: with an older Node first, `upgossip` re-executes itself on
  // the pinned Node 22, as in a newcomer's terminal; under `npm test` Node 22 comes first
  // UPGOSSIP_REPO: the clone, as a page's set-up block names it (to copy testnet/apps/pykv, say)
  const env: NodeJS.ProcessEnv = { ...process.env, UPGOSSIP_REPO: ROOT, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` }
  delete env.UPGOSSIP_DATA
  return await new Promise((resolve, reject) => {
    const child = spawn('bash', ['--norc', '--noprofile', file], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let raw = ''
    child.stdout.on('data', d => { raw += String(d) })
    child.stderr.on('data', d => { raw += String(d) })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', () => {
      clearTimeout(timer)
      void Promise.all([fs.rm(file, { force: true }), fs.rm(bin, { recursive: true, force: true })]).finally(() => { resolve({ results: splitOutput(steps, raw), timedOut, raw }) })
    })
  })
}

/**
 * A line as the test compares it: what differs from run to run (peer ids and their host
 * names, release ids, keys, tokens, times, ports, pids, ages) replaced by a placeholder,
 * spaces collapsed.
 */
export function normalise (line: string): string {
  return line
    .replace(/12D3KooW[1-9A-HJ-NP-Za-km-z]*(…[1-9A-HJ-NP-Za-km-z]*)?/g, '<peer>')
    .replace(/\bbaf[a-z2-7]*(…[a-z2-7]*)?/g, '<cid>')
    .replace(/\bz6Mk[1-9A-HJ-NP-Za-km-z]*(…[1-9A-HJ-NP-Za-km-z]*)?/g, '<key>')
    .replace(/\bk51[0-9a-z]{59}\b/g, '<host>')
    .replace(/upgossip:[0-9a-f]{16,}@/g, 'upgossip:<token>@')
    .replace(/\bport \d+/g, 'port <port>')
    .replace(/"(pid|port)": ?\d+/g, '"$1":<n>')
    .replace(/\bpid \d+/g, 'pid <n>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    // the time of day shown in transcripts taken before stderr lines carried the date
    .replace(/\b\d\d:\d\d:\d\d\b/g, '<time>')
    .replace(/\/tcp\/\d+/g, '/tcp/<port>')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>')
    .replace(/seen \d+s ago/g, 'seen <n>s ago')
    .replace(/\s+/g, ' ')
    .trim()
}

/** A pasted line as a pattern: `…` stands for anything (a shortened line). */
function pattern (shown: string): RegExp {
  const parts = normalise(shown).split('…').map(p => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${parts.join('.*')}$`)
}

/**
 * The pasted lines that the run did not print: each line shown must match a line printed
 * (a different one for each), ignoring what differs from run to run. A line that is only
 * `…` stands for lines left out; lines may come in another order (peers are listed in the
 * order a peer heard of them).
 */
export function missingLines (shown: string[], printed: string[]): string[] {
  const left = printed.map(normalise)
  const missing: string[] = []
  for (const line of shown) {
    if (line.trim() === '…' || line.trim() === '') continue
    const re = pattern(line)
    const at = left.findIndex(p => re.test(p))
    if (at < 0) missing.push(line)
    else left.splice(at, 1)
  }
  return missing
}

/** The exit status a pasted transcript implies: 1 when it shows a refusal (`upgossip: … [SomeError]`). */
export function expectedStatus (step: TutorialStep): number {
  return step.shown.some(l => /^upgossip: .*\[[A-Za-z]*Error\]$/.test(l)) ? 1 : 0
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const keep = process.argv.includes('--keep')
  const doc = process.argv.includes('--doc') ? path.resolve(process.argv[process.argv.indexOf('--doc') + 1] ?? '') : TUTORIAL
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upgossip-tutorial-'))
  const steps = tutorialSteps(await fs.readFile(doc, 'utf8'))
  const { results, timedOut } = await runTutorial(dir, steps)
  for (const r of results) {
    if (r.step.kind === 'sh') {
      if (r.output.length > 0 || r.status !== 0) process.stdout.write(`[sh block at line ${r.step.line}, exit ${r.status ?? 'none'}]\n${r.output.join('\n')}\n`)
      continue
    }
    process.stdout.write(`$ ${r.step.command}\n${r.output.map(l => l + '\n').join('')}`)
    if (r.status !== expectedStatus(r.step)) process.stdout.write(`[exit ${r.status ?? 'none'}]\n`)
  }
  await stopDaemons(dir)
  if (timedOut) process.stderr.write('tutorial: timed out\n')
  if (keep) process.stderr.write(`tutorial: kept ${dir}\n`)
  else await fs.rm(dir, { recursive: true, force: true })
}
