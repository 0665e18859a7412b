/**
 * Which protocol versions one release of an app serves, and through which simulation
 * objects, given the other releases of that app a peer holds: its native protocol, the
 * past SO chain down (its own past SO, then that of the release one protocol down, …) and
 * the future SOs of newer staged releases up — the chain a daemon loads
 * (`daemon/installed-releases.ts`, `simulationsFor`), computed from manifests alone.
 *
 * @example
 * ```ts
 * const served = servedProtocols(store1, [store1, store2])
 * // { protocols: [{ protocol: 1, via: 'native', through: [] }, { protocol: 2, via: 'future', through: ['2.0.0'] }], below: '…', above: '…' }
 * ```
 */
import semver from 'semver'
import type { Manifest } from '../package/index.js'

/** What of a manifest the chain depends on. */
export type ChainRelease = Pick<Manifest, 'app' | 'version' | 'protocol'> & { simulation?: { past?: string, future?: string } }

/** One protocol version a release serves: natively, or through the SOs of the releases named (their versions, nearest first). */
export interface ServedProtocol {
  protocol: number
  via: 'native' | 'past' | 'future'
  /** The versions whose SOs translate, nearest to the release first (empty when native). */
  through: string[]
}

/** The protocols a release serves, lowest first, and why the chain stops at each end. */
export interface ServedProtocols {
  protocols: ServedProtocol[]
  /** Why nothing below the lowest protocol is served. */
  below: string
  /** Why nothing above the highest protocol is served. */
  above: string
}

/**
 * The release of `protocol` a peer would take the next SO from, as a daemon picks it: the
 * newest one that carries the SO the walk `needs` (past going down, future going up), else
 * the newest.
 */
export function kept (held: ChainRelease[], protocol: number, needs: 'past' | 'future' = 'past'): ChainRelease | undefined {
  const candidates = held.filter(r => r.protocol === protocol).sort((a, b) => semver.rcompare(a.version, b.version))
  return candidates.find(r => r.simulation?.[needs] != null) ?? candidates[0]
}

/**
 * The protocols `release` serves on a peer that holds the releases `held` of its app (the
 * older ones it kept, the newer ones staged). Releases of other apps in `held` are ignored.
 */
export function servedProtocols (release: ChainRelease, held: ChainRelease[]): ServedProtocols {
  const mine = held.filter(r => r.app === release.app)
  const name = (r: ChainRelease): string => `${r.app} ${r.version}`
  const protocols: ServedProtocol[] = [{ protocol: release.protocol, via: 'native', through: [] }]

  const through: string[] = []
  let below: ChainRelease | undefined = release
  let belowWhy = ''
  for (;;) {
    if (below.simulation?.past == null) {
      belowWhy = `${name(below)} has no past SO`
      break
    }
    if (below.protocol === 1) {
      belowWhy = 'protocol 1 is the lowest'
      break
    }
    through.push(below.version)
    protocols.unshift({ protocol: below.protocol - 1, via: 'past', through: [...through] })
    const next = kept(mine, below.protocol - 1)
    if (next == null) {
      belowWhy = `no ${release.app} release given speaks protocol ${below.protocol - 1}, whose past SO would come next`
      break
    }
    below = next
  }

  const ahead: string[] = []
  let aboveWhy = ''
  for (let p = release.protocol + 1; ; p++) {
    // a staged release is newer than the running one
    const above = kept(mine.filter(r => semver.gt(r.version, release.version)), p, 'future')
    if (above == null) {
      aboveWhy = `no newer ${release.app} release given speaks protocol ${p}`
      break
    }
    if (above.simulation?.future == null) {
      aboveWhy = `${name(above)} (protocol ${p}) has no future SO`
      break
    }
    ahead.push(above.version)
    protocols.push({ protocol: p, via: 'future', through: [...ahead] })
  }
  return { protocols, below: belowWhy, above: aboveWhy }
}

/** How `served` says it serves one protocol, for people: "native", "the past SO of store 2.0.0", … */
export function describeServed (app: string, served: ServedProtocol): string {
  if (served.via === 'native') return 'native'
  const names = served.through.map(v => `${app} ${v}`)
  if (served.via === 'past') return names.length === 1 ? `the past SO of ${names[0] ?? ''}` : `the past SOs of ${names.join(', then ')}`
  return names.length === 1 ? `the future SO of ${names[0] ?? ''} (once staged)` : `the future SOs of ${names.join(', then ')} (once staged)`
}
