/**
 * What every scenario is made of: its shape, and the waits and measures several of them
 * share.
 */
import type { TestnetApp } from './apps.js'
import type { DaemonProcess } from './daemon-process.js'
import type { HistoryEvent, Testnet } from './testnet.js'
import { upgradeTimes } from './testnet.js'
import type { TestnetRelease } from './workspace.js'

/** One scenario. */
export interface Scenario {
  name: string
  /** One line for `--help` and the report. */
  summary: string
  /** How many daemons when `--peers` is not given (default 8). */
  peers?: number
  /** The fewest daemons it can run with (default 2, the least `--peers` takes). */
  minPeers?: number
  /** Trust: how many of the three publisher keys are listed, and the threshold. */
  trust?: [number, number]
  /** The app the network runs (default: the demo app, kv). */
  app?: TestnetApp
  /** Other classes of node the network carries besides `app` (its trust file lists them too). */
  otherApps?: TestnetApp[]
  /** What must be on this machine, checked before anything starts; throws a named error naming what is missing. */
  preflight?: () => Promise<void>
  /** Drive the network; resolves to the version every peer must run at the end. */
  run: (net: Testnet) => Promise<string>
}

/** Wait until `peer` holds `release` in `states` (and, if given, waiting on `on`). */
export async function waitRelease (net: Testnet, peer: DaemonProcess, release: TestnetRelease, states: string[], on?: string): Promise<void> {
  await net.waitUntil(`${peer.name} to have ${release.version} ${states.join('/')}${on == null ? '' : ` on ${on}`}`, async () => {
    const r = (await peer.status()).releases.find(x => x.id === release.id)
    return r != null && states.includes(r.state) && (on == null || r.waitingOn === on)
  })
}

/** The largest number of peers that were upgrading to `release` at one moment. */
export function mostAtOnce (histories: Map<DaemonProcess, HistoryEvent[]>, release: TestnetRelease): number {
  const edges: Array<[number, number]> = []
  for (const events of histories.values()) {
    const t = upgradeTimes(events, release.id)
    if (t.started == null) continue
    edges.push([t.started, 1], [t.committed ?? t.failed ?? Date.now(), -1])
  }
  edges.sort((a, b) => a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1])
  let now = 0
  let most = 0
  for (const [, d] of edges) { now += d; most = Math.max(most, now) }
  return most
}
