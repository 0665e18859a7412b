/**
 * `upgossip daemon --print-unit`: a systemd service unit that runs the daemon with the
 * options given, written for how the daemon stops (docs/operator.md, "Running as a
 * service"): SIGTERM to the daemon alone (`KillMode=mixed`), which finishes a switch in
 * progress and stops its app itself, with a stop timeout above the daemon's own; every file
 * private (`UMask=0077`); the file system read-only but for the data directory.
 *
 * @example
 * ```ts
 * process.stdout.write(serviceUnit({ node: process.execPath, bin: '/opt/upgossip/bin/upgossip.js', args: ['daemon', '--data', '/var/lib/upgossip'], data: '/var/lib/upgossip', stopTimeoutMs: 60_000, user: 'upgossip' }))
 * ```
 */
import path from 'node:path'

/** What the unit is written from. */
export interface UnitSpec {
  /** The Node.js that runs the daemon (absolute). */
  node: string
  /** upgossip's bin script (absolute). */
  bin: string
  /** The daemon's arguments, paths absolute (`daemon --data …`). */
  args: string[]
  /** The data directory (absolute): the one place the service may write. */
  data: string
  /** The daemon's `stopTimeout`. */
  stopTimeoutMs: number
  /** The user to run as; the unit's default (root) without one. */
  user?: string
}

/** Time the app's shutdown and the rest of a stop may take beyond the switch's `stopTimeout`. */
const STOP_SLACK_S = 30

/** One argument of `ExecStart=` as systemd reads it: quoted when it has to be, `%` and `$` escaped. */
export function unitArg (arg: string): string {
  const escaped = arg.replaceAll('%', '%%').replaceAll('$', '$$$$')
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(escaped)) return escaped
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}

/** The unit file's text. */
export function serviceUnit (u: UnitSpec): string {
  const stopSeconds = Math.ceil(u.stopTimeoutMs / 1000) + STOP_SLACK_S
  return [
    '# written by "upgossip daemon --print-unit"; see docs/operator.md, "Running as a service"',
    '[Unit]',
    `Description=upgossip peer (${path.basename(u.data)})`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=exec',
    ...(u.user == null ? [] : [`User=${u.user}`]),
    `ExecStart=${[u.node, u.bin, ...u.args].map(unitArg).join(' ')}`,
    '# SIGTERM to the daemon alone: it finishes or rolls back a switch in progress and stops',
    '# its app itself; what is left at the timeout gets SIGKILL',
    'KillMode=mixed',
    'KillSignal=SIGTERM',
    `# the daemon's stopTimeout (${Math.ceil(u.stopTimeoutMs / 1000)}s) and ${STOP_SLACK_S}s for the app's shutdown`,
    `TimeoutStopSec=${stopSeconds}`,
    'Restart=on-failure',
    'RestartSec=5s',
    'UMask=0077',
    'LimitNOFILE=65536',
    'NoNewPrivileges=yes',
    'PrivateTmp=yes',
    'ProtectSystem=strict',
    'ProtectHome=read-only',
    `ReadWritePaths=${unitArg(u.data)}`,
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictSUIDSGID=yes',
    'RestrictRealtime=yes',
    'LockPersonality=yes',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    ''
  ].join('\n')
}

/** The daemon's options as `ExecStart=` arguments: every path absolute, the unit's own options left out. */
export function daemonArgs (o: Record<string, unknown>, data: string): string[] {
  const args = ['daemon', '--data', data]
  const paths = new Set(['trust', 'install', 'policy', 'appConfig', 'psk', 'config'])
  for (const [key, value] of Object.entries(o)) {
    if (value == null || value === false || ['data', 'printUnit', 'user'].includes(key)) continue
    const flag = `--${key.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)}`
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v === true) args.push(flag)
      else args.push(flag, paths.has(key) ? path.resolve(String(v)) : String(v))
    }
  }
  return args
}
