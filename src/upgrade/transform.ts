/**
 * Running a transform (`up` or `down`) in its own child process with a time limit,
 * writing into a temporary directory that is renamed into place only on success.
 */
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { UpgossipError } from '../errors.js'
import { fsyncDirectory } from '../store/index.js'

/** The transform threw, exited, ran past its limit, or wrote nothing. */
export class TransformFailedError extends UpgossipError {
  static override name = 'TransformFailedError'
}

/** Default time limit of a transform. */
export const DEFAULT_TRANSFORM_LIMIT_MS = 120_000

/** What one transform run needs. */
export interface TransformRun {
  /** The transform module inside the package. */
  module: string
  /** A read-only copy of the old state. */
  from: string
  /** Where the new state goes (must not exist; created only on success). */
  to: string
  fromVersion: string
  toVersion: string
  limitMs?: number
  /** Where the transform's output goes. */
  logFile: string
}

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

/** Run a transform; on success `to` holds the new state. */
export async function runTransform (run: TransformRun): Promise<void> {
  const limit = run.limitMs ?? DEFAULT_TRANSFORM_LIMIT_MS
  const temp = `${run.to}.tmp-${randomBytes(4).toString('hex')}`
  await fs.mkdir(temp, { recursive: true })
  const log = await fs.open(run.logFile, 'a')
  try {
    await log.write(`--- ${new Date().toISOString()} transform ${run.fromVersion} → ${run.toVersion}\n`)
    const outcome = await new Promise<{ ok: boolean, error?: string }>(resolve => {
      const child = fork(CHILD, [], { cwd: path.dirname(run.module), serialization: 'advanced', stdio: ['ignore', log.fd, log.fd, 'ipc'] })
      let answer: { ok: boolean, error?: string } | undefined
      const timer = setTimeout(() => {
        answer ??= { ok: false, error: `ran past its ${limit} ms limit and was killed` }
        child.kill('SIGKILL')
      }, limit)
      child.on('message', (m: unknown) => { answer ??= readTransformAnswer(m) })
      // a child that cannot be started (EAGAIN, ENOMEM, …) never exits: fail now, not never
      child.on('error', err => {
        if (child.pid != null) return
        clearTimeout(timer)
        resolve({ ok: false, error: `could not be started: ${err.message}` })
      })
      child.on('exit', (code, signal) => {
        clearTimeout(timer)
        if (answer == null) answer = { ok: false, error: `exited (${signal ?? String(code)}) before finishing` }
        else if (answer.ok && code !== 0) answer = { ok: false, error: `exited with code ${String(code)}` }
        resolve(answer)
      })
      child.send({ module: pathToFileURL(run.module).href, from: run.from, to: temp, fromVersion: run.fromVersion, toVersion: run.toVersion })
    })
    if (!outcome.ok) throw new TransformFailedError(`transform ${run.fromVersion} → ${run.toVersion} failed: ${(outcome.error ?? '').split('\n')[0] ?? ''}`)
    if (!(await isEmptyDir(run.from)) && await isEmptyDir(temp)) {
      throw new TransformFailedError(`transform ${run.fromVersion} → ${run.toVersion} wrote nothing, though the old state was not empty`)
    }
    await fs.rm(run.to, { recursive: true, force: true })
    await fs.rename(temp, run.to)
    await fsyncDirectory(path.dirname(run.to))
  } finally {
    await log.close()
    await fs.rm(temp, { recursive: true, force: true })
  }
}
