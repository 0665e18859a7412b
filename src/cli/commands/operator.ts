/** `upgossip approve | hold | resume RELEASE`, `rollback`, `history`: the operator's controls on one peer. */
import type { Command } from 'commander'
import { callDaemon, resolveEndpoint } from '../control-client.js'
import type { DaemonTarget } from '../control-client.js'
import { say, sayJson } from '../output.js'

function target (command: Command): Command {
  return command
    .option('--data <dir>', "the daemon's data directory (default $UPGOSSIP_DATA or ~/.upgossip)")
    .option('--daemon <url>', 'control API URL, instead of --data')
    .option('--token <token>', 'control API token, with --daemon')
}

/** Register approve, hold, resume, rollback and history. */
export function operatorCommands (program: Command): void {
  const verbs = {
    approve: 'let RELEASE start on this peer where its schedule has an "approve" rule (durable)',
    hold: 'keep RELEASE from starting on this peer until "resume" (durable)',
    resume: 'undo "hold": RELEASE may start again when its schedule allows'
  } as const
  for (const [verb, description] of Object.entries(verbs)) {
    target(program.command(verb)
      .description(description)
      .argument('<release>', 'release id (bafyrei…) or APP@VERSION'))
      .option('--json', 'print JSON')
      .addHelpText('after', `\nExample:\n  $ upgossip ${verb} kv@2.0.0 --data ./a`)
      .action(async (release: string, opts: DaemonTarget & { json?: boolean }) => {
        const res = await callDaemon(await resolveEndpoint(opts), 'POST', `/${verb}/${encodeURIComponent(release)}`)
        const result = await res.json() as { id: string, app: string, version: string }
        if (opts.json === true) sayJson(result)
        else say(`${verb === 'approve' ? 'approved' : verb === 'hold' ? 'held' : 'resumed'} ${result.app}@${result.version} ${result.id}`)
      })
  }

  target(program.command('rollback')
    .description('go back to the previous version on this peer (its down transform carries the state back, or the kept state is used)'))
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ upgossip rollback --data ./a\n  rolled back kv 2.0.0 → 1.0.0')
    .action(async (opts: DaemonTarget & { json?: boolean }) => {
      const res = await callDaemon(await resolveEndpoint(opts), 'POST', '/rollback')
      const result = await res.json() as { from: string, to: string }
      if (opts.json === true) sayJson(result)
      else say(`rolled back ${result.from} → ${result.to}`)
    })

  target(program.command('history')
    .description("this peer's upgrades, rollbacks and failures, oldest first"))
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ upgossip history --data ./a')
    .action(async (opts: DaemonTarget & { json?: boolean }) => {
      const res = await callDaemon(await resolveEndpoint(opts), 'GET', '/history')
      const events = await res.json() as Array<{ time: string, type: string, message: string }>
      if (opts.json === true) {
        sayJson(events)
        return
      }
      if (events.length === 0) say('(no upgrades yet)')
      for (const e of events) say(`${e.time}  ${e.type.padEnd(20)} ${e.message}`)
    })
}
