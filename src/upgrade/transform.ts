/**
 * Running a transform (`up` or `down`) in a child process with a time limit, writing
 * into a temporary directory that is renamed into place only on success. The transform
 * is an ES module of the package (run by `transform-child.ts`) or a command in any
 * language (argv, no shell, `UPGOSSIP_FROM` / `UPGOSSIP_TO` in its environment). Either
 * runs in a process group of its own, recorded while it runs (`transform-group.ts`).
 *
 * @example
 * ```ts
 * await runTransform({ packageDir, entry: { command: ['python3', 'up.py'] }, from: snapshot, to: stateDir,
 *   fromVersion: '1.0.0', toVersion: '2.0.0', logFile: dataDir.appLog, limitMs: 120_000 })
 * ```
 */
import { fork, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { formatDuration } from '../duration.js'
import { UpgossipError } from '../errors.js'
import type { TransformEntry } from '../package/index.js'
import { fsyncDirectory } from '../store/index.js'
import { TransformGroup } from './transform-group.js'

/** The transform threw, exited, ran past its limit, could not start, or wrote nothing. */
export class TransformFailedError extends UpgossipError {
  static override name = 'TransformFailedError'
}

/** Default time limit of a transform. */
export const DEFAULT_TRANSFORM_LIMIT_MS = 120_000

/** What one transform run needs. */
export interface TransformRun {
  /** The package the transform comes from: a module path is resolved in it, a command runs in it. */
  packageDir: string
  /** The manifest's `transform.up` or `transform.down`: a module's package path, or `{ command: argv }`. */
  entry: TransformEntry
  /** A read-only copy of the old state. */
  from: string
  /** Where the new state goes (must not exist; created only on success). */
  to: string
  fromVersion: string
  toVersion: string
  limitMs?: number
  /** Where the transform's output goes (appended). */
  logFile: string
  /** Where its process group is recorded while it runs (`DataDir.transformGroup`), so that a daemon that dies does not leave it running. */
  groupFile?: string
}

/** How a transform's process ended: `error` completes the sentence "transform … <error>". */
type Outcome = { ok: true } | { ok: false, error: string }

/** What both kinds of transform process are given. */
interface Job { run: TransformRun, temp: string, logFd: number, limitMs: number }

const CHILD = new URL('./transform-child.js', import.meta.url)

async function isEmptyDir (dir: string): Promise<boolean> {
  try {
    return (await fs.readdir(dir)).length === 0
  } catch {
    return true
  }
}

/**
 * What the transform's child process answered. The transform runs in that process and can
 * send messages too: anything but the child's own `{ ok: true }` is a failure, with its
 * error text only when it is text.
 */
export function readTransformAnswer (m: unknown): { ok: boolean, error?: string } {
  const { ok, error } = (m != null && typeof m === 'object' ? m : {}) as { ok?: unknown, error?: unknown }
  if (ok === true) return { ok: true }
  return { ok: false, error: typeof error === 'string' ? error : 'answered with something that is not an answer' }
}

/** A command as a user would type it, for messages (long ones cut). */
function describeCommand (argv: readonly string[]): string {
  const text = argv.map(a => /^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)).join(' ')
  return text.length > 200 ? `${text.slice(0, 199)}…` : text
}

/** How messages and the log name a transform: `transform 1.0.0 → 2.0.0`, or with its command. */
function transformLabel (run: TransformRun): string {
  const versions = `${run.fromVersion} → ${run.toVersion}`
  return typeof run.entry === 'string' ? `transform ${versions}` : `transform command ${describeCommand(run.entry.command)} (${versions})`
}

/** Run a transform; on success `to` holds the new state, otherwise {@link TransformFailedError} and `to` is untouched. */
export async function runTransform (run: TransformRun): Promise<void> {
  const limitMs = run.limitMs ?? DEFAULT_TRANSFORM_LIMIT_MS
  const temp = `${run.to}.tmp-${randomBytes(4).toString('hex')}`
  const label = transformLabel(run)
  await fs.mkdir(temp, { recursive: true })
  const log = await fs.open(run.logFile, 'a')
  try {
    await log.write(`--- ${new Date().toISOString()} ${label}\n`)
    const job = { run, temp, logFd: log.fd, limitMs }
    const outcome = typeof run.entry === 'string' ? await runModule(job, run.entry) : await runCommand(job, run.entry.command)
    if (!outcome.ok) {
      const message = `${label} ${outcome.error}`
      await log.write(`--- ${message}\n`)
      throw new TransformFailedError(message)
    }
    if (!(await isEmptyDir(run.from)) && await isEmptyDir(temp)) {
      throw new TransformFailedError(`${label} wrote nothing, though the old state was not empty`)
    }
    await fs.rm(run.to, { recursive: true, force: true })
    await fs.rename(temp, run.to)
    await fsyncDirectory(path.dirname(run.to))
  } finally {
    await log.close()
    await fs.rm(temp, { recursive: true, force: true })
  }
}

/** An ES module's default export, called in `transform-child.js`, which answers over IPC. */
async function runModule ({ run, temp, logFd, limitMs }: Job, entry: string): Promise<Outcome> {
  const module = path.join(run.packageDir, ...entry.split('/'))
  return await new Promise<Outcome>(resolve => {
    // detached: a group of its own, so that the limit also ends whatever the module started
    const child = fork(CHILD, [], { cwd: path.dirname(module), detached: true, serialization: 'advanced', stdio: ['ignore', logFd, logFd, 'ipc'] })
    let answer: { ok: boolean, error?: string } | undefined
    let group: TransformGroup | undefined
    const timer = setTimeout(() => {
      answer ??= { ok: false, error: `ran past its ${limitMs} ms limit and was killed` }
      group?.kill()
    }, limitMs)
    child.on('message', (m: unknown) => { answer ??= readTransformAnswer(m) })
    // a child that cannot be started (EAGAIN, ENOMEM, …) never exits: fail now, not never
    child.on('error', err => {
      if (child.pid != null) return
      clearTimeout(timer)
      resolve({ ok: false, error: `failed: could not be started: ${err.message}` })
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      group?.end()
      if (answer == null) answer = { ok: false, error: `exited (${signal ?? String(code)}) before finishing` }
      else if (answer.ok && code !== 0) answer = { ok: false, error: `exited with code ${String(code)}` }
      resolve(answer.ok ? { ok: true } : { ok: false, error: `failed: ${(answer.error ?? '').split('\n')[0] ?? ''}` })
    })
    if (child.pid == null) return
    // recorded before the job is sent: the module touches no state until it has the job
    const adopted = adopt(child.pid, run.groupFile)
    if (adopted instanceof TransformGroup) group = adopted
    else answer = { ok: false, error: adopted }
    if (group != null) child.send({ module: pathToFileURL(module).href, from: run.from, to: temp, fromVersion: run.fromVersion, toVersion: run.toVersion })
  })
}

/** The group of a transform just spawned, or why it must not run (its group could not be recorded; it is killed). */
function adopt (pid: number, groupFile: string | undefined): TransformGroup | string {
  try {
    return TransformGroup.adopt(pid, groupFile)
  } catch (err) {
    return `was stopped before it began: ${(err as Error).message}`
  }
}

/** Why a command could not start, in words that say what to check. */
function startFailure (err: NodeJS.ErrnoException, program: string): string {
  const code = err.code ?? err.message
  const inPackage = program.startsWith('./')
  if (code === 'ENOENT') {
    return `could not start: ENOENT (${inPackage ? `is the interpreter on the #! line of ${program} installed?` : `is ${program} installed and on PATH?`})`
  }
  if (code === 'EACCES') {
    return `could not start: EACCES (${inPackage ? `${program} needs a #! line and the executable bit: chmod +x it; a daemon sets that bit itself when it unpacks a package` : `is ${program} executable?`})`
  }
  return `could not start: ${code}`
}

/**
 * A command, no shell, in the package directory, in a process group of its own so that
 * the time limit kills it and everything it started. Exit 0 is success.
 */
async function runCommand ({ run, temp, logFd, limitMs }: Job, argv: readonly string[]): Promise<Outcome> {
  const [program = '', ...args] = argv
  // a package program by its full path, so that nothing but the manifest's check decides which file runs
  const file = program.startsWith('./') ? path.join(path.resolve(run.packageDir), ...program.slice(2).split('/')) : program
  const env = {
    ...process.env,
    // the daemon's own PWD would be wrong here, and shells and some programs believe it
    PWD: path.resolve(run.packageDir),
    UPGOSSIP_FROM: path.resolve(run.from),
    UPGOSSIP_TO: path.resolve(temp),
    UPGOSSIP_FROM_VERSION: run.fromVersion,
    UPGOSSIP_TO_VERSION: run.toVersion
  }
  return await new Promise<Outcome>(resolve => {
    let child: ChildProcess
    try {
      child = spawn(file, args, { argv0: program, cwd: run.packageDir, env, detached: true, stdio: ['ignore', logFd, logFd] })
    } catch (err) {
      resolve({ ok: false, error: startFailure(err as NodeJS.ErrnoException, program) })
      return
    }
    const pid = child.pid
    // recorded at once, before the event loop turns (the command already runs: it cannot wait for us)
    const adopted = pid == null ? undefined : adopt(pid, run.groupFile)
    const group = adopted instanceof TransformGroup ? adopted : undefined
    let failure = typeof adopted === 'string' ? adopted : undefined
    const timer = setTimeout(() => {
      failure ??= `was killed after ${formatDuration(limitMs)} (its time limit)`
      group?.kill()
    }, limitMs)
    child.on('error', err => {
      if (pid != null) return
      clearTimeout(timer)
      resolve({ ok: false, error: startFailure(err, program) })
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      group?.end()
      if (failure != null) resolve({ ok: false, error: failure })
      else if (code === 0) resolve({ ok: true })
      else if (code != null) resolve({ ok: false, error: `exited with code ${code}` })
      else resolve({ ok: false, error: `was killed by ${signal ?? 'a signal'}` })
    })
  })
}
