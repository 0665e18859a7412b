/**
 * `{ "rule": "module", "path": "schedule.js" }`: the package's own decision function,
 * run in a worker thread that is terminated past its time limit. A module that throws,
 * loops or answers anything but `true` does not hold.
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { parseDuration } from '../duration.js'
import type { ScheduleRule } from '../package/index.js'
import type { ScheduleContext } from './context.js'
import type { ModuleRunner, RuleResult } from './rules.js'

// compiled: module-worker.js beside this file; from source (tests): module-worker.ts
const WORKER_FILE = [new URL('./module-worker.js', import.meta.url), new URL('./module-worker.ts', import.meta.url)].find(u => existsSync(fileURLToPath(u))) as URL

const NOT_YET = 'the module said not yet'

/** Default time limit of a module rule. */
export const DEFAULT_MODULE_TIME_LIMIT_MS = 2000

/** What a module's default export receives: the context without functions. */
export function moduleContext (ctx: ScheduleContext): Record<string, unknown> {
  const { idleFor, ...plain } = ctx
  return { ...plain, idleMs: idleFor(0) }
}

/**
 * What the worker answered. The module runs in that worker and can post messages too, so
 * anything but the worker's own `{ ok, holds }` / `{ ok: false, error }` does not hold;
 * a throw here would be an uncaught exception in the daemon.
 */
export function readModuleAnswer (m: unknown): RuleResult {
  if (m == null || typeof m !== 'object') return { holds: false, reason: 'answered with something that is not an answer' }
  const { ok, holds, error } = m as { ok?: unknown, holds?: unknown, error?: unknown }
  if (ok === true) return { holds: holds === true, reason: holds === true ? undefined : NOT_YET }
  return { holds: false, reason: `threw: ${typeof error === 'string' ? error.slice(0, 1000) : 'unknown error'}` }
}

/** Run one module rule from the package in `packageDir`. */
export async function runModuleRule (packageDir: string, rule: Extract<ScheduleRule, { rule: 'module' }>, ctx: ScheduleContext, log: (message: string) => void = () => {}): Promise<RuleResult> {
  const limit = rule.timeLimit == null ? DEFAULT_MODULE_TIME_LIMIT_MS : parseDuration(rule.timeLimit)
  const url = pathToFileURL(path.join(packageDir, ...rule.path.split('/'))).href
  const worker = new Worker(WORKER_FILE, {
    workerData: { url, ctx: moduleContext(ctx) },
    resourceLimits: { maxOldGenerationSizeMb: 64 },
    stdout: true,
    stderr: true
  })
  return await new Promise<RuleResult>(resolve => {
    let settled = false
    const finish = (result: RuleResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      void worker.terminate()
      // "not yet" is an answer; only a module that failed is worth a log line
      if (!result.holds && result.reason != null && result.reason !== NOT_YET) log(`schedule module ${rule.path}: ${result.reason}`)
      resolve(result)
    }
    const timer = setTimeout(() => { finish({ holds: false, reason: `ran past its ${limit} ms limit and was stopped` }) }, limit)
    worker.once('message', (m: unknown) => { finish(readModuleAnswer(m)) })
    worker.once('error', err => { finish({ holds: false, reason: `failed: ${err.message}` }) })
    worker.once('exit', code => { finish({ holds: false, reason: `exited with code ${code} without an answer` }) })
  })
}

/** A {@link ModuleRunner} bound to a package directory. */
export function moduleRunner (packageDir: string, log?: (message: string) => void): ModuleRunner {
  return async (rule, ctx) => await runModuleRule(packageDir, rule, ctx, log)
}
