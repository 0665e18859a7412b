/**
 * `npm run simulate -- --peers 10000` — predicted rollout time and peak concurrent
 * upgrades for a rolling and a canary policy, by the real schedule engine against a
 * simulated clock and a gossip delay model (scripts/sim/simulator.ts), at 1 000 peers
 * and at `--peers`.
 *
 * @example
 * ```sh
 * npm run simulate -- --peers 10000
 * npm run simulate -- --peers 10000 --json > sim.json
 * npm run simulate -- --peers 5000 --beat 1s --switch 2s --fetch 5s
 * ```
 */
import { parseDuration } from '#src/duration.js'
import { POLICIES, simulatePolicies, formatSimulation } from './sim/policies.ts'

const HELP = `usage: npm run simulate -- [--peers N] [--json] [--beat D] [--switch D] [--fetch D] [--hop D] [--degree K] [--seed S]

Simulates a rollout of one release with each policy (${Object.keys(POLICIES).join(', ')})
at 1000 peers and at N (default 10000): the real schedule engine decides, the clock is
simulated. Durations as in upgossip: 500ms, 5s, 2m.
  --beat D     status beat interval (default 5s, the daemon's default)
  --switch D   one peer's switch, mean (default 5s)
  --fetch D    announcement to staged package, mean (default 10s)
  --hop D      one gossip hop (default 50ms)
  --degree K   connections per peer in the random mesh (default 4)
  --seed S     random seed (default 1)
  --json       one JSON object on stdout`

const args = process.argv.slice(2)
const opts: Record<string, string> = {}
let json = false
for (let i = 0; i < args.length; i++) {
  const a = args[i] as string
  if (a === '--help' || a === '-h') {
    process.stdout.write(HELP + '\n')
    process.exit(0)
  }
  if (a === '--json') json = true
  else if (['--peers', '--beat', '--switch', '--fetch', '--hop', '--degree', '--seed'].includes(a) && args[i + 1] != null) opts[a.slice(2)] = args[++i] as string
  else { process.stderr.write(`simulate: unknown or incomplete option ${a}\n${HELP}\n`); process.exit(2) }
}
const peers = Number(opts.peers ?? 10_000)
if (!Number.isInteger(peers) || peers < 2 || peers > 100_000) { process.stderr.write('simulate: --peers takes a whole number from 2 to 100000\n'); process.exit(2) }
const d = (name: string): number | undefined => opts[name] == null ? undefined : parseDuration(opts[name])
const sizes = [...new Set([Math.min(1000, peers), peers])]
const results = await simulatePolicies(sizes, {
  beatMs: d('beat'),
  switchMs: d('switch'),
  fetchMs: d('fetch'),
  hopMs: d('hop'),
  degree: opts.degree == null ? undefined : Number(opts.degree),
  seed: opts.seed == null ? undefined : Number(opts.seed)
}, line => process.stderr.write(line + '\n'))
if (json) process.stdout.write(JSON.stringify({ simulations: results }, null, 2) + '\n')
else process.stdout.write(formatSimulation(results) + '\n')
