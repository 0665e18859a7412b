/**
 * Idle app channels kept open per peer and protocol, so the next call to that peer takes
 * one instead of opening a stream. A channel carries one exchange at a time; a call that
 * finds none idle opens another. An idle channel is watched (the peer closing or resetting
 * it takes it out of the pool) and closed after `idleMs`.
 *
 * @example
 * ```ts
 * const { channel } = await pool.take(peer, '/upgossip/app/kv/2', 30_000)
 * await channel.write([request]); const response = await channel.read()
 * pool.give(peer, '/upgossip/app/kv/2', channel) // or channel.abort(err) when it went wrong
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { FramedChannel } from './framed-channel.js'
import { dialWithDeadline } from './stream-codec.js'

/** How the pool keeps channels. */
export interface ChannelPoolInit {
  /** Idle channels kept per peer and protocol (the rest are closed). */
  maxIdle?: number
  /** How long a channel stays idle before it is closed. */
  idleMs?: number
  /** Told the size of every frame read or written, by protocol. */
  counted?: (protocol: string, direction: 'in' | 'out', bytes: number) => void
}

interface Idle {
  channel: FramedChannel
  timer: NodeJS.Timeout
}

/** Keeps idle channels per peer and protocol. */
export class ChannelPool {
  private readonly connections: Pick<ConnectionManager, 'openConnection'>
  private readonly maxIdle: number
  private readonly idleMs: number
  private readonly idle = new Map<string, Idle[]>()
  private readonly counted: NonNullable<ChannelPoolInit['counted']>

  constructor (connections: Pick<ConnectionManager, 'openConnection'>, init: ChannelPoolInit = {}) {
    this.connections = connections
    this.maxIdle = init.maxIdle ?? 16
    this.idleMs = init.idleMs ?? 30_000
    this.counted = init.counted ?? (() => {})
  }

  /**
   * A channel to `peer` on `protocol`: an idle one (`reused`), or a new stream opened
   * within `timeoutMs`. `maxFrame` bounds the frames a new channel reads.
   */
  async take (peer: PeerId, protocol: string, timeoutMs: number, maxFrame: number): Promise<{ channel: FramedChannel, reused: boolean }> {
    const list = this.idle.get(key(peer, protocol)) ?? []
    for (let entry = list.pop(); entry != null; entry = list.pop()) {
      clearTimeout(entry.timer)
      if (!entry.channel.closed) return { channel: entry.channel, reused: true }
    }
    const { stream, release } = await dialWithDeadline(this.connections, peer, protocol, timeoutMs, () => new Error(`no stream within ${timeoutMs} ms`))
    release()
    return { channel: new FramedChannel(stream, maxFrame, (direction, bytes) => { this.counted(protocol, direction, bytes) }), reused: false }
  }

  /** Give back a channel whose exchange ended in order: kept idle, or closed when enough are. */
  give (peer: PeerId, protocol: string, channel: FramedChannel): void {
    const k = key(peer, protocol)
    const list = this.idle.get(k) ?? []
    if (channel.closed || list.length >= this.maxIdle) {
      void channel.end().catch(() => {})
      return
    }
    const drop = (): void => {
      const now = this.idle.get(k) ?? []
      const i = now.findIndex(e => e.channel === channel)
      if (i >= 0) {
        clearTimeout((now[i] as Idle).timer)
        now.splice(i, 1)
        if (now.length === 0) this.idle.delete(k)
      }
    }
    const timer = setTimeout(() => {
      drop()
      void channel.end().catch(() => {})
    }, this.idleMs)
    timer.unref()
    list.push({ channel, timer })
    this.idle.set(k, list)
    // the peer closing it (its daemon stopping, say) or anything it sends unasked takes it out
    channel.watch(() => {
      drop()
      channel.abort(new Error('the peer closed an idle channel'))
    })
  }

  /** Close every idle channel. */
  close (): void {
    for (const list of this.idle.values()) {
      for (const { channel, timer } of list) {
        clearTimeout(timer)
        void channel.end().catch(() => {})
      }
    }
    this.idle.clear()
  }
}

function key (peer: PeerId, protocol: string): string {
  return `${peer.toString()} ${protocol}`
}
