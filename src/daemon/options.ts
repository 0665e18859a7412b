/**
 * The daemon's options: from the command line, or the same keys as JSON in
 * `--config FILE` (command-line values win). Schema-checked; unknown keys are errors.
 */
import { isIP } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { formatDuration, isDuration, parseDuration } from '../duration.js'
import { UpgossipError } from '../errors.js'
import { isBootstrapAddress } from '../net/bootstrap-address.js'
import { MAX_IDLE_BEAT_MS } from '../net/status-beat.js'
import { describeSchemaIssues, readJsonFile, safeParse } from '../schema.js'
import { DEFAULT_LOG_LIMIT } from '../store/index.js'
import type { LogLimit } from '../store/index.js'

/** The daemon's options or config file are invalid. */
export class DaemonConfigError extends UpgossipError {
  static override name = 'DaemonConfigError'
}

const duration = z.string().refine(isDuration, { message: 'expected a duration such as 5s' })
const label = z.string().regex(/^[A-Za-z0-9_.-]{1,64}=[^\n]{0,256}$/, { message: 'expected K=V' })

/** Every option of `upgossip daemon`, as `--config` JSON takes them. */
export const DaemonConfigSchema = z.strictObject({
  data: z.string().optional(),
  trust: z.string().optional(),
  replaceTrust: z.boolean().optional(),
  listen: z.array(z.string()).optional(),
  /** The source address of outgoing TCP connections (a host with several addresses). */
  dialFrom: z.string().optional(),
  bootstrap: z.array(z.string()).optional(),
  install: z.string().optional(),
  app: z.string().optional(),
  control: z.number().int().min(0).max(65535).optional(),
  policy: z.string().optional(),
  label: z.array(label).max(32, { message: 'at most 32 labels' }).optional(),
  appConfig: z.string().optional(),
  network: z.string().optional(),
  mdns: z.boolean().optional(),
  psk: z.string().optional(),
  /** `HOST:PORT` of a second HTTP listener serving only `GET /metrics` and `GET /healthz`, without the token (off when absent). */
  metrics: z.string().max(300).optional(),
  /** How often status beats go out while this peer's status changes. */
  beatInterval: duration.optional(),
  /** How often status beats go out while nothing changes (default: the smaller of 4 × beatInterval and a third of peerTimeout). */
  idleBeatInterval: duration.optional(),
  /** Idle beats per second the whole network may send: a large network's idle interval grows past idleBeatInterval to keep to it (default 0.5). */
  idleBeatRate: z.number().positive().max(1000).optional(),
  /** How long a silent peer stays in the network view. */
  peerTimeout: duration.optional(),
  /** Connections the peer keeps by dialling peers it has heard of. */
  minConnections: z.number().int().min(0).max(1000).optional(),
  /** Largest package admitted, in bytes. */
  maxPackageSize: z.number().int().positive().optional(),
  /** How long a transform may run before it is killed and the upgrade rolls back. */
  transformLimit: duration.optional(),
  /** How long a call to another peer's app may take before it fails. */
  callTimeout: duration.optional(),
  /** How long without a status beat or release from any other peer before this peer says it may be frozen. */
  freezeAfter: duration.optional(),
  /** How long a fetch that failed for a local reason (a full disk) waits before it tries again. */
  fetchRetry: duration.optional(),
  /** How long a planned stop (SIGTERM, SIGINT) lets a switch in progress finish or roll back before it cuts it short (default 60s). */
  stopTimeout: duration.optional(),
  /** Bytes `events.jsonl` and `app.log` may each hold before they are moved aside (default 16 MiB). */
  logMaxBytes: z.number().int().min(64 * 1024).optional(),
  /** Old files of each log kept beside it (default 4). */
  logFiles: z.number().int().min(1).max(100).optional(),
  /** Superseded releases kept besides the current and previous ones (default 2). */
  keepReleases: z.number().int().min(0).max(1000).optional(),
  /** How long a version or fetch seen in the network view keeps its release on this peer (default 24h). */
  retainWindow: duration.optional()
})

/** Options as given. */
export type DaemonConfig = z.infer<typeof DaemonConfigSchema>

/** Options with every default filled in. */
export interface DaemonOptions {
  data: string
  /** Take over a lock of the data directory written on another host (`--take-over`, command line only: never kept in a config file). */
  takeOver?: boolean
  trust?: string
  replaceTrust: boolean
  listen: string[]
  /** The source address of outgoing TCP connections; the system's choice when absent. */
  dialFrom?: string
  bootstrap: string[]
  install?: string
  app?: string
  control: number
  policy?: string
  labels: Record<string, string>
  appConfig?: string
  network: string
  mdns: boolean
  psk?: string
  /** Where the token-free `/metrics` and `/healthz` listener binds (`--metrics HOST:PORT`); none when absent. */
  metrics?: HostPort
  beatIntervalMs: number
  /** At least `beatIntervalMs`. */
  idleBeatIntervalMs: number
  /** Idle beats per second across the network (the idle interval is at least view size ÷ this). */
  idleBeatRate: number
  peerTimeoutMs: number
  minConnections: number
  maxPackageSize: number
  transformLimitMs: number
  callTimeoutMs: number
  freezeAfterMs: number
  fetchRetryMs: number
  stopTimeoutMs: number
  /** How big each log grows, and how many old files of it stay. */
  logLimit: LogLimit
  /** Superseded releases kept besides the current and previous ones. */
  keepReleases: number
  /** How long a version or fetch seen in the network view keeps its release. */
  retainWindowMs: number
}

/** A TCP listening address: a host (an IP address or a name) and a port (0: a free one). */
export interface HostPort {
  host: string
  port: number
}

/** `HOST:PORT` (`[IPv6]:PORT` for an IPv6 address) → its parts; throws {@link DaemonConfigError} naming `option`. */
export function parseHostPort (option: string, value: string): HostPort {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(value)
  const host = m?.[1] ?? ''
  const port = Number(m?.[2])
  const hostOk = isIP(host) !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(host)
  // an IPv6 address is written in brackets, as in a URL
  if (m == null || !hostOk || port > 65535 || (isIP(host) === 6 && !value.startsWith('['))) {
    throw new DaemonConfigError(`${option} ${value}: not HOST:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464; port 0 picks a free one)`)
  }
  return { host, port }
}

/** The default data directory: `$UPGOSSIP_DATA` or `~/.upgossip`. */
export function defaultDataDir (): string {
  return process.env.UPGOSSIP_DATA ?? path.join(os.homedir(), '.upgossip')
}

/** Read a `--config FILE`. */
export async function readDaemonConfig (file: string): Promise<DaemonConfig> {
  const json = await readJsonFile(file, 'config', message => new DaemonConfigError(message))
  const result = safeParse(DaemonConfigSchema, json)
  if (!result.success) throw new DaemonConfigError(describeSchemaIssues(`config ${file}`, result.error))
  return configRelativePaths(result.data, file)
}

/** Paths in a config file are relative to the file, not to where the daemon was started. */
export function configRelativePaths (config: DaemonConfig, file: string): DaemonConfig {
  const dir = path.dirname(path.resolve(file))
  const out: DaemonConfig = { ...config }
  for (const key of ['data', 'trust', 'install', 'policy', 'appConfig', 'psk'] as const) {
    const value = out[key]
    if (typeof value === 'string') out[key] = path.resolve(dir, value)
  }
  return out
}

function checkMultiaddr (option: string, value: string): void {
  let ok = false
  try {
    multiaddr(value)
    ok = true
  } catch {}
  if (!ok) throw new DaemonConfigError(`${option} ${value}: not a multiaddr (e.g. /ip4/127.0.0.1/tcp/4001)`)
}

/** Merge a config file's values under the command line's and fill the defaults. */
export function resolveDaemonOptions (cli: DaemonConfig, file: DaemonConfig = {}): DaemonOptions {
  const merged = { ...file, ...Object.fromEntries(Object.entries(cli).filter(([, v]) => v !== undefined)) }
  const checked = safeParse(DaemonConfigSchema, merged)
  if (!checked.success) throw new DaemonConfigError(describeSchemaIssues('daemon options', checked.error))
  const o = checked.data
  if (o.install != null && o.app != null) throw new DaemonConfigError('give either --install BUNDLE or --app NAME, not both')
  for (const a of o.listen ?? []) checkMultiaddr('--listen', a)
  for (const a of o.bootstrap ?? []) {
    if (!isBootstrapAddress(a)) throw new DaemonConfigError(`--bootstrap ${a}: not the address of a peer: a TCP multiaddr (e.g. /ip4/127.0.0.1/tcp/4001 or /dns4/peer.example.net/tcp/4001), with /p2p/PEERID or without (as in another peer's control.json "multiaddrs")`)
  }
  if (o.dialFrom != null && isIP(o.dialFrom) === 0) throw new DaemonConfigError(`--dial-from ${o.dialFrom}: not an IPv4 or IPv6 address (e.g. 127.0.0.2; an address of this host)`)
  if (o.network != null && !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(o.network)) throw new DaemonConfigError(`--network ${o.network}: use lowercase letters, digits, ".", "_" or "-"`)
  if (o.app != null && !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(o.app)) throw new DaemonConfigError(`--app ${o.app}: not an app name (lowercase letters, digits, ".", "_" or "-")`)
  const labels: Record<string, string> = {}
  for (const l of o.label ?? []) {
    const at = l.indexOf('=')
    labels[l.slice(0, at)] = l.slice(at + 1)
  }
  const beatIntervalMs = parseDuration(o.beatInterval ?? '5s')
  const peerTimeoutMs = parseDuration(o.peerTimeout ?? '60s')
  const idleBeatIntervalMs = o.idleBeatInterval == null ? undefined : parseDuration(o.idleBeatInterval)
  // a beat announces its idle interval, and receivers refuse one over 10 minutes
  for (const [key, value] of [['beatInterval', beatIntervalMs], ['idleBeatInterval', idleBeatIntervalMs ?? 0]] as const) {
    if (value > MAX_IDLE_BEAT_MS) throw new DaemonConfigError(`${key} ${formatDuration(value)}: at most 10m (a beat announces its idle interval, and peers refuse one over 10 minutes)`)
  }
  return {
    data: path.resolve(o.data ?? defaultDataDir()),
    trust: o.trust,
    replaceTrust: o.replaceTrust ?? false,
    listen: o.listen ?? ['/ip4/0.0.0.0/tcp/0'],
    dialFrom: o.dialFrom,
    bootstrap: o.bootstrap ?? [],
    install: o.install,
    app: o.app,
    control: o.control ?? 0,
    policy: o.policy,
    labels,
    appConfig: o.appConfig,
    network: o.network ?? 'default',
    mdns: o.mdns ?? false,
    psk: o.psk,
    metrics: o.metrics == null ? undefined : parseHostPort('--metrics', o.metrics),
    beatIntervalMs,
    idleBeatIntervalMs: Math.max(beatIntervalMs, idleBeatIntervalMs ?? Math.min(4 * beatIntervalMs, Math.floor(peerTimeoutMs / 3))),
    idleBeatRate: o.idleBeatRate ?? 0.5,
    peerTimeoutMs,
    minConnections: o.minConnections ?? 4,
    maxPackageSize: o.maxPackageSize ?? 1024 * 1024 * 1024,
    transformLimitMs: parseDuration(o.transformLimit ?? '2m'),
    callTimeoutMs: parseDuration(o.callTimeout ?? '30s'),
    freezeAfterMs: parseDuration(o.freezeAfter ?? '5m'),
    fetchRetryMs: parseDuration(o.fetchRetry ?? '30s'),
    stopTimeoutMs: parseDuration(o.stopTimeout ?? '60s'),
    logLimit: { maxBytes: o.logMaxBytes ?? DEFAULT_LOG_LIMIT.maxBytes, keep: o.logFiles ?? DEFAULT_LOG_LIMIT.keep },
    keepReleases: o.keepReleases ?? 2,
    retainWindowMs: parseDuration(o.retainWindow ?? '24h')
  }
}
