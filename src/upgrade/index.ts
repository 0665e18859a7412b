/**
 * `upgrade/` — switching versions: the journaled state machine (buffer, drain, stop,
 * snapshot, transform, start, verify, commit, rollback), transforms in a child process
 * with a time limit, crash recovery, fault injection for tests.
 *
 * @example
 * ```ts
 * const engine = new UpgradeEngine({ dataDir, host, installed, onCommit, onFailed, log })
 * await engine.recover() // after a crash: finish or undo
 * const outcome = await engine.switch(current, next, 'upgrade')
 * ```
 */
export * from './engine.js'
export * from './journal.js'
export * from './transform.js'
export * from './transform-check.js'
export * from './transform-group.js'
