/**
 * Keeps a minimum number of connections by dialling peers from the network view, so
 * a mesh started from one bootstrap peer does not stay a star around it.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerNode } from './node.js'
import type { NetworkView } from './status-beat.js'

/** What the keeper needs. */
export interface PeerKeeperInit {
  node: PeerNode
  view: NetworkView
  minConnections: number
  intervalMs: number
  log: (message: string) => void
}

/** Dials peers from the view while fewer than `minConnections` are connected. */
export class PeerKeeper {
  private readonly init: PeerKeeperInit
  private timer: NodeJS.Timeout | undefined
  private running = false

  constructor (init: PeerKeeperInit) {
    this.init = init
  }

  /** Start checking every interval. */
  start (): void {
    this.timer = setInterval(() => { void this.tick() }, this.init.intervalMs)
    this.timer.unref()
  }

  /** Stop checking. */
  stop (): void {
    clearInterval(this.timer)
  }

  /** One check: dial up to the missing number of peers, each dial bounded by a timeout. */
  async tick (): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      const { node, view } = this.init
      const connected = new Set(node.getPeers().map(p => p.toString()))
      const missing = this.init.minConnections - connected.size
      if (missing <= 0) return
      const self = node.peerId.toString()
      const candidates = view.list().filter(e => e.peerId !== self && !connected.has(e.peerId) && e.beat.addrs.length > 0)
      // shuffle so that every peer does not dial the same few
      const chosen = candidates.map(entry => ({ entry, order: Math.random() })).sort((a, b) => a.order - b.order).map(c => c.entry)
      await Promise.all(chosen.slice(0, missing).map(async entry => {
        try {
          const peerId = peerIdFromString(entry.peerId)
          const addrs = entry.beat.addrs.map(a => multiaddr(a))
          await node.peerStore.merge(peerId, { multiaddrs: addrs })
          await node.dial(peerId, { signal: AbortSignal.timeout(10_000) })
        } catch (err) {
          this.init.log(`could not dial ${entry.peerId}: ${(err as Error).message}`)
        }
      }))
    } finally {
      this.running = false
    }
  }
}
