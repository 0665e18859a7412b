/**
 * `cli/` — the `upgossip` command: one file per command under `commands/`, wired here.
 * Usage errors exit 2, refusals 1 with a one-line reason on stderr, success 0.
 *
 * @example
 * ```sh
 * upgossip keygen --out publisher.key
 * upgossip release ./kv-v2 --key publisher.key --out kv-v2.car
 * upgossip verify kv-v2.car --trust trust.json
 * ```
 */
import { Command, CommanderError } from 'commander'
import { buildString } from '../build-info.js'
import { UpgossipError } from '../errors.js'
import { backupCommand } from './commands/backup.js'
import { callCommand } from './commands/call.js'
import { checkCommand } from './commands/check.js'
import { daemonCommand } from './commands/daemon.js'
import { initCommand } from './commands/init.js'
import { operatorCommands } from './commands/operator.js'
import { restoreCommand } from './commands/restore.js'
import { revokeCommand } from './commands/revoke.js'
import { rolloutCommand } from './commands/rollout.js'
import { rotateCommand } from './commands/rotate.js'
import { inspectCommand } from './commands/inspect.js'
import { keygenCommand } from './commands/keygen.js'
import { packCommand } from './commands/pack.js'
import { publishCommand } from './commands/publish.js'
import { releaseCommand } from './commands/release.js'
import { signCommand } from './commands/sign.js'
import { statusCommand } from './commands/status.js'
import { testnetCommand } from './commands/testnet.js'
import { verifyCommand } from './commands/verify.js'
import { EXIT_OK, EXIT_REFUSED, EXIT_USAGE, UsageError, printable } from './output.js'

/** The commander program with every command registered. */
export function buildProgram (): Command {
  const program = new Command('upgossip')
    .description('automatic software upgrades for peer-to-peer networks: signed releases, gossip, scheduled switches')
    .version(buildString(), '-V, --version', 'print the version and the build: 0.1.0 (1a2b3c4), the git commit it was built from')
    .showSuggestionAfterError(true)
    .addHelpText('after', '\nRun "upgossip <command> --help" for a command\'s options and an example. Docs: README.md and docs/.')
  for (const register of [initCommand, keygenCommand, packCommand, releaseCommand, signCommand, verifyCommand, inspectCommand, daemonCommand, publishCommand, statusCommand, callCommand, operatorCommands, backupCommand, restoreCommand, rolloutCommand, revokeCommand, rotateCommand, checkCommand, testnetCommand]) register(program)
  const noExcess = (command: Command): void => { command.allowExcessArguments(false); command.commands.forEach(noExcess) }
  program.commands.forEach(noExcess)
  const exitOverride = (cmd: Command): void => {
    cmd.exitOverride()
    cmd.configureOutput({ outputError: (text, write) => { write(text) } })
    cmd.commands.forEach(exitOverride)
  }
  exitOverride(program)
  return program
}

/** Run the CLI with `argv` (without node and script); resolves to the exit code. */
export async function run (argv: string[]): Promise<number> {
  const program = buildProgram()
  try {
    await program.parseAsync(argv, { from: 'user' })
    return EXIT_OK
  } catch (err) {
    if (err instanceof CommanderError) {
      // 'commander.help' is help shown as an error (no command given): a usage error
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK
      return EXIT_USAGE
    }
    if (err instanceof UsageError) {
      process.stderr.write(printable(`upgossip: ${err.message}`) + '\n')
      return EXIT_USAGE
    }
    // a daemon option that cannot work (a bad multiaddr, a bad config file) is a usage error too
    if (err instanceof UpgossipError && err.name === 'DaemonConfigError') {
      process.stderr.write(printable(`upgossip: ${err.message} [${err.name}]`) + '\n')
      return EXIT_USAGE
    }
    if (err instanceof UpgossipError) {
      process.stderr.write(printable(`upgossip: ${err.message} [${err.name}]`) + '\n')
      return EXIT_REFUSED
    }
    process.stderr.write(printable(`upgossip: ${(err as Error)?.message ?? String(err)}`) + '\n')
    if (process.env.DEBUG != null) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`)
    return EXIT_REFUSED
  }
}
