/**
 * Keeps a minimum number of connections by dialling peers from the network view, so
 * a mesh started from one bootstrap peer does not stay a star around it; and makes every
 * peer of the view dialable, so an app can call a peer it is not connected to.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { hasPeerId } from './bootstrap-address.js'
import type { BasePeerNode } from './node.js'
import type { NetworkView } from './status-beat.js'

/** What the keeper needs. */
export interface PeerKeeperInit {
  node: BasePeerNode
  view: NetworkView
  minConnections: number
  intervalMs: number
  log: (message: string) => void
  /**
   * Bootstrap multiaddrs, with or without `/p2p/PEERID`, dialled again (with backoff) while
   * this peer has no connection at all. Those without a peer id are also dialled at
   * {@link PeerKeeper.start}: libp2p's bootstrap discovery takes only complete ones.
   */
  bootstrap?: string[]
  /** The time, for the backoff (default `Date.now`). */
  now?: () => number
}

/** The longest pause between two rounds of bootstrap dials while isolated. */
const MAX_BOOTSTRAP_BACKOFF_MS = 60_000

/** Dials peers from the view while fewer than `minConnections` are connected. */
export class PeerKeeper {
  private readonly init: PeerKeeperInit
  private readonly log: Logger
  private timer: NodeJS.Timeout | undefined
  private running = false
  /** The addresses last handed to the peer store, by peer. */
  private readonly remembered = new Map<string, string>()
  private bootstrapBackoffMs = 0
  private nextBootstrapAt = 0
  /** The peer id each bootstrap address without one turned out to have, once dialled. */
  private readonly learnedIds = new Map<string, string>()

  constructor (init: PeerKeeperInit) {
    this.init = init
    this.log = init.node.logger.forComponent('upgossip:peer-keeper')
  }

  /** Start checking every interval; dial the bootstrap addresses without a peer id at once. */
  start (): void {
    this.timer = setInterval(() => { void this.tick() }, this.init.intervalMs)
    this.timer.unref()
    const withoutId = (this.init.bootstrap ?? []).filter(addr => !hasPeerId(addr))
    if (withoutId.length > 0) void this.dialBootstrap(withoutId, 'trying again while this peer has no connection')
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
      await this.rememberAddresses()
      const connected = new Set(node.getPeers().map(p => p.toString()))
      if (connected.size === 0) await this.redialBootstrap()
      else this.bootstrapBackoffMs = 0
      const missing = this.init.minConnections - connected.size
      if (missing <= 0) return
      const self = node.peerId.toString()
      const candidates = view.list().filter(e => e.peerId !== self && !connected.has(e.peerId) && e.beat.addrs.length > 0)
      // shuffle so that every peer does not dial the same few
      const chosen = candidates.map(entry => ({ entry, order: Math.random() })).sort((a, b) => a.order - b.order).map(c => c.entry)
      this.log('%d connections, %d wanted: dialling %d of %d peers in view', connected.size, this.init.minConnections, Math.min(missing, chosen.length), candidates.length)
      await Promise.all(chosen.slice(0, missing).map(async entry => {
        try {
          const peerId = peerIdFromString(entry.peerId)
          await node.dial(peerId, { signal: AbortSignal.timeout(10_000) })
          this.log('dialled %s', entry.peerId)
        } catch (err) {
          this.init.log(`could not dial ${entry.peerId}: ${(err as Error).message}`)
        }
      }))
    } finally {
      this.running = false
    }
  }

  /** Put the addresses each peer announces in its beats into the peer store (when they changed). */
  private async rememberAddresses (): Promise<void> {
    const inView = new Set<string>()
    for (const entry of this.init.view.list()) {
      inView.add(entry.peerId)
      await this.learn(entry.peerId, entry.beat.addrs)
    }
    for (const peer of this.remembered.keys()) if (!inView.has(peer)) this.remembered.delete(peer)
  }

  /**
   * Put the addresses `peerId` announces into the peer store, if they changed since last
   * time. The daemon calls it as each beat is taken in, so that a peer heard of can be
   * dialled at once (an app's call to it must not wait for the next tick); each tick
   * catches up on the whole view.
   */
  async learn (peerId: string, addrs: string[]): Promise<void> {
    const joined = addrs.join(' ')
    if (peerId === this.init.node.peerId.toString() || joined === '' || this.remembered.get(peerId) === joined) return
    this.remembered.set(peerId, joined)
    this.log('%s announces %s', peerId, joined)
    try {
      await this.init.node.peerStore.merge(peerIdFromString(peerId), { multiaddrs: addrs.map(a => multiaddr(a)) })
    } catch (err) {
      this.init.log(`cannot use the addresses ${peerId} announces: ${(err as Error).message}`)
    }
  }

  /**
   * A first bootstrap dial can fail (a busy peer, a handshake cut short) and libp2p's
   * bootstrap discovery does not try again: an isolated peer keeps trying, backing off.
   */
  private async redialBootstrap (): Promise<void> {
    const list = this.init.bootstrap ?? []
    const now = (this.init.now ?? Date.now)()
    if (list.length === 0 || now < this.nextBootstrapAt) return
    this.bootstrapBackoffMs = Math.min(MAX_BOOTSTRAP_BACKOFF_MS, Math.max(2000, this.bootstrapBackoffMs * 2))
    this.nextBootstrapAt = now + this.bootstrapBackoffMs
    this.log('no connection: dialling the bootstrap peers again (next in %d ms)', this.bootstrapBackoffMs)
    await this.dialBootstrap(list, `trying again within ${this.bootstrapBackoffMs / 1000} s`)
  }

  /**
   * Dial bootstrap addresses. One without a peer id learns it from the connection (the
   * handshake proves the key), which is said once, and the peer is tagged as libp2p's
   * bootstrap discovery tags the peers it dials, so the connection manager keeps it.
   */
  private async dialBootstrap (list: string[], retry: string): Promise<void> {
    await Promise.all(list.map(async addr => {
      try {
        const connection = await this.init.node.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })
        if (hasPeerId(addr)) return
        const id = connection.remotePeer.toString()
        if (this.learnedIds.get(addr) === id) return
        this.learnedIds.set(addr, id)
        this.init.log(`bootstrap peer ${addr} is ${id}`)
        await this.init.node.peerStore.merge(connection.remotePeer, { tags: { [BOOTSTRAP_TAG]: { value: BOOTSTRAP_TAG_VALUE } } })
      } catch (err) {
        this.init.log(`could not dial bootstrap peer ${addr}: ${(err as Error).message}; ${retry}`)
      }
    }))
  }
}

/** The tag libp2p's bootstrap discovery gives the peers it dials, and its value. */
const BOOTSTRAP_TAG = 'bootstrap'
const BOOTSTRAP_TAG_VALUE = 50
