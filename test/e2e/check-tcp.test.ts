/**
 * `upgossip check` of a process app whose wire is TCP (tcpchat, in Python): each sample is
 * one connection of 1.0.0's protocol, answered by 1.0.0's program; it goes through 2.0.0's
 * stream SOs both ways (in a daemon's worker) and through each to 2.0.0's program, whose
 * answers must be 1.0.0's, JSON lines compared as values. What differs is named, sample by
 * sample and field by field; `--json` has the same.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir, writeTree } from '../helpers.js'
import { hasPython, requirePythonInCi } from './support/process-apps.js'
import { runCli } from './support/testnet.js'

requirePythonInCi('check-tcp.test.ts')

const TCPCHAT = fileURLToPath(new URL('../../testnet/apps/tcpchat/', import.meta.url))

let root: string
beforeAll(async () => { root = await tempDir('upgossip-check-tcp-') })
afterAll(async () => { await fs.rm(root, { recursive: true, force: true }) })

/** A copy of a tcpchat version, its manifest changed by `edit`, files added or replaced. */
async function tcpchat (version: 'v1' | 'v2', name: string, edit: (m: Record<string, unknown>) => void = () => {}, files: Record<string, string> = {}): Promise<string> {
  const d = path.join(root, name)
  await fs.cp(path.join(TCPCHAT, version), d, { recursive: true })
  const m = JSON.parse(await fs.readFile(path.join(d, 'upgossip.json'), 'utf8')) as Record<string, unknown>
  edit(m)
  await writeTree(d, { 'upgossip.json': JSON.stringify(m), ...files })
  return d
}

const line = (value: unknown): string => JSON.stringify(value) + '\n'

/** A board with one message, in the file both versions keep. */
async function sampleState (name: string): Promise<string> {
  const d = path.join(root, name)
  await writeTree(d, { 'messages.json': JSON.stringify({ messages: [{ id: 'm1', from: 'ann', text: 'hello' }] }) })
  return d
}

// a command transform that carries the board over as it is, both ways: 2.0.0 then starts on what `up` made
const COPY = 'import os, shutil\nshutil.copy(os.path.join(os.environ["UPGOSSIP_FROM"], "messages.json"), os.environ["UPGOSSIP_TO"])\n'

describe.skipIf(!hasPython)('upgossip check, TCP apps (tcpchat)', () => {
  it('answers each sample connection with 1.0.0\'s program, and 2.0.0\'s SOs and program give the same both ways', async () => {
    const v2 = await tcpchat('v2', 'a-v2', m => { m.transform = { up: { command: ['python3', 'copy.py'] }, down: { command: ['python3', 'copy.py'] } } }, { 'copy.py': COPY })
    const samples = path.join(root, 'a-samples.jsonl')
    await fs.writeFile(samples, [
      { lines: [{ op: 'echo', text: 'hi' }, { op: 'list' }] },
      { send: 'not json\n' },
      // the last line without its newline: the SOs pass the end of the stream on
      { sendBase64: Buffer.from('{"op":"echo","text":"é"}').toString('base64') }
    ].map(line).join(''))
    const r = await runCli(['check', v2, '--previous', path.join(TCPCHAT, 'v1'), '--state', await sampleState('a-state'), '--samples', samples])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain('transform up: ok (1 files)')
    expect(r.stdout).toContain('down(up(state)) == state: ok')
    expect(r.stdout).toMatch(/samples: 3 TCP connections, answered by 1\.0\.0's program: \d+ bytes, \d+ bytes, \d+ bytes\n/)
    for (const kind of ['past', 'future']) {
      expect(r.stdout).toContain(`${kind} SO: 3 samples, 0 did not survive the round trip`)
      expect(r.stdout).toContain(`${kind} SO with 2.0.0's program: 3 samples, 0 answered otherwise than 1.0.0's`)
    }
    expect(r.stderr).toContain('no problems found')
  })

  it('names what an SO loses and what 2.0.0 answers otherwise, in text and in --json', async () => {
    // a past SO that drops an echo's text on its way to 2.0.0, and passes replies on untranslated
    const lossy = `import { lines, requestToV1, requestToV2 } from './wire.js'
const drop = req => { const out = requestToV2(req); delete out.body; return out }
export default { version: 1, serve: () => ({ in: lines(drop), out: s => s }), call: () => ({ out: lines(requestToV1), in: s => s }) }
`
    const v2 = await tcpchat('v2', 'b-v2', () => {}, { 'past.js': lossy })
    const samples = path.join(root, 'b-samples.jsonl')
    await fs.writeFile(samples, line({ lines: [{ op: 'echo', text: 'hi' }] }) + line({ lines: [{ op: 'nope' }] }))
    const r = await runCli(['check', v2, '--previous', path.join(TCPCHAT, 'v1'), '--samples', samples])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('past SO: 2 samples, 1 did not survive the round trip\n  sample 1: request line 1 .text: "hi" → missing')
    // 2.0.0 gets no text to echo, and answers in its own names
    expect(r.stdout).toContain('  sample 1: response line 1 .text: "hi" → missing')
    expect(r.stdout).toContain('  sample 1: response line 1 .body: missing → null')
    // 2.0.0's own error names its own field: the one thing the published SOs do not translate
    expect(r.stdout).toContain('  sample 2: response line 1 .error: "unknown op \'nope\'" → "unknown cmd \'nope\'"')
    expect(r.stdout).toContain('future SO: 2 samples, 0 did not survive the round trip')
    expect(r.stderr).toMatch(/\d+ problem\(s\) found \[CheckFailedError\]/)

    const json = await runCli(['check', v2, '--previous', path.join(TCPCHAT, 'v1'), '--samples', samples, '--json'])
    expect(json.code).toBe(1)
    const report = JSON.parse(json.stdout)
    expect(report.samples).toMatchObject({ by: '1.0.0', ends: ['closed', 'closed'] })
    expect(report.simulation.past.mismatches).toEqual([{ index: 0, problems: ['request line 1 .text: "hi" → missing'] }])
    expect(report.simulation.future).toEqual({
      samples: 2,
      mismatches: [],
      newVersion: { samples: 2, mismatches: [{ index: 1, problems: ['response line 1 .error: "unknown op \'nope\'" → "unknown cmd \'nope\'"'] }] }
    })
    expect(report.problems).toBe(report.simulation.past.mismatches.length + report.simulation.past.newVersion.mismatches.length + 1)
  })

  it('names a program that does not start, and refuses a sample that is not one connection\'s bytes', async () => {
    const broken = await tcpchat('v2', 'c-v2', m => { m.run = { command: ['python3', 'missing.py'], wire: 'tcp' } })
    const samples = path.join(root, 'c-samples.jsonl')
    await fs.writeFile(samples, line({ lines: [{ op: 'list' }] }))
    const r = await runCli(['check', broken, '--previous', path.join(TCPCHAT, 'v1'), '--samples', samples])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/past SO with 2\.0\.0's program: FAILED: 2\.0\.0's program \(python3 missing\.py\) did not start: .*missing\.py/)

    await fs.appendFile(samples, line({ method: 'GET', path: '/' }))
    const refused = await runCli(['check', path.join(TCPCHAT, 'v2'), '--previous', path.join(TCPCHAT, 'v1'), '--samples', samples])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/c-samples\.jsonl line 2: a TCP app's sample is what a client sends on one connection: .*exactly one of "send", "sendBase64" or "lines" \(not "method", "path"\) \[CheckFailedError\]/)
  })
})
