/**
 * `upgossip rollout …`: the rollout of an app across the whole network, from any peer.
 * `rollout status` shows every peer as this daemon sees it. More subcommands join the group
 * by adding their register function to {@link ROLLOUT_SUBCOMMANDS}.
 */
import type { Command } from 'commander'
import type { RolloutPeer, RolloutView } from '../../daemon/index.js'
import { callDaemon, resolveEndpoint } from '../control-client.js'
import type { ControlEndpoint, DaemonTarget } from '../control-client.js'
import { UsageError, formatBytes, note, printable, say, sayJson } from '../output.js'
import { shortPeerId } from '../peer-ids.js'
import { rolloutPauseCommands } from './rollout-pause.js'

/** How often `--watch` asks the daemon again. */
const WATCH_INTERVAL_MS = 1000

/** `APP` or `APP@VERSION` → its parts. */
export function parseRolloutTarget (arg: string | undefined): { app?: string, version?: string } {
  if (arg == null) return {}
  const at = arg.lastIndexOf('@')
  const app = at < 0 ? arg : arg.slice(0, at)
  const version = at < 0 ? undefined : arg.slice(at + 1)
  if (app === '' || /\s/.test(app) || version === '') throw new UsageError(`"${arg}" is not APP or APP@VERSION (kv, kv@2.0.0)`)
  return version == null ? { app } : { app, version }
}

/** A peer's progress on the target: `100%` once it holds it all, `37% 1.2/3.2 MiB` while it fetches. */
function progress (p: RolloutPeer): string {
  if (p.have == null || p.size == null) return '-'
  const pct = p.size === 0 ? 100 : Math.floor((100 * p.have) / p.size)
  return pct >= 100 ? '100%' : `${pct}% ${formatBytes(p.have)}/${formatBytes(p.size)}`
}

function waiting (p: RolloutPeer, target: string | null): string {
  if (p.upgradingTo != null) return `switching to ${p.upgradingTo}`
  if (p.waitingOn == null) return '-'
  const other = p.waitingFor != null && p.waitingFor !== target ? ` (for ${p.waitingFor})` : ''
  return `${p.waitingOn}${other}${p.reason == null ? '' : `: ${p.reason}`}`
}

/** The human view: a heading with the counts, then a table of the peers (this peer first, then its app's, then other apps'). */
export function renderRollout (view: RolloutView): string[] {
  const app = view.app ?? '(no app)'
  const counts = Object.entries(view.counts).map(([v, n]) => `${v} ×${n}`).join(', ')
  const total = Object.values(view.counts).reduce((a, b) => a + b, 0)
  const lines = [
    `rollout of ${app} to ${view.target ?? '(no release known)'}${view.targetId == null ? '' : ` (${shortPeerId(view.targetId)})`}`,
    `versions  ${counts === '' ? '(no peer of this app in view)' : `${counts}   (${total} peer${total === 1 ? '' : 's'} of ${app})`}`,
    ''
  ]
  const rows = [['PEER', 'APP', 'VERSION', 'STATE', 'TARGET', 'FAILED', 'UPGOSSIP', 'WAITING ON']]
  for (const p of view.peers) {
    rows.push([
      `${shortPeerId(p.peerId)}${p.self === true ? ' *' : ''}`,
      p.app ?? '-',
      p.version ?? 'none',
      p.state,
      p.app === view.app ? progress(p) : '',
      p.failed == null || p.failed.length === 0 ? '-' : p.failed.join(','),
      p.build ?? '-',
      waiting(p, view.target)
    ])
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map(r => (r[i] as string).length))) ?? []
  for (const r of rows) lines.push(r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i] as number)).join('  ').trimEnd())
  // versions, states and reasons come from other peers' beats: no control character reaches the terminal
  for (let i = 0; i < lines.length; i++) lines[i] = printable(lines[i] as string)
  lines.push('', '* this peer')
  return lines
}

async function fetchView (endpoint: ControlEndpoint, query: { app?: string, version?: string }): Promise<RolloutView> {
  const params = new URLSearchParams()
  if (query.app != null) params.set('app', query.app)
  if (query.version != null) params.set('version', query.version)
  const qs = params.toString()
  const res = await callDaemon(endpoint, 'GET', `/rollout${qs === '' ? '' : `?${qs}`}`)
  return await res.json() as RolloutView
}

/** `--watch`: ask again every second until Ctrl-C; a terminal sees the table redrawn in place, a pipe every change once. */
async function watch (endpoint: ControlEndpoint, query: { app?: string, version?: string }, json: boolean): Promise<void> {
  const out = process.stdout
  const tty = out.isTTY && !json
  let drawn = 0
  let last = ''
  const signal = { stopped: false }
  let wake = (): void => {}
  const interrupted = new Promise<void>(resolve => { wake = resolve })
  const onSignal = (): void => { signal.stopped = true; wake() }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    while (!signal.stopped) {
      let lines: string[]
      try {
        const view = await fetchView(endpoint, query)
        lines = json ? [JSON.stringify(view)] : renderRollout(view)
      } catch (err) {
        const message = `${(err as Error).message} (trying again every second)`
        // with --json, stdout holds JSON only
        if (json) {
          if (message !== last) note(message)
          last = message
          await Promise.race([interrupted, new Promise(resolve => setTimeout(resolve, WATCH_INTERVAL_MS))])
          continue
        }
        lines = [message]
      }
      const text = lines.join('\n')
      if (tty) {
        const width = Math.max(40, out.columns ?? 120)
        const shown = [...lines, `every ${WATCH_INTERVAL_MS / 1000} s · ${new Date().toLocaleTimeString()} · Ctrl-C to stop`].map(l => l.length > width - 1 ? `${l.slice(0, width - 2)}…` : l)
        // move up over the last drawing and clear it, then draw again
        out.write(`${drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ''}${shown.join('\n')}\n`)
        drawn = shown.length
      } else if (text !== last) {
        out.write(json ? `${text}\n` : `${text}\n\n`)
      }
      last = text
      await Promise.race([interrupted, new Promise(resolve => setTimeout(resolve, WATCH_INTERVAL_MS))])
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** Register `rollout status` on the `rollout` group. */
export function rolloutStatusCommand (rollout: Command): void {
  rollout.command('status')
    .description('every peer of the network as this peer sees it: app, version, state, what it waits on, how much of the target release it holds, what failed on it; and how many peers of the app run each version')
    .argument('[app[@version]]', "the app whose rollout to show (only its peers; default: this peer's app, with every peer in view) and the target version (default: the newest release of the app this peer knows that has not failed or been revoked)")
    .option('--watch', 'redraw every second until Ctrl-C (with --json: one JSON line per change)')
    .option('--json', 'print JSON: { app, target, targetId, counts, peers: [{ peerId, app, version, state, waitingOn?, reason?, have?, size?, failed?, build? }] }')
    .option('--data <dir>', "the daemon's data directory (default $UPGOSSIP_DATA or ~/.upgossip)")
    .option('--daemon <url>', 'control API URL, instead of --data')
    .option('--token <token>', 'control API token, with --daemon')
    .addHelpText('after', '\nExamples:\n  $ upgossip rollout status --data ./a\n  $ upgossip rollout status kv@2.0.0 --data ./a --watch\n  $ upgossip rollout status --data ./a --json | jq .counts')
    .action(async (target: string | undefined, opts: DaemonTarget & { watch?: boolean, json?: boolean }) => {
      const query = parseRolloutTarget(target)
      const endpoint = await resolveEndpoint(opts)
      if (opts.watch === true) {
        await watch(endpoint, query, opts.json === true)
        return
      }
      const view = await fetchView(endpoint, query)
      if (opts.json === true) sayJson(view)
      else for (const line of renderRollout(view)) say(line)
    })
}

/** The subcommands of `rollout`: one register function each, called with the group. */
export const ROLLOUT_SUBCOMMANDS: Array<(rollout: Command) => void> = [rolloutStatusCommand, rolloutPauseCommands]

/** Register the `rollout` group and its subcommands. */
export function rolloutCommand (program: Command): void {
  const rollout = program.command('rollout')
    .description('the rollout of an app across the whole network, from any peer: status, and signed pause and resume')
    .addHelpText('after', '\nExamples:\n  $ upgossip rollout status --data ./a\n  $ upgossip rollout pause kv@2.0.0 --key alice.key --reason "p99 doubled" --data ./a')
  for (const register of ROLLOUT_SUBCOMMANDS) register(rollout)
  rollout.commands.forEach(command => command.allowExcessArguments(false))
}
