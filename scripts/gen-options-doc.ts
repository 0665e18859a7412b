/**
 * The table of `upgossip daemon` options in docs/operator.md, generated from the code:
 * the keys, their types and bounds from the config schema (`DaemonConfigSchema`), the
 * defaults from `resolveDaemonOptions({})`, and which keys are command-line options from
 * the CLI's own `daemon` command. Only the meaning of each key is written by hand, here;
 * a key with no meaning, or a meaning for a key that is gone, is an error.
 * The table sits between the markers `<!-- options:start -->` and `<!-- options:end -->`;
 * `test/unit/docs.test.ts` fails when it is out of date.
 *
 * @example
 * ```sh
 * npm run build && node scripts/gen-options-doc.ts           # rewrite the table in docs/operator.md
 * node scripts/gen-options-doc.ts --check                    # exit 1 if it is out of date
 * ```
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const OPERATOR_DOC = fileURLToPath(new URL('../docs/operator.md', import.meta.url))
export const START = '<!-- options:start -->'
export const END = '<!-- options:end -->'

/** What the meaning of a key says; links are relative to docs/. */
export const MEANINGS: Record<string, string> = {
  data: 'the peer\'s [data directory](#the-data-directory); created (mode 0700) if missing; an existing one open to other users is set to 0700 at start (one warning). One daemon per directory.',
  trust: 'a [trust file](releases.md#trust-files). Seeds the peer\'s [trust store](#the-trust-store) on the first start; later starts may leave it out. The same file on a later start keeps the store as it is, [key rotations](releases.md#key-rotation) included; a *different* file is refused unless `--replace-trust`.',
  replaceTrust: 'replace the trust store with `--trust FILE` even though it differs from the one seeded before; rotations kept in the data directory that follow on from it are adopted again.',
  listen: 'where libp2p listens; repeatable. TCP only. `/tcp/0` picks a free port; `/ip4/127.0.0.1/tcp/0` stays on this machine.',
  dialFrom: 'the source address of outgoing connections, an IPv4 or IPv6 address, for a host with several addresses whose peers should see one of them. That it is one of this host\'s is not checked: if not, every dial fails (EADDRNOTAVAIL, logged). Outgoing connections to addresses of the other family fail.',
  bootstrap: 'a peer to join through: a TCP multiaddr with `/p2p/PEERID` (as in another peer\'s `control.json`) or without it (`/ip4/10.0.0.5/tcp/4001`, `/dns4/seed.example.net/tcp/4001`: the id is learned when the connection is secured; [Bootstrap](#networks-bootstrap---network---psk---mdns)); repeatable.',
  install: 'install a first version from a release bundle and run it. Ignored, with a note, when the peer already runs a version. Not together with `app`.',
  app: 'join with no code: install the newest trusted release of this app found on the network, and run it. Refused when the data directory already runs another app (`AppMismatchError`).',
  control: 'the control API\'s port, always on 127.0.0.1; `0`: a free port. A port in use is refused (`ControlPortInUseError`).',
  policy: 'the operator\'s local schedule rules, applied to every release on this peer: `{ "rules": [ … ] }` ([apps.md](apps.md#the-local-policy---policy-file)). Read at start; an unreadable or invalid file, or one with a `module` rule, is refused (`PolicyInvalidError`).',
  label: 'a label of this peer, `K=V` (`K`: 1–64 of `A-Za-z0-9_.-`; `V`: up to 256 characters); repeatable. Shown in `status`, sent in status beats, used by the `labels` and `canary` schedule rules.',
  appConfig: 'per-peer settings for the app, a JSON file handed to it as `node.config`. Read at start; unreadable or not JSON is refused (`AppConfigInvalidError`).',
  network: 'the network\'s name: the gossip topics are `upgossip/NAME/releases` and `upgossip/NAME/status`, and sync answers only peers of the same name. Lowercase letters, digits, `.`, `_`, `-`, at most 63 characters ([Networks](#networks-bootstrap---network---psk---mdns)).',
  mdns: 'discover peers on the local network by mDNS (every 5 s), announcing on every interface.',
  psk: 'a private-network key file (libp2p pnet): peers without the same key cannot connect ([Private networks](#private-networks---psk)). It must be readable by its owner only (`chmod 600`): a file open to other users is refused (`PskPermissionsError`).',
  metrics: 'also serve `GET /metrics` and `GET /healthz` on `HOST:PORT` (`0.0.0.0:9464`, `[::1]:9464`; port `0`: a free one), *without* the token, for Prometheus and health probes on other hosts; nothing else is served there ([The `--metrics` listener](#the---metrics-listener)). Off by default. A port in use refuses the start before the app runs (`MetricsListenFailedError`).',
  beatInterval: 'how often this peer checks whether to send a [status beat](wire.md#status-beats-and-the-network-view) (it sends one when its status changed); at most `10m`. The claim step\'s settle time is 1.5 × this.',
  idleBeatInterval: 'how often a peer whose status has not changed beats anyway, so it stays in other peers\' views; by default the smaller of 4 × `beatInterval` and a third of `peerTimeout`; never less than `beatInterval`, at most `10m` (a beat announces it, and peers refuse one over 10 minutes).',
  idleBeatRate: 'idle beats per second the whole network may send: in a network of more than `idleBeatRate` × `idleBeatInterval` peers the idle interval grows to (peers ÷ `idleBeatRate`) seconds, at most 10 minutes.',
  peerTimeout: 'how long a peer that has gone silent stays in the network view (longer for a peer that announced a long idle interval: 3 × that interval).',
  minConnections: 'connections the peer keeps by dialling peers it has heard of.',
  maxPackageSize: 'the largest package admitted, in bytes (the record\'s `size`).',
  transformLimit: 'how long a [transform](apps.md#3-transforms) may run before it is killed and the switch rolls back.',
  callTimeout: 'how long a call to another peer\'s app may take before it fails ([shim.md](shim.md)).',
  freezeAfter: 'how long this peer may hear no status beat and no release from any other peer before it says it may be cut off (`status.freshness`, a `freeze-suspected` event, `upgossip_frozen` 1; [SECURITY.md](SECURITY.md)).',
  fetchRetry: 'how long a package fetch that failed for a local reason (a [full disk](#a-full-disk)) waits before it tries again.',
  stopTimeout: 'how long a planned stop (SIGTERM, SIGINT) lets a switch in progress finish or roll back before it cuts it short; one cut short is undone on the next start and tried again, [not counted as an interruption](#planned-stops-and-restarts). Keep it below the service manager\'s stop timeout.',
  logMaxBytes: 'bytes `events.jsonl` and `app.log` may each hold before they are moved aside (`events.1.jsonl`, `app.1.log`, the older ones shifted up); default 16 MiB (16777216), at least 64 KiB. `history` reads across them.',
  logFiles: 'old files of each log kept beside it, default 4; the oldest goes when another is moved aside. With the defaults a peer\'s logs take at most 2 × 5 × 16 MiB.',
  keepReleases: 'superseded releases of this peer\'s app kept on disk (package and blocks, not state) besides the current and previous ones, newest first, so that laggards can still fetch them from this peer ([Disk use and retention](#disk-use-and-retention)). `0`: only what the network view still needs.',
  retainWindow: 'how long a version that a peer in the network view ran, or a release one fetched, keeps its package and blocks here (and, for this peer\'s app, every version between it and this peer\'s, for their simulation objects) after that peer was last seen ([Disk use and retention](#disk-use-and-retention)).',
  config: 'read these options from a JSON file (below); values given on the command line win.',
  printUnit: 'print a systemd service unit that runs the daemon with the other options given, and exit ([Running as a service](#running-as-a-service)).',
  user: 'with `--print-unit`: the user the service runs as.',
  takeOver: 'take over a lock of the data directory written on *another host*, which is otherwise refused (that host may still run a daemon on a shared file system); use it once that host no longer uses the directory (copied, moved or restored from there). A lock whose process is gone from this host is cleared without it. Command line only: a config file that kept it would take over every time ([Backup and restore](#backup-and-restore)).'
}

/** The parts of a zod 4 schema the table reads (kept structural, so the script needs no zod types). */
interface Field {
  def: { type: string, checks?: Array<{ _zod: { def: Record<string, unknown> } }> }
  element?: Field
  unwrap?: () => Field
  safeParse: (value: unknown) => { success: boolean }
}

/** What the table is built from: the schema, the defaults, the CLI's options. */
export interface OptionsSource {
  /** `DaemonConfigSchema.shape`. */
  shape: Record<string, unknown>
  /** `resolveDaemonOptions({})`, run with `$UPGOSSIP_DATA` unset. */
  defaults: Record<string, unknown>
  /** The `daemon` command's options: `--long` flag, attribute name (camelCase), and whether it takes no value. */
  cli: Array<{ long: string, attribute: string, boolean?: boolean }>
  /** `formatDuration` of the code, to print default durations as the CLI reads them. */
  formatDuration: (ms: number) => string
}

function checks (f: Field): Array<Record<string, unknown>> {
  return (f.def.checks ?? []).map(c => c._zod.def)
}

/** A duration key: the schema takes `5s` and refuses `soon`. */
function isDuration (f: Field): boolean {
  return f.def.type === 'string' && f.safeParse('5s').success && !f.safeParse('soon').success
}

/** The type column: what the value is, and its bounds from the schema. */
function typeOf (f: Field): string {
  if (isDuration(f)) return 'duration'
  if (f.def.type === 'boolean') return 'boolean'
  if (f.def.type === 'string') return 'string'
  if (f.def.type === 'array') {
    const max = checks(f).find(c => c.check === 'max_length')
    return `array of ${typeOf(f.element as Field)}s${max == null ? '' : `, at most ${String(max.maximum)}`}`
  }
  if (f.def.type === 'number') {
    const cs = checks(f)
    const int = cs.some(c => c.check === 'number_format' && String(c.format).includes('int'))
    const low = cs.find(c => c.check === 'greater_than')
    const high = cs.find(c => c.check === 'less_than')
    const bounds = [
      low == null ? '' : `${low.inclusive === true ? '≥' : '>'} ${String(low.value)}`,
      high == null ? '' : `${high.inclusive === true ? '≤' : '<'} ${String(high.value)}`
    ].filter(b => b !== '').join(', ')
    return `${int ? 'integer' : 'number'}${bounds === '' ? '' : ` ${bounds}`}`
  }
  return f.def.type
}

function bytes (n: number): string {
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= size && n % size === 0) return ` (${n / size} ${unit})`
  }
  return ''
}

/** The default column, from what `resolveDaemonOptions({})` filled in. */
function defaultOf (key: string, f: Field, src: OptionsSource): string {
  const resolved = key === 'label' ? 'labels' : isDuration(f) ? `${key}Ms` : key
  const value = src.defaults[resolved]
  if (key === 'data' && value === path.join(os.homedir(), '.upgossip')) return '`$UPGOSSIP_DATA`, else `~/.upgossip`'
  if (value == null) return '—'
  if (isDuration(f) && typeof value === 'number') return `\`${src.formatDuration(value)}\``
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map(v => `\`${String(v)}\``).join(', ')
  if (typeof value === 'object') return Object.keys(value).length === 0 ? 'none' : `\`${JSON.stringify(value)}\``
  if (typeof value === 'number') return `\`${value}\`${bytes(value)}`
  return `\`${String(value)}\``
}

/** The options table, as markdown. Throws when a key has no meaning here, or a meaning has no key. */
export function renderOptionsTable (src: OptionsSource): string {
  const keys = Object.keys(src.shape)
  const flags = new Map(src.cli.map(o => [o.attribute, o.long]))
  const cliOnly = src.cli.filter(o => !keys.includes(o.attribute)).map(o => o.attribute)
  const known = [...keys, ...cliOnly]
  const undocumented = known.filter(k => MEANINGS[k] == null)
  const gone = Object.keys(MEANINGS).filter(k => !known.includes(k))
  if (undocumented.length > 0 || gone.length > 0) {
    throw new Error(`scripts/gen-options-doc.ts MEANINGS is out of step with the code: ${undocumented.length > 0 ? `no meaning for ${undocumented.join(', ')}` : ''}${undocumented.length > 0 && gone.length > 0 ? '; ' : ''}${gone.length > 0 ? `a meaning for ${gone.join(', ')}, which the code no longer has` : ''}`)
  }
  const rows = keys.map(key => {
    const f = (src.shape[key] as Field).unwrap?.() ?? src.shape[key] as Field
    const flag = flags.get(key)
    return `| ${flag == null ? '—' : `\`${flag}\``} | \`${key}\` | ${typeOf(f)} | ${defaultOf(key, f, src)} | ${MEANINGS[key] ?? ''} |`
  })
  const flagOnly = new Set(src.cli.filter(o => o.boolean === true).map(o => o.attribute))
  for (const key of cliOnly) rows.push(`| \`${flags.get(key) ?? key}\` | — | ${flagOnly.has(key) ? 'boolean' : 'string'} | — | ${MEANINGS[key] ?? ''} |`)
  return [
    '| option | `--config` key | type | default | meaning |',
    '|---|---|---|---|---|',
    ...rows
  ].join('\n')
}

/** `text` with the table between the markers replaced; throws when the markers are missing. */
export function withOptionsTable (text: string, table: string): string {
  const start = text.indexOf(START)
  const end = text.indexOf(END)
  if (start < 0 || end < start) throw new Error(`docs/operator.md has no ${START} … ${END} markers`)
  return text.slice(0, start + START.length) + '\n' + table + '\n' + text.slice(end)
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  // the compiled code (npm run build): the same modules the daemon runs
  const dist = new URL('../dist/', import.meta.url)
  if (!fs.existsSync(new URL('daemon/options.js', dist))) {
    process.stderr.write('gen-options-doc: dist/ is missing; run "npm run build" first\n')
    process.exit(2)
  }
  delete process.env.UPGOSSIP_DATA
  const options = await import(new URL('daemon/options.js', dist).href) as { DaemonConfigSchema: { shape: Record<string, unknown> }, resolveDaemonOptions: (c: object) => Record<string, unknown> }
  const { formatDuration } = await import(new URL('duration.js', dist).href) as { formatDuration: (ms: number) => string }
  const { buildProgram } = await import(new URL('cli/main.js', dist).href) as { buildProgram: () => { commands: Array<{ name: () => string, options: Array<{ long?: string, attributeName: () => string, isBoolean: () => boolean }> }> } }
  const daemon = buildProgram().commands.find(c => c.name() === 'daemon')
  const cli = (daemon?.options ?? []).filter(o => o.long != null && o.long !== '--help').map(o => ({ long: o.long as string, attribute: o.attributeName(), boolean: o.isBoolean() }))
  const table = renderOptionsTable({ shape: options.DaemonConfigSchema.shape, defaults: options.resolveDaemonOptions({}), cli, formatDuration })
  const text = fs.readFileSync(OPERATOR_DOC, 'utf8')
  const next = withOptionsTable(text, table)
  if (process.argv.includes('--check')) {
    if (next !== text) {
      process.stderr.write('docs/operator.md: the options table is out of date; run "node scripts/gen-options-doc.ts"\n')
      process.exit(1)
    }
  } else if (next !== text) {
    fs.writeFileSync(OPERATOR_DOC, next)
    process.stderr.write('wrote the options table in docs/operator.md\n')
  }
}
