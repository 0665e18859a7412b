/**
 * App traffic on libp2p: request and response frames on `/upgossip/app/<app>/<protocol>`,
 * exchange after exchange on streams kept open between calls ({@link ChannelPool}), each
 * frame within a size limit and each exchange within a deadline; streamed exchanges, whose
 * bodies have no limit of their own, on `/upgossip/app-http/<app>/<protocol>`
 * ({@link exchangeStreamed}); and, for apps whose wire is TCP, byte streams on
 * `/upgossip/app-tcp/<app>/<protocol>` ({@link ByteStream}). What the frames and bytes
 * mean is the shim's business.
 *
 * A libp2p service: `createPeerNode` registers it as `appStreams`, libp2p starts and
 * stops it; the shim decides which protocols it handles.
 */
import { serviceDependencies } from '@libp2p/interface'
import type { ComponentLogger, Libp2pEvents, Logger, PeerId, PeerStore, Startable, TypedEventTarget } from '@libp2p/interface'
import type { Identify } from '@libp2p/identify'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { openByteStream, serveByteStream } from './byte-stream.js'
import type { ByteStream, ByteStreamAccept } from './byte-stream.js'
import { CallMux, CallNotTakenError, appMuxProtocolId, serveCalls } from './call-mux.js'
import type { ServedCalls } from './call-mux.js'
import { ChannelPool } from './channel-pool.js'
import { FramedChannel } from './framed-channel.js'
import type { Served } from './framed-channel.js'
import type { NetMetrics } from './metrics.js'
import { StreamEndedError, dialWithDeadline, streamDeadline } from './stream-codec.js'
import { MAX_STREAMED_FRAME, exchangeStreamed, serveStreamed } from './streamed-exchange.js'
import type { StreamedHandler, StreamedMessage } from './streamed-exchange.js'

/** Largest app request or response frame. */
export const MAX_APP_FRAME = 1024 * 1024 + 1024
/** The largest frame read on a multiplexed call stream: an HTTP app's translated message (16 MiB) and room for its head. */
const MAX_MUX_FRAME = 16 * 1024 * 1024 + 64 * 1024 + 4
/** More than the requests kept in flight (holding keeps at most 1000). */
const APP_STREAM_LIMIT = 1024
/** Multiplexed call streams per connection and protocol: a caller keeps one (two while it replaces a closed one). */
const MUX_STREAM_LIMIT = 8
/** Calls served at once per multiplexed stream: in all, as many as one-exchange streams allow. */
const MUX_BUSY_LIMIT = APP_STREAM_LIMIT / MUX_STREAM_LIMIT
/** Libp2p's use priority for a dial: ahead of its own background dials, as its `dial` does. */
const USER_DIAL_PRIORITY = 75

/** What the app streams take from libp2p (`identify` is the node's identify service). */
export interface AppStreamsComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  peerStore: PeerStore
  identify: Identify
  logger: ComponentLogger
  /** The node's events: a peer's record changing (identify) drops what was cached of it. */
  events: TypedEventTarget<Libp2pEvents>
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
  private readonly pool: ChannelPool
  /** Channels served now, closed when their protocol is no longer handled. */
  private readonly serving = new Map<string, Set<Served>>()
  /** Multiplexed call streams served now, by app protocol, closed when it is no longer handled. */
  private readonly servingCalls = new Map<string, Set<ServedCalls>>()
  /** The multiplexed call stream to each peer, by peer and app protocol (opening or open). */
  private readonly muxes = new Map<string, Promise<CallMux>>()
  /** The same streams once open, for calls that need not wait for the opening. */
  private readonly openMuxes = new Map<string, CallMux>()
  /** The protocols of peers, as the peer store holds them: read on every call, decoded once. */
  private readonly protocolCache = new Map<string, string[]>()
  private readonly onPeerUpdate = (event: CustomEvent<{ peer: { id: PeerId } }>): void => { this.protocolCache.delete(event.detail.peer.id.toString()) }

  constructor (components: AppStreamsComponents, init: AppStreamsInit) {
    this.components = components
    this.c = init
    this.log = components.logger.forComponent('upgossip:app-streams')
    this.pool = new ChannelPool(components.connectionManager, { counted: (protocol, direction, bytes) => { init.metrics.bytes(protocol, direction, bytes) } })
  }

  /** Nothing to register (the shim hands in the protocols as versions become spoken); listen for peers' records changing. */
  start (): void {
    this.components.events.addEventListener('peer:update', this.onPeerUpdate)
  }

  /** Stop handling every protocol handled now. */
  async stop (): Promise<void> {
    this.components.events.removeEventListener('peer:update', this.onPeerUpdate)
    this.protocolCache.clear()
    this.pool.close()
    for (const mux of this.muxes.values()) void mux.then(m => { m.close(new StreamEndedError('the node is stopping')) }, () => {})
    this.muxes.clear()
    this.openMuxes.clear()
    await Promise.all([...this.handled].map(async protocol => { await this.unhandle(protocol) }))
  }

  /** The protocol ids handled now. */
  get protocols (): string[] {
    return [...this.handled]
  }

  /**
   * Handle `protocol`: each request frame goes to `onRequest`, whose bytes are the answer.
   * A stream carries one exchange after another, until the caller closes it. Beside it,
   * the multiplexed calls of `protocol` ({@link appMuxProtocolId}): many exchanges at once
   * on one stream, answered as they are ready.
   */
  async handle (protocol: string, onRequest: (from: string, request: Uint8Array) => Promise<Uint8Array>, timeoutMs = 60_000, maxFrame = MAX_APP_FRAME): Promise<void> {
    if (this.handled.has(protocol)) return
    this.handled.add(protocol)
    this.log('handling %s', protocol)
    await this.components.registrar.handle(protocol, ({ stream, connection }) => {
      void this.serve(protocol, new FramedChannel(stream, maxFrame, this.counter(protocol)), connection.remotePeer.toString(), onRequest, timeoutMs)
    }, { maxInboundStreams: APP_STREAM_LIMIT, maxOutboundStreams: APP_STREAM_LIMIT })
    await this.components.registrar.handle(appMuxProtocolId(protocol), ({ stream, connection }) => {
      const from = connection.remotePeer.toString()
      const { served, done } = serveCalls(stream, maxFrame, request => onRequest(from, request), this.counter(protocol), MUX_BUSY_LIMIT, timeoutMs)
      const set = this.servingCalls.get(protocol) ?? new Set()
      set.add(served)
      this.servingCalls.set(protocol, set)
      done.catch((err: Error) => {
        this.log.error('%s: calls from %s failed - %e', protocol, from, err)
        this.c.log(`app calls from ${from} on ${protocol} failed: ${err.message}`)
      }).finally(() => { set.delete(served) })
    }, { maxInboundStreams: MUX_STREAM_LIMIT, maxOutboundStreams: MUX_STREAM_LIMIT })
  }

  private async serve (protocol: string, channel: FramedChannel, from: string, onRequest: (from: string, request: Uint8Array) => Promise<Uint8Array>, timeoutMs: number): Promise<void> {
    const served: Served = { channel, busy: false, stop: false }
    const untrack = this.track(protocol, served)
    try {
      while (true) {
        const request = await channel.read()
        // a request that crossed the end of this channel is not taken: the caller sends it again
        if (request == null || served.stop) break
        served.busy = true
        const release = streamDeadline(channel.stream, timeoutMs, () => new Error('app request took too long'))
        try {
          const response = await onRequest(from, request)
          await channel.write([response])
          this.log.trace('%s: %d bytes from %s answered with %d', protocol, request.byteLength, from, response.byteLength)
        } finally {
          release()
          served.busy = false
        }
        if (served.stop) break
      }
      await channel.end()
    } catch (err) {
      this.log.error('%s: request from %s failed - %e', protocol, from, err)
      this.c.log(`app request from ${from} on ${protocol} failed: ${(err as Error).message}`)
      channel.abort(err as Error)
    } finally {
      untrack()
    }
  }

  /** What counts a channel's bytes (the frames' payloads, both ways). */
  private counter (protocol: string): (direction: 'in' | 'out', bytes: number) => void {
    return (direction, bytes) => { this.c.metrics.bytes(protocol, direction, bytes) }
  }

  /** Keep a served channel with its protocol's, so that {@link unhandle} closes it. */
  private track (protocol: string, served: Served): () => void {
    const set = this.serving.get(protocol) ?? new Set()
    set.add(served)
    this.serving.set(protocol, set)
    return () => {
      set.delete(served)
      if (set.size === 0 && this.serving.get(protocol) === set) this.serving.delete(protocol)
    }
  }

  /**
   * Handle the streamed protocol `protocol`: each exchange's head and body go to
   * `handler`, whose answer is streamed back; a stream carries one exchange after another.
   */
  async handleStreamed (protocol: string, handler: StreamedHandler, quietMs = 60_000): Promise<void> {
    if (this.handled.has(protocol)) return
    this.handled.add(protocol)
    this.log('handling %s', protocol)
    await this.components.registrar.handle(protocol, ({ stream, connection }) => {
      const from = connection.remotePeer.toString()
      const served: Served = { channel: new FramedChannel(stream, MAX_STREAMED_FRAME, this.counter(protocol)), busy: false, stop: false }
      const { channel } = served
      const untrack = this.track(protocol, served)
      serveStreamed(served, from, handler, quietMs).catch((err: Error) => {
        this.log('%s: streamed exchange with %s failed - %e', protocol, from, err)
        channel.abort(err)
      }).finally(untrack)
    }, { maxInboundStreams: APP_STREAM_LIMIT, maxOutboundStreams: APP_STREAM_LIMIT })
  }

  /** One streamed exchange with `peer` on `protocol`: resolves with the answer's head once it came (within `timeoutMs`), its body to be read. */
  async exchange (peer: PeerId, protocol: string, request: StreamedMessage, timeoutMs = 30_000): Promise<{ head: Uint8Array, body: AsyncIterable<Uint8Array> }> {
    return await exchangeStreamed(this.pool, peer, protocol, request, timeoutMs)
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
    if (protocol.startsWith('/upgossip/app/')) await this.components.registrar.unhandle(appMuxProtocolId(protocol))
    // calls that crossed the end are not taken: their callers send them again
    for (const served of this.servingCalls.get(protocol) ?? []) {
      served.stop = true
      served.finish()
    }
    this.servingCalls.delete(protocol)
    // callers keep channels open: those still open would go on reaching a version not spoken
    // any more. An idle one is closed now, a busy one once it answered.
    for (const served of this.serving.get(protocol) ?? []) {
      served.stop = true
      if (!served.busy) void served.channel.end().catch(() => {})
    }
    this.serving.delete(protocol)
  }

  /**
   * Send one request frame to `peer` on `protocol` and return the answer frame, on a
   * channel kept from an earlier call when there is one. A kept channel the peer closed
   * before answering (its daemon closes them when it stops speaking that version) is
   * given up and the request sent once more on a new stream: it was not read.
   */
  async request (peer: PeerId, protocol: string, request: Uint8Array, timeoutMs = 30_000, maxFrame = MAX_APP_FRAME): Promise<Uint8Array> {
    const mux = appMuxProtocolId(protocol)
    if (mux !== protocol && (this.knownProtocolsOf(peer) ?? await this.protocolsOf(peer)).includes(mux)) return await this.callMuxed(peer, protocol, mux, request, timeoutMs, maxFrame)
    const deadline = Date.now() + timeoutMs
    for (let attempt = 0; ; attempt++) {
      const { channel, reused } = await this.pool.take(peer, protocol, Math.max(1, deadline - Date.now()), maxFrame)
      const release = streamDeadline(channel.stream, Math.max(1, deadline - Date.now()), () => new Error(`no answer within ${timeoutMs} ms`))
      let response: Uint8Array | undefined
      try {
        await channel.write([request])
        response = await channel.read()
      } catch (err) {
        channel.abort(err as Error)
        if (reused && attempt === 0 && err instanceof StreamEndedError && channel.stream.status !== 'reset') continue
        throw err
      } finally {
        release()
      }
      if (response == null) {
        void channel.end().catch(() => {})
        if (reused && attempt === 0) continue
        throw new StreamEndedError('stream ended before a message arrived')
      }
      this.pool.give(peer, protocol, channel)
      return response
    }
  }

  /**
   * One call on the multiplexed stream to `peer` (opened by the first call, kept while it
   * lives). A call the peer did not take (it closed the stream in order: it stopped
   * speaking the version) is sent once more, on a new stream.
   */
  private async callMuxed (peer: PeerId, protocol: string, mux: string, request: Uint8Array, timeoutMs: number, maxFrame: number): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs
    const k = `${peer.toString()} ${mux}`
    // the stream open now: the call goes straight on it
    const open = this.openMuxes.get(k)
    if (open != null && !open.closed) {
      try {
        return await open.call(request, timeoutMs, maxFrame)
      } catch (err) {
        if (!(err instanceof CallNotTakenError)) throw err
      }
      if (this.openMuxes.get(k) === open) this.openMuxes.delete(k)
    }
    for (let attempt = 0; ; attempt++) {
      let opening = this.muxes.get(k)
      const reused = opening != null
      if (opening == null) {
        opening = this.openMux(peer, protocol, mux, timeoutMs)
        this.muxes.set(k, opening)
        opening.catch(() => { if (this.muxes.get(k) === opening) this.muxes.delete(k) })
      }
      const calls = await opening
      if (!calls.closed && this.muxes.get(k) === opening) this.openMuxes.set(k, calls)
      if (calls.closed) {
        if (this.muxes.get(k) === opening) this.muxes.delete(k)
        if (attempt === 0) continue
      }
      try {
        return await calls.call(request, Math.max(1, deadline - Date.now()), maxFrame)
      } catch (err) {
        if (this.muxes.get(k) === opening && calls.closed) this.muxes.delete(k)
        if (reused && attempt === 0 && err instanceof CallNotTakenError) continue
        throw err
      }
    }
  }

  private async openMux (peer: PeerId, protocol: string, mux: string, timeoutMs: number): Promise<CallMux> {
    const { stream, release } = await dialWithDeadline(this.components.connectionManager, peer, mux, timeoutMs, () => new Error(`no stream within ${timeoutMs} ms`))
    release()
    // every frame read is bounded by the largest any call may take; each call checks its own
    return new CallMux(stream, MAX_MUX_FRAME, this.counter(protocol))
  }

  /** The protocols a peer advertised, if they are cached now (see {@link protocolsOf}). */
  knownProtocolsOf (peer: PeerId): string[] | undefined {
    return this.protocolCache.get(peer.toString())
  }

  /** The protocols a peer advertised (identify, kept by the peer store; cached until its record changes). */
  async protocolsOf (peer: PeerId): Promise<string[]> {
    const key = peer.toString()
    const cached = this.protocolCache.get(key)
    if (cached != null) return cached
    let protocols: string[]
    try {
      protocols = (await this.components.peerStore.get(peer)).protocols
    } catch {
      return []
    }
    if (this.protocolCache.size >= 4096) this.protocolCache.clear()
    this.protocolCache.set(key, protocols)
    return protocols
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
