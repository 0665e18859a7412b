/** `upgossip testnet`: a local network of real daemons running the demo app through a scenario. */
import path from 'node:path'
import type { Command } from 'commander'
import { InvalidArgumentError, Option } from 'commander'
import { UpgossipError } from '../../errors.js'
import { UsageError, say, sayJson } from '../output.js'
import { positiveDurationOption } from '../program-options.js'

function peerCount (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < 2 || n > 50) throw new InvalidArgumentError(`"${value}" is not a whole number from 2 to 50`)
  return n
}

function positiveNumber (value: string): number {
  const n = Number(value)
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`"${value}" is not a number above 0`)
  return n
}

/** A testnet run ended with a failed check. */
export class TestnetFailedError extends UpgossipError {
  static override name = 'TestnetFailedError'
}

/** Register `testnet`. */
export function testnetCommand (program: Command): void {
  program.command('testnet')
    .description('start a local network of real daemons on loopback running the demo app through a scenario of upgrades under client load, and report')
    .option('--peers <n>', 'how many daemons (2–50; default 8, or 4 for polyglot and classes, which needs at least 4)', peerCount)
    .addOption(new Option('--scenario <name>', 'what to drive').choices(['rolling', 'canary', 'broken', 'partition', 'late-join', 'threshold', 'revoke', 'polyglot', 'classes', 'soak']).default('rolling'))
    .option('--minutes <n>', 'how long the soak scenario runs', positiveNumber, 10)
    .option('--keep', 'leave the daemons running and the directory in place afterwards')
    .option('--dir <dir>', 'put the network in this directory (kept) instead of a temporary one')
    .addOption(new Option('--step-timeout <duration>', 'the longest any one step may take').argParser(positiveDurationOption).default(120_000, '2m'))
    .option('--json', 'print the report as one JSON object on stdout (the live view still goes to stderr)')
    .addHelpText('after', `
Scenarios:
  rolling    v1 → v2 one peer at a time, then v2 → v3 canaries first; one peer waits for
             approval, so v1/v2 and v2/v3 peers talk across versions (default)
  canary     v1 → v2: the lowest-ranked quarter first, the rest after a 5 s soak
  broken     v3 → v4, whose transform fails: the canary rolls back and the rollout halts
  partition  a peer is stopped while v2 and v3 are published, then catches up step by step
  late-join  after v1 → v2, a new peer joins with --app kv and installs 2.0.0
  threshold  trust wants 2 of 3 publishers: one signature is refused, two roll out
  revoke     v1 → v2, then v2 is revoked and every peer rolls back to v1
  polyglot   rolling on pykv, a Python app with no SDK (testnet/apps/pykv): v1 → v2 one
             peer at a time, one peer waits for approval, so v1 and v2 peers copy writes
             to each other through their daemons' proxies, translated by the SOs; needs
             python3 on PATH
  classes    two classes of node (testnet/apps/classes): stores, and clients that call
             them; --peers N makes the first ceil(N/2) peers stores and the rest clients
             (N ≥ 4). Store v1 → v2 rolls out first; client v2 waits on after store
             >=2.0.0, then follows; the last store and the last client wait for approval,
             so both mixed phases are measured. The load goes through the clients
  soak       for --minutes: 1.0.0 → 2.0.i → revoked → 1.0.0 again and again, under
             load, with daemon memory sampled (also: npm run soak -- --minutes N)

Every scenario also checks that every peer ends on the expected version, that no client
request failed, and that state written before the upgrades reads back. Exit 0 only if
every check held.

Examples:
  $ upgossip testnet
  $ upgossip testnet --scenario broken --peers 4 --json > report.json
  $ upgossip testnet --keep        # then open the dashboard URL it prints`)
    .action(async (opts: { peers?: number, scenario: string, minutes: number, keep?: boolean, dir?: string, stepTimeout: number, json?: boolean }) => {
      const { Testnet, SCENARIOS, runScenario, formatReport } = await import('../../testnet/index.js')
      const scenario = SCENARIOS[opts.scenario]
      if (scenario == null) throw new InvalidArgumentError(`no scenario ${opts.scenario}`)
      const peers = opts.peers ?? scenario.peers ?? 8
      if (peers < (scenario.minPeers ?? 2)) throw new UsageError(`--peers ${peers}: the ${scenario.name} scenario needs at least ${scenario.minPeers ?? 2} peers`)
      // what the scenario needs on this machine (python3 for polyglot), before anything starts
      await scenario.preflight?.()
      const err = process.stderr
      const net = new Testnet({
        peers,
        keep: opts.keep === true,
        dir: opts.dir == null ? undefined : path.resolve(opts.dir),
        stepTimeoutMs: opts.stepTimeout,
        soakMinutes: opts.minutes,
        sink: { write: text => err.write(text), isTTY: err.isTTY === true, columns: err.columns }
      })
      err.write(`testnet ${scenario.name}: ${scenario.summary}\n`)
      // Ctrl-C stops what was started (unless --keep) before exiting
      const interrupt = (): void => {
        err.write('\ninterrupted; stopping the daemons…\n')
        void net.close().finally(() => process.exit(130))
      }
      process.once('SIGINT', interrupt)
      const report = await runScenario(net, scenario)
      process.off('SIGINT', interrupt)
      if (opts.json === true) sayJson(report)
      else say(formatReport(report))
      const failed = report.checks.filter(c => !c.ok)
      if (failed.length > 0 || report.checks.length === 0) throw new TestnetFailedError(`${failed.length} of ${report.checks.length} checks failed: ${failed.map(c => c.name).join('; ')}`)
    })
}
