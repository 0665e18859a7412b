/**
 * How many cases each property runs: small in `npm test`, ≥ 10,000 in `npm run fuzz`;
 * and how long one case may take before its property fails: a decoder that hangs is a
 * finding, not a stalled suite.
 */
import fc from 'fast-check'

/** True under `npm run fuzz` (or whenever FUZZ_RUNS is set): every property then runs FUZZ_RUNS cases. */
export const FUZZING = process.env.FUZZ_RUNS != null
/** Cases per property: `FUZZ_RUNS`, or 200 in `npm test`. */
export const RUNS = Number(process.env.FUZZ_RUNS ?? 200)
/** Properties that verify whole bundles, sign, or write to disk: 50 cases in `npm test`, FUZZ_RUNS when fuzzing. */
export const SLOW_RUNS = FUZZING ? RUNS : 50
/** Properties that wait for real time (deadlines, process starts): 20 cases in `npm test`, FUZZ_RUNS when fuzzing. */
export const FEW_RUNS = FUZZING ? RUNS : 20
/** Longest one case may take (generous: the machine may be loaded). */
export const CASE_TIMEOUT_MS = 10_000

fc.configureGlobal({ timeout: CASE_TIMEOUT_MS })
