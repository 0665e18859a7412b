/**
 * Runs one `module` schedule rule inside a worker thread: imports the module and
 * posts what its default export says. The parent terminates the worker past its limit.
 */
import { parentPort, workerData } from 'node:worker_threads'

const { url, ctx } = workerData as { url: string, ctx: unknown }
try {
  const mod = await import(url) as { default?: unknown }
  if (typeof mod.default !== 'function') throw new Error('the module has no default export function')
  const answer: unknown = await (mod.default as (ctx: unknown) => unknown)(ctx)
  parentPort?.postMessage({ ok: true, holds: answer === true })
} catch (err) {
  parentPort?.postMessage({ ok: false, error: String((err as Error)?.message ?? err) })
}
