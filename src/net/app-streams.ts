/**
 * App traffic on libp2p: one request frame and one response frame per stream on
 * `/upgossip/app/<app>/<protocol>`, with a size limit and a deadline; and, for apps whose
 * wire is TCP, byte streams on `/upgossip/app-tcp/<app>/<protocol>` ({@link ByteStream}).
 * What the frames and bytes mean is the shim's business.
 *
 * A libp2p service: `createPeerNode` registers it as `appStreams`, libp2p starts and
 * stops it; the shim decides which protocols it handles.
 */
import { serviceDependencies } from '@libp2p/interface'
import type { ComponentLogger, Logger, PeerId, PeerStore, Startable, Stream } from '@libp2p/interface'
import type { Identify } from '@libp2p/identify'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { openByteStream, serveByteStream } from './byte-stream.js'
import type { ByteStream, ByteStreamAccept } from './byte-stream.js'
import type { NetMetrics } from './metrics.js'
import { dialWithDeadline, readFrame, streamDeadline, writeFrames } from './stream-codec.js'

/** Largest app request or response frame. */
export const MAX_APP_FRAME = 1024 * 1024 + 1024
/** More than the requests kept in flight (holding keeps at most 1000). */
const APP_STREAM_LIMIT = 1024
/** Libp2p's use priority for a dial: ahead of its own background dials, as its `dial` does. */
const USER_DIAL_PRIORITY = 75

/** What the app streams take from libp2p (`identify` is the node's identify service). */
export interface AppStreamsComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  peerStore: PeerStore
  identify: Identify
  logger: ComponentLogger
}

/** What the app streams take from their owner. */
export interface AppStreamsInit {
  metrics: NetMetrics
  /** Operator-facing notes (the event log): requests that failed. */
  log: (message: string) => void
}

/** Serves and sends app requests. */
export class AppStreams implements Startable {
  readonly [Symbol.toStringTag] = '@upgossip/app-streams'
  /** `refreshProtocols` asks the node's identify service. */
  readonly [serviceDependencies]: string[] = ['@libp2p/identify']
  private readonly components: AppStreamsComponents
  private readonly c: AppStreamsInit
  private readonly log: Logger
  private readonly handled = new Set<string>()

  constructor (components: AppStreamsComponents, init: AppStreamsInit) {
    this.components = components
    this.c = init
    this.log = components.logger.forComponent('upgossip:app-streams')
  }

  /** Nothing to register: the shim hands in the protocols as versions become spoken. */
  start (): void {}

  /** Stop handling every protocol handled now. */
  async stop (): Promise<void> {
    await Promise.all([...this.handled].map(async protocol => { await this.unhandle(protocol) }))
  }

  /** The protocol ids handled now. */
  get protocols (): string[] {
    return [...this.handled]
  }

  /** Handle `protocol`: each request frame goes to `onRequest`, whose bytes are the answer. */
  async handle (protocol: string, onRequest: (from: string, request: Uint8Array) => Promise<Uint8Array>, timeoutMs = 60_000): Promise<void> {
    if (this.handled.has(protocol)) return
    this.handled.add(protocol)
    this.log('handling %s', protocol)
    await this.components.registrar.handle(protocol, ({ stream, connection }) => {
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
      this.log.trace('%s: %d bytes from %s answered with %d', protocol, request.byteLength, from, response.byteLength)
    } catch (err) {
      this.log.error('%s: request from %s failed - %e', protocol, from, err)
      this.c.log(`app request from ${from} on ${protocol} failed: ${(err as Error).message}`)
      stream.abort(err as Error)
    } finally {
      release()
    }
  }

  /**
   * Handle the byte-stream protocol `protocol`: `accept` answers each incoming stream
   * (within `acceptTimeoutMs`), and then carries its bytes for as long as they flow.
   */
  async handleBytes (protocol: string, accept: ByteStreamAccept, acceptTimeoutMs = 60_000): Promise<void> {
    if (this.handled.has(protocol)) return
    this.handled.add(protocol)
    this.log('handling %s', protocol)
    const accepting: ByteStreamAccept = async from => {
      try {
        return await accept(from)
      } catch (err) {
        this.c.log(`app connection from ${from} on ${protocol} refused: ${(err as Error).message}`)
        throw err
      }
    }
    await this.components.registrar.handle(protocol, ({ stream, connection }) => {
      const from = connection.remotePeer.toString()
      serveByteStream(stream, protocol, from, accepting, acceptTimeoutMs, this.c.metrics).catch((err: Error) => {
        this.log('%s: byte stream from %s ended with %e', protocol, from, err)
        stream.abort(err)
      })
    }, { maxInboundStreams: APP_STREAM_LIMIT, maxOutboundStreams: APP_STREAM_LIMIT })
  }

  /** Open a byte stream to `peer` on `protocol`; resolves once the peer's app accepted it (within `timeoutMs`). */
  async openBytes (peer: PeerId, protocol: string, timeoutMs = 30_000): Promise<ByteStream> {
    return await openByteStream(this.components.connectionManager, peer, protocol, timeoutMs, this.c.metrics)
  }

  /** Stop handling `protocol` (identify then stops advertising it). */
  async unhandle (protocol: string): Promise<void> {
    if (!this.handled.delete(protocol)) return
    this.log('no longer handling %s', protocol)
    await this.components.registrar.unhandle(protocol)
  }

  /** Send one request frame to `peer` on `protocol` and return the answer frame. */
  async request (peer: PeerId, protocol: string, request: Uint8Array, timeoutMs = 30_000): Promise<Uint8Array> {
    const { stream, release } = await dialWithDeadline(this.components.connectionManager, peer, protocol, timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`))
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
      return (await this.components.peerStore.get(peer)).protocols
    } catch {
      return []
    }
  }

  /** Ask the peer again (identify over a connection, dialled if needed), for when what we hold looks stale. */
  async refreshProtocols (peer: PeerId, timeoutMs = 10_000): Promise<string[]> {
    const signal = AbortSignal.timeout(timeoutMs)
    const connection = this.components.connectionManager.getConnections(peer)[0] ?? await this.components.connectionManager.openConnection(peer, { priority: USER_DIAL_PRIORITY, signal })
    const protocols = (await this.components.identify.identify(connection, { signal })).protocols
    this.log('%p speaks %d protocols now', peer, protocols.length)
    return protocols
  }
}

/**
 * App streams as a libp2p service (it needs the node's identify service).
 *
 * @example
 * ```ts
 * const node = await createLibp2p({ services: { identify: identify(), appStreams: appStreams({ metrics, log }) } })
 * await node.services.appStreams.handle('/upgossip/app/kv/2', async (from, request) => answer(from, request))
 * ```
 */
export function appStreams (init: AppStreamsInit): (components: AppStreamsComponents) => AppStreams {
  return (components) => new AppStreams(components, init)
}
