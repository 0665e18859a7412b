/**
 * The last route chosen to each peer, with what it was chosen from, so that the daemon's
 * check of an app's route on every call (IPC protocol 3) costs a lookup and a few
 * comparisons instead of a version choice (arrays, closures) per call. The arrays are
 * compared by identity: the running app's spoken versions and a peer's protocol list are
 * replaced, never changed in place, when they change (a new simulation object loaded, an
 * identify answer or a peer-store update).
 *
 * @example
 * ```ts
 * const routes = new KnownRoutes()
 * const route = routes.route(peer, 'kv', { native: 1, spoken: [1, 2] }, protocolsOfPeer, 2)
 * ```
 */
import type { Route } from '../ipc/index.js'
import { chooseVersion, spokenVersions } from './versions.js'
import type { Speaker } from './versions.js'

interface Chosen {
  app: string
  list: string[]
  spoken: number[]
  native: number
  theirNative: number | undefined
  route: Route
}

/** Most peers remembered (a bound whatever the network's size). */
const MAX_PEERS = 4096

/** The last route to each peer, and its inputs. */
export class KnownRoutes {
  private readonly chosen = new Map<string, Chosen>()

  /**
   * The route to `peer`'s `app` for this app (`mine`), from the peer's protocol list and native
   * version (undefined: not known from its beats); undefined when the list names no common version.
   */
  route (peer: string, app: string, mine: Speaker, list: string[], theirNative: number | undefined): Route | undefined {
    const last = this.chosen.get(peer)
    if (last?.list === list && last.spoken === mine.spoken && last.native === mine.native && last.theirNative === theirNative && last.app === app) return last.route
    const theirs = spokenVersions(app, list)
    if (!theirs.some(v => mine.spoken.includes(v))) return undefined
    const route: Route = { self: false, version: chooseVersion(mine, { native: theirNative, spoken: theirs }) }
    if (this.chosen.size >= MAX_PEERS) this.chosen.clear()
    this.chosen.set(peer, { app, list, spoken: mine.spoken, native: mine.native, theirNative, route })
    return route
  }
}
