/** `upgossip status`: this peer and the network as it sees it. */
import type { Command } from 'commander'
import type { DaemonStatus } from '../../daemon/index.js'
import { callDaemon, resolveEndpoint } from '../control-client.js'
import { formatBytes, say, sayJson } from '../output.js'
import { shortId } from '../../short-id.js'

function ago (iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`
}

/** A schedule rule in one line: `rolling max=1`, `window daily=02:00-04:00 tz=UTC`. */
function ruleText (rule: Record<string, unknown>): string {
  return [String(rule.rule), ...Object.entries(rule).filter(([k]) => k !== 'rule').map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)].join(' ')
}

/** `2.0.0 ×2, 1.0.0 ×1`: how many run each version, most first. */
function versionCounts (versions: Array<string | null>): string {
  const counts = new Map<string, number>()
  for (const v of versions) counts.set(v ?? 'none', (counts.get(v ?? 'none') ?? 0) + 1)
  return [...counts].sort((a, b) => b[1] !== a[1] ? b[1] - a[1] : a[0].localeCompare(b[0])).map(([v, n]) => `${v} ×${n}`).join(', ')
}

/**
 * The peers in view. With several classes (apps) in view, one class after another, this
 * peer's own first, each headed by how many of its peers run each version (this peer
 * counted in its own class).
 */
function renderPeers (s: DaemonStatus): string[] {
  const classes = new Map<string, DaemonStatus['network']>()
  if (s.app != null) classes.set(s.app, [])
  for (const p of s.network) {
    const peers = classes.get(p.app ?? '-') ?? []
    peers.push(p)
    classes.set(p.app ?? '-', peers)
  }
  const lines = ['peers']
  if (s.network.length === 0) lines.push('  (none heard yet)')
  const several = classes.size > 1
  for (const [app, peers] of [...classes].sort((a, b) => a[0] === s.app ? -1 : b[0] === s.app ? 1 : a[0].localeCompare(b[0]))) {
    const versions = [...(app === s.app ? [s.version] : []), ...peers.map(p => p.version ?? null)]
    if (several) lines.push(`  ${app}: ${versions.length} peer${versions.length === 1 ? '' : 's'}${app === s.app ? ' with this one' : ''} — ${versionCounts(versions)}`)
    for (const p of peers) {
      lines.push(`${several ? '    ' : '  '}${shortId(p.peerId).padEnd(18)} ${`${p.app ?? '-'} ${p.version ?? ''}`.padEnd(16)} ${p.state.padEnd(11)} ${p.connected ? 'connected' : '         '}  seen ${ago(p.seen)}`)
    }
  }
  return lines
}

/** The human view of a status. */
export function renderStatus (s: DaemonStatus): string[] {
  const lines: string[] = []
  const labels = Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(' ')
  lines.push(`peer      ${s.peerId}`)
  lines.push(`app       ${s.app ?? '(none)'} ${s.version ?? '(no version installed yet)'} — ${s.state}${labels === '' ? '' : `   labels ${labels}`}`)
  // a process app's program, where the daemon runs one
  if (s.process != null) lines.push(`process   pid ${s.process.pid}, listening on 127.0.0.1:${s.process.port}`)
  lines.push(`network   "${s.networkName}", ${s.connections} connection${s.connections === 1 ? '' : 's'}, ${s.network.length} other peer${s.network.length === 1 ? '' : 's'} in view`)
  // an older daemon does not report its trust policy
  const trust = Object.entries(s.trust ?? {})
  // the operator's --policy rules, applied to every release here
  if (s.policy != null && s.policy.length > 0) lines.push(`policy    ${s.policy.map(ruleText).join('; ')}`)
  if (trust.length > 0) lines.push(`trust     ${trust.map(([app, t]) => `${app}: ${t.threshold} of ${t.publishers.length} publisher${t.publishers.length === 1 ? '' : 's'}, sequence ${t.sequence}`).join('; ')}`)
  lines.push('')
  lines.push('releases')
  if (s.releases.length === 0) lines.push('  (none)')
  for (const r of s.releases) {
    const pct = r.size === 0 ? 100 : Math.floor((100 * r.have) / r.size)
    const extra = r.waitingOn != null ? ` waiting on ${r.waitingOn}` : r.reason != null ? ` — ${r.reason}` : ''
    lines.push(`  ${`${r.app} ${r.version}`.padEnd(16)} ${r.state.padEnd(11)} ${String(pct).padStart(3)}%  ${formatBytes(r.have).padStart(9)} / ${formatBytes(r.size).padEnd(9)}  ${shortId(r.id)}${extra}`)
    // why it waits, in words, under the release that waits
    if (r.waitingOn != null && r.reason != null) lines.push(`${' '.repeat(19)}${r.reason}`)
  }
  lines.push('')
  lines.push(...renderPeers(s))
  // the daemon's own build (an older daemon does not report it)
  const build = (s as Partial<DaemonStatus>).build
  if (build != null) lines.push('', `upgossip  ${build}`)
  return lines
}

/** Register `status` on the program. */
export function statusCommand (program: Command): void {
  program.command('status')
    .description('show this peer, its releases with fetch progress, and the network as it sees it')
    .option('--data <dir>', "the daemon's data directory (default $UPGOSSIP_DATA or ~/.upgossip)")
    .option('--daemon <url>', 'control API URL, instead of --data')
    .option('--token <token>', 'control API token, with --daemon')
    .option('--json', 'print JSON (the shape of GET /status)')
    .addHelpText('after', '\nExample:\n  $ upgossip status --data ./a')
    .action(async (opts: { data?: string, daemon?: string, token?: string, json?: boolean }) => {
      const res = await callDaemon(await resolveEndpoint(opts), 'GET', '/status')
      const status = await res.json() as DaemonStatus
      if (opts.json === true) sayJson(status)
      else for (const line of renderStatus(status)) say(line)
    })
}
