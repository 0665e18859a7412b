/**
 * The supervisor of simulation-object workers (host/so-supervisor.ts), with small real
 * workers that run its loop (host/so-thread.ts): work answered, SOs loaded (and loaded
 * again by a fresh worker before its first work), a worker that hangs (a named error, a
 * fresh worker, the daemon's thread never stalls), one that crashes, exits or runs out of
 * heap, a piece of work past its own limit, output to the log, stop; and the watchdog
 * against a stub thread, handed in as a component.
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { SimulationSupervisor } from '../../src/host/so-supervisor.js'
import type { SimulationSupervisorInit, SimulationWorkerComponents, SupervisedWork } from '../../src/host/so-supervisor.js'
import type { StartThread, ThreadEvents, ThreadStart } from '../../src/host/so-thread-start.js'
import { tempDir, writeTree } from '../helpers.js'

/** Named errors as a runner makes them. */
class KindError extends Error {
  constructor (message: string, name: string) {
    super(message)
    this.name = name
  }
}

/**
 * A worker of a test kind: its "SOs" are any module with a `version`; it answers `job`
 * messages by what they ask for (an answer, a loop, a crash, …).
 */
const WORKER = `import { threadId, workerData } from 'node:worker_threads'
const { superviseThread } = await import(workerData.modules.thread)
const thread = superviseThread({
  chain: native => { const versions = [native]; return { add: so => { versions.push(so.version); versions.sort((a, b) => a - b) }, spoken: () => versions } },
  shape: (value, where) => { if (typeof value?.version !== 'number') { const err = new Error(where + ': no version'); err.name = 'SimulationShapeError'; throw err } return value },
  receive: async m => {
    const done = value => { thread.post({ t: 'done', id: m.id, value }) }
    if (m.do === 'answer') await thread.loaded().then(() => done({ thread: threadId, spoken: thread.chain()?.spoken() ?? null, settings: workerData.settings }))
    if (m.do === 'hang') for (;;) {}
    if (m.do === 'crash') setImmediate(() => { throw new Error('the SO broke') })
    if (m.do === 'exit') process.exit(3)
    if (m.do === 'late') setTimeout(() => done('late'), 2000)
    if (m.do === 'grow') { const kept = []; for (;;) kept.push(new Array(100000).fill(Math.random())) }
    if (m.do === 'print') { console.log('hello from an SO'); done('printed') }
  }
})
`

interface Job extends SupervisedWork {
  resolve: (value: unknown) => void
}

let root: string | undefined
const supervisors: Array<SimulationSupervisor<Job>> = []
afterEach(async () => { for (const s of supervisors.splice(0)) await s.stop('the test ended') })

/** A supervisor of the test kind, its log, and `run` to send one job. */
async function setup (init: Partial<SimulationSupervisorInit> = {}, components: Partial<SimulationWorkerComponents> = {}): Promise<{ supervisor: SimulationSupervisor<Job>, log: string[], run: (what: string, limitMs?: number) => Promise<unknown>, dir: string }> {
  root ??= await tempDir('upgossip-so-supervisor-')
  await writeTree(root, { 'worker.mjs': WORKER, 'v1.mjs': 'export default { version: 1 }\n', 'v3.mjs': 'export default { version: 3 }\n', 'shapeless.mjs': 'export default {}\n', 'loops.mjs': 'for (;;) {}\n' })
  const log: string[] = []
  const supervisor: SimulationSupervisor<Job> = new SimulationSupervisor<Job>({ log: line => log.push(line), ...components }, {
    native: 2,
    worker: pathToFileURL(path.join(root, 'worker.mjs')),
    modules: {},
    settings: { window: 7 },
    noun: 'job',
    watchdogMs: 500,
    maxOldGenerationSizeMb: 32,
    error: (message, name) => new KindError(message, name),
    onMessage: raw => {
      const m = raw as { t?: string, id?: number, value?: unknown }
      if (m.t === 'done' && typeof m.id === 'number') supervisor.settle(m.id)?.resolve(m.value)
    },
    ...init
  })
  supervisors.push(supervisor)
  const run = async (what: string, limitMs?: number): Promise<unknown> => await new Promise((resolve, reject) => {
    const { id } = supervisor.open(() => ({ resolve, fail: reject }), limitMs)
    supervisor.post({ t: 'job', id, do: what })
  })
  return { supervisor, log, run, dir: root }
}

describe('the supervisor of simulation-object workers', () => {
  it('starts a worker for work, loads SOs (naming those that do not load), and a fresh worker loads them again before its first work', async () => {
    const { supervisor, log, run, dir } = await setup()
    const first = await run('answer') as { thread: number, spoken: unknown, settings: unknown }
    expect(first).toMatchObject({ spoken: null, settings: { window: 7 } })
    expect(await supervisor.load(['v1.mjs', 'v3.mjs', 'shapeless.mjs', 'missing.mjs'].map((m, i) => ({ module: path.join(dir, m), version: [1, 3, 1, 4][i] as number })))).toEqual([1, 2, 3])
    expect(log.join('\n')).toMatch(/simulation object not loaded: .*shapeless\.mjs: no version/)
    expect(log.join('\n')).toMatch(/simulation object not loaded: .*missing\.mjs/)
    expect(await run('answer')).toMatchObject({ thread: first.thread, spoken: [1, 2, 3] })

    // a worker that exits takes its work with it; the next work gets a fresh worker, with the SOs loaded first
    await expect(run('exit')).rejects.toMatchObject({ name: 'SimulationError', message: expect.stringMatching(/exited \(3\)/) })
    const fresh = await run('answer') as { thread: number, spoken: unknown }
    expect(fresh.thread).not.toBe(first.thread)
    expect(fresh.spoken).toEqual([1, 2, 3])

    // a fresh worker reloads what was loaded before: that answer is not taken for the one of a load asked for meanwhile
    await expect(run('exit')).rejects.toMatchObject({ name: 'SimulationError' })
    const [, spoken] = await Promise.all([run('answer'), supervisor.load([{ module: path.join(dir, 'v1.mjs'), version: 1 }])])
    expect(spoken).toEqual([1, 2])

    // a version the loaded SOs do not chain to is not claimed; loading none ends the idle worker
    expect(await supervisor.load([{ module: path.join(dir, 'v1.mjs'), version: 3 }])).toEqual([2])
    expect(log.join('\n')).toMatch(/v1\.mjs simulates version 1, expected 3/)
    expect(await supervisor.load([])).toEqual([2])
  })

  it('a worker that hangs fails its work with SimulationTimeoutError, is replaced, and never stalls the daemon\'s thread', async () => {
    const { supervisor, log, run, dir } = await setup()
    await supervisor.load([{ module: path.join(dir, 'v1.mjs'), version: 1 }])
    const before = await run('answer') as { thread: number }
    let ticks = 0
    const timer = setInterval(() => { ticks++ }, 100)
    const started = Date.now()
    const [hung, bystander] = await Promise.allSettled([run('hang'), run('late')])
    clearInterval(timer)
    expect(hung).toMatchObject({ status: 'rejected', reason: { name: 'SimulationTimeoutError' } })
    // the work that was in the same worker fails too, with the same error
    expect(bystander).toMatchObject({ status: 'rejected', reason: { name: 'SimulationTimeoutError' } })
    expect(Date.now() - started).toBeLessThan(5000)
    expect(ticks).toBeGreaterThan(3)
    expect(log.join('\n')).toMatch(/a simulation object blocked its worker for more than 500 ms .*; 2 job\(s\) failed/)
    const after = await run('answer') as { thread: number, spoken: unknown }
    expect(after.thread).not.toBe(before.thread)
    expect(after.spoken).toEqual([1, 2])
  })

  it('a worker that crashes or runs out of heap fails its work with SimulationError, and the next work runs', async () => {
    const { run } = await setup()
    await expect(run('crash')).rejects.toMatchObject({ name: 'SimulationError', message: expect.stringMatching(/worker running the simulation objects failed: the SO broke/) })
    expect(await run('print')).toBe('printed')
    await expect(run('grow')).rejects.toMatchObject({ name: 'SimulationError', message: expect.stringMatching(/memory/i) })
    expect(await run('answer')).toMatchObject({ spoken: null })
  }, 60_000)

  it('a piece of work past its own limit fails alone; the worker, which still answers, is kept', async () => {
    const { run } = await setup()
    const before = await run('answer') as { thread: number }
    await expect(run('late', 300)).rejects.toMatchObject({ name: 'SimulationTimeoutError', message: 'the job ran past its 300 ms limit in the simulation objects' })
    expect(await run('answer')).toMatchObject({ thread: before.thread })
  })

  it('sends what an SO prints to the log, and once stopped fails its work and takes none', async () => {
    const { supervisor, log, run } = await setup()
    expect(await run('print')).toBe('printed')
    await expect.poll(() => log.join('\n')).toContain('simulation object output: hello from an SO')
    const pending = expect(run('late')).rejects.toMatchObject({ name: 'SimulationError', message: 'the app stopped' })
    await supervisor.stop('the app stopped')
    await pending
    await expect(run('answer')).rejects.toMatchObject({ name: 'SimulationError' })
  })

  it('gives up on SOs whose loading blocks the worker, and speaks its own version only', async () => {
    const { supervisor, log, dir } = await setup({ loadTimeoutMs: 500 })
    expect(await supervisor.load([{ module: path.join(dir, 'loops.mjs'), version: 1 }])).toEqual([2])
    expect(log.join('\n')).toMatch(/did not load within 500 ms/)
  })

  it('pings a stub thread only while it has work, and terminates one that stops answering', async () => {
    const posted: Array<{ t?: string, id?: number, n?: number }> = []
    let terminated = 0
    let events: ThreadEvents | undefined
    let started: ThreadStart | undefined
    const startThread: StartThread = (start, on) => {
      started = start
      events = on
      return { post: message => { posted.push(message as { t?: string }) }, terminate: async () => { terminated++ } }
    }
    const { supervisor, run } = await setup({ watchdogMs: 250 }, { startThread })
    const pings = (): number => posted.filter(m => m.t === 'ping').length
    const answer = (t: string, fields: Record<string, unknown>): void => { events?.message({ t, ...fields }) }

    const first = run('answer')
    expect(started?.workerData.modules.thread).toMatch(/so-thread\.(ts|js)$/)
    answer('up', {})
    await expect.poll(pings).toBe(1)
    answer('pong', { n: 1 })
    answer('done', { id: posted.find(m => m.t === 'job')?.id, value: 'ok' })
    expect(await first).toBe('ok')
    // nothing in hand: the watchdog rests
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(pings()).toBeLessThanOrEqual(2)
    const rested = pings()

    // work again: pinged again; this time the thread does not answer
    const second = run('hang')
    await expect.poll(pings).toBe(rested + 1)
    await expect(second).rejects.toMatchObject({ name: 'SimulationTimeoutError' })
    expect(terminated).toBe(1)
    expect(supervisor.size).toBe(0)
  })
})
