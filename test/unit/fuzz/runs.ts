/** How many cases each property runs: small in `npm test`, ≥ 10,000 in `npm run fuzz`. */
export const RUNS = Number(process.env.FUZZ_RUNS ?? 200)
/** Properties that verify whole bundles are slower: a tenth of the cases, never fewer than 50. */
export const SLOW_RUNS = Math.max(50, Math.floor(RUNS / 10))
