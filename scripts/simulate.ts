/**
 * `npm run simulate -- --peers 10000` — predicted rollout time and peak concurrent
 * upgrades for a rolling and a canary policy, by the real schedule engine against a
 * simulated clock and a gossip delay model (scripts/sim/simulator.ts), at 1 000 peers
 * and at `--peers`. With `--classes` or `--scenario`, several classes of node
 * (scripts/sim/classes.ts): each class's rollout, the time spent in each mixed state,
 * and whether a caller ever faced a callee it cannot talk to.
 *
 * @example
 * ```sh
 * npm run simulate -- --peers 10000
 * npm run simulate -- --peers 10000 --json > sim.json
 * npm run simulate -- --peers 5000 --beat 1s --switch 2s --fetch 5s
 * npm run simulate -- --classes store:20,client:80
 * npm run simulate -- --scenario my-classes.json --without-after --json
 * ```
 */
import { parseDuration } from '#src/duration.js'
import { POLICIES, simulatePolicies, formatSimulation } from './sim/policies.ts'
import { formatClasses, simulateClasses } from './sim/classes.ts'
import { BUILT_IN_SCENARIOS, MAX_SCENARIO_PEERS, builtInScenario, parsePeerCounts, readScenario, withPeerCounts, withoutAfterRules } from './sim/scenario.ts'
import type { Scenario } from './sim/scenario.ts'

const DEFAULT_SCENARIO = 'stores-then-clients'

const HELP = `usage: npm run simulate -- [--peers N] [--json] [--beat D] [--switch D] [--fetch D] [--hop D] [--degree K] [--seed S]
       npm run simulate -- (--classes APP:N,… | --scenario NAME|FILE) [--without-after] [--max D] [--json] [--beat D] …

Simulates a rollout of one release with each policy (${Object.keys(POLICIES).join(', ')})
at 1000 peers and at N (default 10000): the real schedule engine decides, the clock is
simulated. Durations as in upgossip: 500ms, 5s, 2m.
  --beat D     status beat interval (default 5s, the daemon's default)
  --switch D   one peer's switch, mean (default 5s)
  --fetch D    announcement to staged package, mean (default 10s)
  --hop D      one gossip hop (default 50ms)
  --degree K   connections per peer in the random mesh (default 4)
  --seed S     random seed (default 1)
  --json       one JSON object on stdout

Several classes of node (apps) in one network, each with its releases and schedules:
reports each class's rollout, the time spent in each mixed state (the versions each
class runs), and whether any caller ever faced a callee it cannot talk to (the protocol
its version calls, served by the callee neither natively nor through its SOs).
  --scenario S      a built-in scenario (${Object.keys(BUILT_IN_SCENARIOS).join(', ')}; the default)
                    or a JSON scenario file (format: scripts/README.md)
  --classes A:N,…   peers per class, e.g. store:20,client:80 (at most ${MAX_SCENARIO_PEERS} in all)
  --without-after   drop every "after" rule that waits for another class
  --max D           give up after this much simulated time (default 1h)`

const VALUED = ['--peers', '--beat', '--switch', '--fetch', '--hop', '--degree', '--seed', '--scenario', '--classes', '--max']
const args = process.argv.slice(2)
const opts: Record<string, string> = {}
let json = false
let withoutAfter = false
function usage (message: string): never {
  process.stderr.write(`simulate: ${message}\n`)
  process.exit(2)
}
for (let i = 0; i < args.length; i++) {
  const a = args[i] as string
  if (a === '--help' || a === '-h') {
    process.stdout.write(HELP + '\n')
    process.exit(0)
  }
  if (a === '--json') json = true
  else if (a === '--without-after') withoutAfter = true
  else if (VALUED.includes(a) && args[i + 1] != null) opts[a.slice(2)] = args[++i] as string
  else usage(`unknown or incomplete option ${a}\n${HELP}`)
}
const d = (name: string): number | undefined => {
  if (opts[name] == null) return undefined
  try {
    return parseDuration(opts[name])
  } catch (err) {
    return usage(`--${name}: ${(err as Error).message}`)
  }
}
const timing = {
  beatMs: d('beat'),
  switchMs: d('switch'),
  fetchMs: d('fetch'),
  hopMs: d('hop'),
  degree: opts.degree == null ? undefined : Number(opts.degree),
  seed: opts.seed == null ? undefined : Number(opts.seed)
}

if (opts.scenario != null || opts.classes != null || withoutAfter || opts.max != null) {
  if (opts.peers != null) usage('--peers is for one class; give several with --classes APP:N,…')
  let scenario: Scenario
  try {
    const name = opts.scenario ?? DEFAULT_SCENARIO
    scenario = Object.hasOwn(BUILT_IN_SCENARIOS, name) ? builtInScenario(name) : await readScenario(name)
    if (opts.classes != null) scenario = withPeerCounts(scenario, parsePeerCounts(opts.classes))
    if (withoutAfter) scenario = withoutAfterRules(scenario)
  } catch (err) {
    usage((err as Error).message)
  }
  const result = await simulateClasses({ scenario, ...timing, maxMs: d('max') })
  process.stderr.write(`  ${scenario.name}: ${scenario.classes.reduce((n, c) => n + c.peers, 0)} peers, ${result.decisions} engine calls in ${(result.wallMs / 1000).toFixed(1)} s\n`)
  if (json) process.stdout.write(JSON.stringify({ scenario, simulation: result }, null, 2) + '\n')
  else process.stdout.write(formatClasses(result) + '\n')
} else {
  const peers = Number(opts.peers ?? 10_000)
  if (!Number.isInteger(peers) || peers < 2 || peers > 100_000) usage('--peers takes a whole number from 2 to 100000')
  const sizes = [...new Set([Math.min(1000, peers), peers])]
  const results = await simulatePolicies(sizes, timing, line => process.stderr.write(line + '\n'))
  if (json) process.stdout.write(JSON.stringify({ simulations: results }, null, 2) + '\n')
  else process.stdout.write(formatSimulation(results) + '\n')
}
