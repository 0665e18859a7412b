/**
 * The child process that runs one transform function: it imports the module, calls its
 * default export with `{ from, to, fromVersion, toVersion, log }`, and reports back.
 */
interface TransformJob { module: string, from: string, to: string, fromVersion: string, toVersion: string }

// the daemon went away: stop, whatever the transform is doing
process.on('disconnect', () => process.exit(1))

process.once('message', (job: TransformJob) => {
  void (async () => {
    try {
      const mod = await import(job.module) as { default?: unknown }
      if (typeof mod.default !== 'function') throw new Error('the transform module has no default export function')
      const log = (...args: unknown[]): void => { process.stderr.write(args.map(String).join(' ') + '\n') }
      await (mod.default as (arg: unknown) => Promise<void>)({ from: job.from, to: job.to, fromVersion: job.fromVersion, toVersion: job.toVersion, log })
      process.send?.({ ok: true }, () => process.exit(0))
    } catch (err) {
      process.send?.({ ok: false, error: String((err as Error)?.stack ?? err) }, () => process.exit(1))
    }
  })()
})
