/**
 * Simulation-object chains for SDK apps: the same chains the daemon runs for process
 * apps, from `ipc/` (what both sides of the app boundary share).
 */
export * from '../ipc/simulation-chain.js'
