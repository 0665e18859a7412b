/**
 * App traffic on libp2p: one request frame and one response frame per stream on
 * `/upgossip/app/<app>/<protocol>`, with a size limit and a deadline. What the frames
 * mean is the shim's business.
 */
import type { PeerId, Stream } from '@libp2p/interface'
import type { NetMetrics } from './metrics.js'
import type { PeerNode } from './node.js'
import { dialWithDeadline, readFrame, streamDeadline, writeFrames } from './stream-codec.js'

/** Largest app request or response frame. */
export const MAX_APP_FRAME = 1024 * 1024 + 1024
/** More than the requests kept in flight (holding keeps at most 1000). */
const APP_STREAM_LIMIT = 1024

/** What the app streams need. */
export interface AppStreamsComponents {
  node: PeerNode
  metrics: NetMetrics
  log: (message: string) => void
}

/** Serves and sends app requests. */
export class AppStreams {
  private readonly c: AppStreamsComponents
  private readonly handled = new Set<string>()

  constructor (components: AppStreamsComponents) {
    this.c = components
  }

  /** The protocol ids handled now. */
  get protocols (): string[] {
    return [...this.handled]
  }

  /** Handle `protocol`: each request frame goes to `onRequest`, whose bytes are the answer. */
  async handle (protocol: string, onRequest: (from: string, request: Uint8Array) => Promise<Uint8Array>, timeoutMs = 60_000): Promise<void> {
    if (this.handled.has(protocol)) return
    this.handled.add(protocol)
    await this.c.node.handle(protocol, ({ stream, connection }) => {
      void this.serve(protocol, stream, connection.remotePeer.toString(), onRequest, timeoutMs)
    }, { maxInboundStreams: APP_STREAM_LIMIT, maxOutboundStreams: APP_STREAM_LIMIT })
  }

  private async serve (protocol: string, stream: Stream, from: string, onRequest: (from: string, request: Uint8Array) => Promise<Uint8Array>, timeoutMs: number): Promise<void> {
    const release = streamDeadline(stream, timeoutMs, () => new Error('app request took too long'))
    try {
      const request = await readFrame(stream, MAX_APP_FRAME)
      this.c.metrics.bytes(protocol, 'in', request.byteLength)
      const response = await onRequest(from, request)
      this.c.metrics.bytes(protocol, 'out', response.byteLength)
      await writeFrames(stream, [response])
    } catch (err) {
      this.c.log(`app request from ${from} on ${protocol} failed: ${(err as Error).message}`)
      stream.abort(err as Error)
    } finally {
      release()
    }
  }

  /** Stop handling `protocol` (identify then stops advertising it). */
  async unhandle (protocol: string): Promise<void> {
    if (!this.handled.delete(protocol)) return
    await this.c.node.unhandle(protocol)
  }

  /** Send one request frame to `peer` on `protocol` and return the answer frame. */
  async request (peer: PeerId, protocol: string, request: Uint8Array, timeoutMs = 30_000): Promise<Uint8Array> {
    const { stream, release } = await dialWithDeadline(this.c.node, peer, protocol, timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`))
    try {
      this.c.metrics.bytes(protocol, 'out', request.byteLength)
      await writeFrames(stream, [request])
      const response = await readFrame(stream, MAX_APP_FRAME)
      this.c.metrics.bytes(protocol, 'in', response.byteLength)
      return response
    } finally {
      release()
    }
  }

  /** The protocols a peer advertised (identify, kept by the peer store). */
  async protocolsOf (peer: PeerId): Promise<string[]> {
    try {
      return (await this.c.node.peerStore.get(peer)).protocols
    } catch {
      return []
    }
  }

  /** Ask the peer again (identify over a connection, dialled if needed), for when what we hold looks stale. */
  async refreshProtocols (peer: PeerId, timeoutMs = 10_000): Promise<string[]> {
    const signal = AbortSignal.timeout(timeoutMs)
    const connection = this.c.node.getConnections(peer)[0] ?? await this.c.node.dial(peer, { signal })
    return (await this.c.node.services.identify.identify(connection, { signal })).protocols
  }
}
