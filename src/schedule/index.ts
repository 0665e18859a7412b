/**
 * `schedule/` — the decisions "which release next" and "may this peer start this upgrade
 * now": the choice of candidate (paused, held and halted releases skipped), every rule of
 * docs/manifest.md evaluated against the network view and an injected clock, ranks, the claim
 * step, `module` rules in a worker thread, and the operator's local policy.
 *
 * @example
 * ```ts
 * const rules = applicableRules(manifest.schedule, await readPolicy('policy.json'))
 * const decision = await decide(rules, ctx, moduleRunner(packageDir))
 * if (!decision.start) console.log(`waiting on ${decision.waitingOn}: ${decision.reason}`)
 * ```
 */
export * from './candidates.js'
export * from './coexistence.js'
export * from './context.js'
export * from './module-rule.js'
export * from './policy.js'
export * from './rank.js'
export * from './rules.js'
