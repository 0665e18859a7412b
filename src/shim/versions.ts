/**
 * Protocol ids of app traffic, `/upgossip/app/<app>/<protocol>`, and the version
 * choice: the common version with the fewest translation hops on both sides, the newer
 * on a tie — so two peers of one version never translate.
 */
import { UpgossipError } from '../errors.js'

/** No protocol version is spoken by both peers. */
export class NoCommonVersionError extends UpgossipError {
  static override name = 'NoCommonVersionError'
}

const APP_PROTOCOL = /^\/upgossip\/app\/([a-z0-9][a-z0-9._-]{0,62})\/([1-9][0-9]{0,6})$/

/** The protocol id of `app` at protocol version `version`. */
export function appProtocolId (app: string, version: number): string {
  return `/upgossip/app/${app}/${version}`
}

/** The app and version of an app protocol id, or undefined when it is not one. */
export function parseAppProtocolId (id: string): { app: string, version: number } | undefined {
  const match = APP_PROTOCOL.exec(id)
  if (match == null) return undefined
  return { app: match[1] as string, version: Number(match[2]) }
}

/** What each protocol list (as the peer store's cache holds it, read on every call) says per app. */
const parsedLists = new WeakMap<string[], Map<string, number[]>>()

/** The versions of `app` a peer advertises, from its protocol list (parsed once per list and app). */
export function spokenVersions (app: string, protocols: string[]): number[] {
  let byApp = parsedLists.get(protocols)
  if (byApp == null) {
    byApp = new Map()
    parsedLists.set(protocols, byApp)
  }
  let versions = byApp.get(app)
  if (versions == null) {
    versions = parseSpokenVersions(app, protocols)
    byApp.set(app, versions)
  }
  return versions
}

function parseSpokenVersions (app: string, protocols: string[]): number[] {
  const versions = new Set<number>()
  for (const p of protocols) {
    const parsed = parseAppProtocolId(p)
    if (parsed?.app === app) versions.add(parsed.version)
  }
  return [...versions].sort((a, b) => a - b)
}

/** What one side speaks: its native version, and every version it can serve and call. */
export interface Speaker {
  native: number
  spoken: number[]
}

/**
 * The version a caller uses towards a callee: among the versions both speak, the one
 * with the fewest hops (|native − v| on each side), the newer on a tie. When the
 * callee's native version is unknown, only the caller's hops count.
 */
export function chooseVersion (caller: Speaker, callee: { native?: number, spoken: number[] }): number {
  const common = caller.spoken.filter(v => callee.spoken.includes(v))
  if (common.length === 0) {
    throw new NoCommonVersionError(`no common protocol version: this peer speaks ${caller.spoken.join(', ')}, the other ${callee.spoken.length > 0 ? callee.spoken.join(', ') : 'none'}`)
  }
  const hops = (v: number): number => Math.abs(caller.native - v) + (callee.native == null ? 0 : Math.abs(callee.native - v))
  return common.reduce((best, v) => hops(v) < hops(best) || (hops(v) === hops(best) && v > best) ? v : best)
}
