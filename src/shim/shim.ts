/**
 * The version shim: one permanent handler per app protocol id this peer speaks
 * (natively or through simulation objects), dispatching to whatever version runs now;
 * and, for outgoing calls, the route — this peer itself (never through libp2p), or the
 * protocol version to speak to another peer. Requests and responses are dag-cbor; an
 * app whose wire is TCP is also offered byte streams, one protocol id per version.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { decodeDagCbor } from '../dag-cbor.js'
import { RemoteNamedError, UpgossipError } from '../errors.js'
import type { Route } from '../ipc/index.js'
import { MAX_APP_FRAME, appBytesProtocolId, appHttpProtocolId, peerIdFromString as parsePeerId } from '../net/index.js'
import type { AppStreams, ByteStream, ByteStreamAccept, StreamedMessage } from '../net/index.js'
import { KnownRoutes } from './known-routes.js'
import { appProtocolId, chooseVersion, spokenVersions } from './versions.js'

/** A request or response that dag-cbor cannot carry (undefined, a function, a Map…). */
export class UnencodableValueError extends UpgossipError {
  static override name = 'UnencodableValueError'
}

/** A frame that is not dag-cbor or not a response envelope. */
export class MalformedAppMessageError extends UpgossipError {
  static override name = 'MalformedAppMessageError'
}

/** The remote app, its SOs or its daemon answered with an error (named after the remote error). */
export class RemoteAppError extends RemoteNamedError {
  static override name = 'RemoteAppError'
}

/** A call for an app that the peer called does not run (it runs another class of node). */
export class WrongAppError extends UpgossipError {
  static override name = 'WrongAppError'
}

/** A call to another class whose protocol the running release does not name in its manifest's `calls`. */
export class UndeclaredCallError extends UpgossipError {
  static override name = 'UndeclaredCallError'
}

/** The peer called does not speak (natively or through its SOs) the protocol this version calls its class in. */
export class UnsupportedCallError extends UpgossipError {
  static override name = 'UnsupportedCallError'
}

/** No app runs on this peer, so nothing can be called or served. */
export class NoAppRunningError extends UpgossipError {
  static override name = 'NoAppRunningError'
}

/** What the shim needs. */
export interface ShimComponents {
  streams: AppStreams
  selfId: () => string
  app: () => string | null
  /** The running version's own protocol version. */
  native: () => number | undefined
  /** Every version the running app speaks now (native and through its SOs). */
  spoken: () => number[]
  /** Another peer's native version, from its status beats. */
  nativeOf: (peer: string) => number | undefined
  /** The app another peer runs, from its status beats (undefined: not in view). */
  appOf?: (peer: string) => string | null | undefined
  /** The protocol version of `app` (another class) the running release calls, from its manifest's `calls`. */
  callsOf?: (app: string) => number | undefined
  /** Hand a request of `version` to the app (held during a switch). */
  deliver: (from: string, request: unknown, version: number, bytes: number) => Promise<unknown>
  log: (message: string) => void
  /** How long a call to another peer may take (for a byte stream: until the peer's app accepted it). */
  callTimeoutMs?: number
  /** True while the running app's wire is TCP: its versions are offered as byte streams too. */
  tcpApp?: () => boolean
  /** A byte stream from a peer in protocol `version`: resolves once the app accepted it. */
  acceptBytes?: (from: string, version: number) => ReturnType<ByteStreamAccept>
  /** True while the running app's wire is HTTP: its native version is offered as streamed exchanges too. */
  httpApp?: () => boolean
  /** A streamed exchange from a peer in protocol `version`: the head (decoded) and the body as it comes; answers the same way. */
  exchange?: (from: string, version: number, head: unknown, body: AsyncIterable<Uint8Array>) => Promise<{ head: unknown, body: Uint8Array | AsyncIterable<Uint8Array> }>
  /** A call to another peer ended: how, how long it took, and through how many simulation objects it went (both sides). */
  observeCall?: (outcome: CallOutcome, seconds: number, hops: number) => void
}

/**
 * How a call to another peer ended: `ok`; `remote-error`, the peer's app answered with an
 * error; `unreachable`, the peer did not answer; `refused`, it never left (no app runs,
 * nothing speaks the protocol, the value cannot be sent).
 */
export type CallOutcome = 'ok' | 'remote-error' | 'unreachable' | 'refused'

/** The outcome of a call that threw `err`. */
function callOutcome (err: unknown): CallOutcome {
  if (!(err instanceof RemoteAppError)) return 'refused'
  return err.name === 'PeerUnreachableError' ? 'unreachable' : 'remote-error'
}

/** Largest request or response frame of an HTTP process app: a translated message's 16 MiB body, and room for its head. */
const MAX_HTTP_FRAME = 16 * 1024 * 1024 + 64 * 1024

/** Encode a value for the wire; throws {@link UnencodableValueError}. */
export function encodeAppValue (value: unknown): Uint8Array {
  try {
    return dagCbor.encode(value)
  } catch (err) {
    throw new UnencodableValueError(`the value cannot be sent as dag-cbor: ${(err as Error).message}`)
  }
}

/** The answer envelope of a request that failed: an error for that request only. */
function errorEnvelope (err: unknown): { ok: false, error: { name: string, message: string } } {
  return { ok: false, error: { name: (err as Error).name ?? 'Error', message: String((err as Error).message ?? err) } }
}

/** What `peer`'s answer envelope holds: the value, or the remote error it names; throws {@link MalformedAppMessageError} when it is neither. */
function openEnvelope (bytes: Uint8Array, peer: string): { value: unknown } | { error: RemoteAppError } {
  let envelope: { ok?: unknown, value?: unknown, error?: { name?: unknown, message?: unknown } }
  try {
    envelope = decodeDagCbor(bytes)
  } catch {
    throw new MalformedAppMessageError(`${peer} answered with bytes that are not dag-cbor`)
  }
  if (envelope?.ok === true) return { value: envelope.value }
  if (envelope?.ok === false) return { error: new RemoteAppError(typeof envelope.error?.name === 'string' ? envelope.error.name : '', typeof envelope.error?.message === 'string' ? envelope.error.message : 'the remote app failed') }
  throw new MalformedAppMessageError(`${peer} answered with something that is not a response`)
}

/** Peer ids parsed once: every call names its peer as a string, and parsing one decodes a multihash. */
const parsedPeers = new Map<string, ReturnType<typeof parsePeerId>>()
function peerIdFromString (peer: string): ReturnType<typeof parsePeerId> {
  let id = parsedPeers.get(peer)
  if (id == null) {
    id = parsePeerId(peer)
    if (parsedPeers.size >= 4096) parsedPeers.clear()
    parsedPeers.set(peer, id)
  }
  return id
}

/** Routes and carries app traffic. */
export class Shim {
  private readonly c: ShimComponents
  private readonly handled = new Set<string>()
  private readonly lastRoutes = new KnownRoutes()

  constructor (components: ShimComponents) {
    this.c = components
  }

  /** Handle every protocol id the app speaks now; stop handling the rest (identify then advertises the truth). */
  async update (): Promise<void> {
    const app = this.c.app()
    const wanted = new Set(app == null ? [] : this.c.spoken().map(v => appProtocolId(app, v)))
    const acceptBytes = this.c.acceptBytes
    const bytes = new Set(app == null || acceptBytes == null || this.c.tcpApp?.() !== true ? [] : this.c.spoken().map(v => appBytesProtocolId(app, v)))
    // same-version HTTP streams: the native version only (a translated message is carried whole)
    const http = this.c.httpApp?.() === true
    const native = this.c.native()
    const streamed = new Set(app == null || !http || native == null || this.c.exchange == null ? [] : [appHttpProtocolId(app, native)])
    for (const protocol of [...wanted, ...bytes, ...streamed]) {
      if (this.handled.has(protocol)) continue
      this.handled.add(protocol)
      const version = Number(protocol.slice(protocol.lastIndexOf('/') + 1))
      if (bytes.has(protocol) && acceptBytes != null) await this.c.streams.handleBytes(protocol, async from => await acceptBytes(from, version))
      else if (streamed.has(protocol)) await this.c.streams.handleStreamed(protocol, async (from, head, body) => await this.serveStreamed(from, head, body, version))
      else await this.c.streams.handle(protocol, async (from, bytes) => await this.serve(from, bytes, version), undefined, http ? MAX_HTTP_FRAME : MAX_APP_FRAME)
    }
    for (const protocol of [...bytes, ...streamed]) wanted.add(protocol)
    for (const protocol of [...this.handled]) {
      if (wanted.has(protocol)) continue
      this.handled.delete(protocol)
      await this.c.streams.unhandle(protocol)
    }
  }

  /** Answer one incoming request frame: always an envelope, an error for this request only. */
  private async serve (from: string, bytes: Uint8Array, version: number): Promise<Uint8Array> {
    let answer: { ok: true, value: unknown } | { ok: false, error: { name: string, message: string } }
    try {
      let request: unknown
      try {
        request = decodeDagCbor(bytes)
      } catch (err) {
        throw new MalformedAppMessageError(`the request is not dag-cbor: ${(err as Error).message}`)
      }
      // during a switch nothing runs: the host holds the request for the next version, whose
      // SDK translates it (or answers UnsupportedVersionError if it cannot)
      answer = { ok: true, value: await this.c.deliver(from, request, version, bytes.byteLength) }
    } catch (err) {
      answer = errorEnvelope(err)
    }
    try {
      return dagCbor.encode(answer)
    } catch (err) {
      return dagCbor.encode({ ok: false, error: { name: 'UnencodableValueError', message: `the response cannot be sent as dag-cbor: ${(err as Error).message}` } })
    }
  }

  /** Answer one streamed exchange: an envelope head (an error for this exchange only), then the body. */
  private async serveStreamed (from: string, headBytes: Uint8Array, body: AsyncIterable<Uint8Array>, version: number): Promise<StreamedMessage> {
    const exchange = this.c.exchange
    try {
      let head: unknown
      try {
        head = decodeDagCbor(headBytes)
      } catch (err) {
        throw new MalformedAppMessageError(`the head is not dag-cbor: ${(err as Error).message}`)
      }
      if (exchange == null) throw new NoAppRunningError('no app takes streamed exchanges on this peer')
      const answer = await exchange(from, version, head, body)
      return { head: encodeAppValue({ ok: true, value: answer.head }), body: answer.body }
    } catch (err) {
      return { head: dagCbor.encode(errorEnvelope(err)), body: new Uint8Array(0) }
    }
  }

  /** True when `peer` takes streamed exchanges in `version` (its app's wire is HTTP and `version` is its native one). */
  async streams (peer: string, version: number): Promise<boolean> {
    const app = this.c.app()
    if (app == null) return false
    try {
      return (await this.c.streams.protocolsOf(peerIdFromString(peer))).includes(appHttpProtocolId(app, version))
    } catch {
      return false
    }
  }

  /**
   * A streamed exchange with `peer` in protocol `version`: resolves with the answer's head
   * (its value) once it came, the body to be read. A peer that stopped taking them in that
   * version throws `UnsupportedProtocolError` before anything of the body was read.
   */
  async exchange (peer: string, version: number, head: unknown, body: Uint8Array | AsyncIterable<Uint8Array>): Promise<{ head: unknown, body: AsyncIterable<Uint8Array> }> {
    return await this.observed(peer, version, undefined, async () => await this.exchangeOnce(peer, version, head, body))
  }

  private async exchangeOnce (peer: string, version: number, head: unknown, body: Uint8Array | AsyncIterable<Uint8Array>): Promise<{ head: unknown, body: AsyncIterable<Uint8Array> }> {
    const app = this.c.app()
    if (app == null) throw new NoAppRunningError('no app runs on this peer')
    let answer
    try {
      answer = await this.c.streams.exchange(peerIdFromString(peer), appHttpProtocolId(app, version), { head: encodeAppValue(head), body }, this.c.callTimeoutMs)
    } catch (err) {
      if (err instanceof UpgossipError || (err as Error).name === 'UnsupportedProtocolError') throw err
      throw new RemoteAppError('PeerUnreachableError', `${peer} did not answer on protocol version ${version}: ${(err as Error).message}`)
    }
    const opened = openEnvelope(answer.head, peer)
    if ('value' in opened) return { head: opened.value, body: answer.body }
    // the body of an error is empty: read to its end, the channel is kept for the next call
    for await (const chunk of answer.body) void chunk
    throw opened.error
  }

  /**
   * Where a call to `peer` goes: this peer, or the version to speak to another one. With
   * `app` (another class of node), the version is the one the running release names in
   * `calls`, spoken by the callee natively or through its simulation objects.
   */
  async route (peer: string | null, to?: string): Promise<Route> {
    const app = this.c.app()
    if (to != null && to !== app) return await this.routeTo(peer, to)
    if (peer == null || peer === this.c.selfId()) return { self: true }
    const native = this.c.native()
    if (app == null || native == null) throw new NoAppRunningError('no app runs on this peer')
    const spoken = this.c.spoken()
    const known = this.knownRoute(peer, app, native, spoken)
    if (known != null) return known
    const mine = { native, spoken }
    const theirs = await this.versionsOf(peer, app, versions => versions.some(v => mine.spoken.includes(v)))
    return { self: false, version: chooseVersion(mine, { native: this.c.nativeOf(peer), spoken: theirs }) }
  }

  /** The route to `peer` from what is held in memory, without a wait (see {@link KnownRoutes}); undefined when {@link route} must ask. */
  private knownRoute (peer: string, app: string, native: number, spoken: number[]): Route | undefined {
    let id
    try {
      id = peerIdFromString(peer)
    } catch {
      return undefined
    }
    const list = this.c.streams.knownProtocolsOf(id)
    return list == null ? undefined : this.lastRoutes.route(peer, app, { native, spoken }, list, this.c.nativeOf(peer))
  }

  /**
   * The versions of `app` that `peer` speaks, from what identify told us; asked again once
   * when they are not `enough` (what identify said may predate the peer's app starting).
   */
  private async versionsOf (peer: string, app: string, enough: (versions: number[]) => boolean): Promise<number[]> {
    let id
    try {
      id = peerIdFromString(peer)
    } catch {
      throw new RemoteAppError('InvalidPeerIdError', `"${peer.slice(0, 80)}" is not a peer id`)
    }
    // what identify told us is held in memory after the first call: no wait for it then
    const theirs = spokenVersions(app, this.c.streams.knownProtocolsOf(id) ?? await this.c.streams.protocolsOf(id))
    if (enough(theirs)) return theirs
    try {
      return spokenVersions(app, await this.c.streams.refreshProtocols(id))
    } catch (err) {
      const unseen = this.c.appOf != null && this.c.appOf(peer) === undefined ? ' (no beat of that peer was heard: is the id right?)' : ''
      throw new RemoteAppError('PeerUnreachableError', `${peer} cannot be reached${unseen}: ${(err as Error).message}`)
    }
  }

  /** A call to a peer of another class, `app`: in the protocol this version calls it in, translated (if at all) by the callee. */
  private async routeTo (peer: string | null, app: string): Promise<Route> {
    if (peer == null || peer === this.c.selfId()) throw new WrongAppError(`this peer runs ${this.c.app() ?? 'no app'}, not ${app}`)
    const runs = this.c.appOf?.(peer)
    if (runs != null && runs !== app) throw new WrongAppError(`${peer} runs ${runs}, not ${app}`)
    const version = this.c.callsOf?.(app)
    if (version == null) throw new UndeclaredCallError(`the running release names no protocol for calls to ${app}: add "calls": { "${app}": <protocol> } to its manifest`)
    const theirs = await this.versionsOf(peer, app, versions => versions.includes(version))
    if (!theirs.includes(version)) {
      if (theirs.length === 0) throw new WrongAppError(`${peer} does not serve ${app}${runs == null ? '' : ` (it runs ${runs})`}`)
      throw new UnsupportedCallError(`${peer} speaks ${app} protocol ${theirs.join(', ')}; this version calls ${app} in protocol ${version}, and nothing on that peer translates it`)
    }
    return { self: false, version, app }
  }

  /** Open a byte stream to `peer`'s app (of `to`, another class, when given) in protocol `version` (wire "tcp"); resolves once that app accepted it. */
  async openBytes (peer: string, version: number, to?: string): Promise<ByteStream> {
    return await this.observed(peer, version, to, async () => {
      const app = to ?? this.c.app()
      if (app == null) throw new NoAppRunningError('no app runs on this peer')
      try {
        return await this.c.streams.openBytes(peerIdFromString(peer), appBytesProtocolId(app, version), this.c.callTimeoutMs)
      } catch (err) {
        if (err instanceof UpgossipError) throw err
        throw new RemoteAppError('PeerUnreachableError', `${peer} did not accept a connection on protocol version ${version}: ${(err as Error).message}`)
      }
    })
  }

  /** Send a request of protocol `version` to `peer` (of `app`, another class, when given); resolves with its response value. */
  async send (peer: string, version: number, request: unknown, to?: string): Promise<unknown> {
    // what observed() does, without a closure per call: this is every app call's path
    const observe = this.c.observeCall
    if (observe == null) return await this.sendOnce(peer, version, request, to)
    const started = performance.now()
    const hops = this.hops(peer, version, to)
    try {
      const answer = await this.sendOnce(peer, version, request, to)
      observe('ok', (performance.now() - started) / 1000, hops)
      return answer
    } catch (err) {
      observe(callOutcome(err), (performance.now() - started) / 1000, hops)
      throw err
    }
  }

  private async sendOnce (peer: string, version: number, request: unknown, to?: string): Promise<unknown> {
    const app = to ?? this.c.app()
    if (app == null) throw new NoAppRunningError('no app runs on this peer')
    let bytes: Uint8Array
    try {
      // an answer from another class may be an HTTP app's (up to 16 MiB), whatever this app is
      const maxFrame = to != null || this.c.httpApp?.() === true ? MAX_HTTP_FRAME : MAX_APP_FRAME
      bytes = await this.c.streams.request(peerIdFromString(peer), appProtocolId(app, version), encodeAppValue(request), this.c.callTimeoutMs, maxFrame)
    } catch (err) {
      if (err instanceof UpgossipError) throw err
      throw new RemoteAppError('PeerUnreachableError', `${peer} did not answer on protocol version ${version}: ${(err as Error).message}`)
    }
    const opened = openEnvelope(bytes, peer)
    if ('value' in opened) return opened.value
    throw opened.error
  }

  /**
   * Run a call to `peer` in protocol `version` and report it: its outcome, its time and its
   * SO hops, the versions between this app's native one and `version` (none for a call to
   * another class, made in the protocol `calls` names) plus those between `version` and the
   * callee's native one (from its beats; none when unknown).
   */
  private async observed<T> (peer: string, version: number, to: string | undefined, call: () => Promise<T>): Promise<T> {
    const observe = this.c.observeCall
    if (observe == null) return await call()
    const started = performance.now()
    const hops = this.hops(peer, version, to)
    try {
      const answer = await call()
      observe('ok', (performance.now() - started) / 1000, hops)
      return answer
    } catch (err) {
      observe(callOutcome(err), (performance.now() - started) / 1000, hops)
      throw err
    }
  }

  /** The SO hops of a call to `peer` in `version`: this app's side (none for another class) and the callee's (none when its native version is unknown). */
  private hops (peer: string, version: number, to: string | undefined): number {
    const mine = to == null || to === this.c.app() ? this.c.native() : undefined
    const theirs = this.c.nativeOf(peer)
    return (mine == null ? 0 : Math.abs(mine - version)) + (theirs == null ? 0 : Math.abs(version - theirs))
  }
}
