/**
 * App calls multiplexed on one long-lived stream per peer and protocol
 * (`/upgossip/app-mux/<app>/<protocol>`): each request frame carries an exchange id in
 * front, the answer comes back with the same id in whatever order answers are ready, so
 * any number of calls share one stream and none waits for another. What is queued while
 * the stream writes goes out as one chunk (one yamux frame, one noise frame), so a burst
 * of calls or answers costs one write, not one each.
 *
 * Frame: a length prefix (unsigned varint), then the id (4 bytes, big-endian), then the
 * payload (dag-cbor: a request, or an answer envelope; the shim's business).
 *
 * @example
 * ```ts
 * const mux = new CallMux(stream, MAX_APP_FRAME)
 * const answer = await mux.call(request, 30_000, MAX_APP_FRAME)
 * serveCalls(stream, MAX_APP_FRAME, served, async request => answer(request))
 * ```
 */
import type { Stream } from '@libp2p/interface'
import * as lp from 'it-length-prefixed'
import { joinBytes } from '../bytes.js'
import { MessageTooLargeError, StreamEndedError } from './stream-codec.js'

/** Each call asks for its protocol's twin: made once. */
const muxIds = new Map<string, string>()

/** The protocol id of multiplexed calls beside the app protocol `protocol` (`/upgossip/app/<app>/<n>`). */
export function appMuxProtocolId (protocol: string): string {
  let id = muxIds.get(protocol)
  if (id == null) {
    id = protocol.replace(/^\/upgossip\/app\//, '/upgossip/app-mux/')
    if (muxIds.size >= 1024) muxIds.clear()
    muxIds.set(protocol, id)
  }
  return id
}

/**
 * A call's stream ended in order before its answer came (the peer stopped speaking the
 * version): it was not taken and may be sent again. Callers see a `StreamEndedError`.
 */
export class CallNotTakenError extends StreamEndedError {
  static override name = 'StreamEndedError'
}

/** A payload this large is written as it is, not copied into a frame. */
const LARGE = 64 * 1024

/** Frames queued by any number of writers, written as one chunk each time the stream takes one. */
class FrameQueue {
  private queue: Uint8Array[] = []
  private wake: (() => void) | undefined
  private ended = false
  readonly done: Promise<void>

  constructor (stream: Stream, onError: (err: Error) => void) {
    this.done = stream.sink(this.source()).catch(onError)
  }

  private async * source (): AsyncGenerator<Uint8Array> {
    while (true) {
      if (this.queue.length === 0) {
        if (this.ended) return
        await new Promise<void>(resolve => { this.wake = resolve })
        continue
      }
      const queued = this.queue
      this.queue = []
      if (queued.length === 1) {
        yield queued[0] as Uint8Array
        continue
      }
      // small pieces together; a large payload as it is (copying it would cost more than a write)
      let small: Uint8Array[] = []
      let smallBytes = 0
      for (const piece of queued) {
        if (piece.byteLength < LARGE) {
          small.push(piece)
          smallBytes += piece.byteLength
          continue
        }
        if (small.length > 0) yield joinBytes(small, smallBytes)
        small = []
        smallBytes = 0
        yield piece
      }
      if (small.length > 0) yield joinBytes(small, smallBytes)
    }
  }

  private poke (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** Queue one frame: the id, then the payload, length-prefixed. */
  push (id: number, payload: Uint8Array): void {
    if (this.ended) return
    const length = payload.byteLength + 4
    const prefixBytes = varintLength(length)
    const large = payload.byteLength >= LARGE
    // one array for the prefix, the id and (unless large) the payload: nothing else allocated per frame
    const head = new Uint8Array(prefixBytes + 4 + (large ? 0 : payload.byteLength))
    let at = 0
    let n = length
    for (; n >= 0x80; n = Math.floor(n / 128)) head[at++] = (n & 0x7f) | 0x80
    head[at++] = n
    head[at++] = id >>> 24
    head[at++] = (id >>> 16) & 0xff
    head[at++] = (id >>> 8) & 0xff
    head[at++] = id & 0xff
    if (large) this.queue.push(head, payload)
    else {
      head.set(payload, at)
      this.queue.push(head)
    }
    this.poke()
  }

  /** Close the writing side once what is queued went out. */
  end (): void {
    this.ended = true
    this.poke()
  }
}

/** Bytes of `n` as an unsigned varint. */
function varintLength (n: number): number {
  let bytes = 1
  for (; n >= 0x80; n = Math.floor(n / 128)) bytes++
  return bytes
}

/** The id of a frame (its first 4 bytes, big-endian; the frame is at least 4 bytes). */
function idOf (frame: Uint8Array): number {
  return ((frame[0] as number) * 0x1000000) + (((frame[1] as number) << 16) | ((frame[2] as number) << 8) | (frame[3] as number))
}

/** The id and payload of a frame (at least 4 bytes; shorter is malformed). */
function open (frame: Uint8Array): { id: number, payload: Uint8Array } | undefined {
  if (frame.byteLength < 4) return undefined
  return { id: idOf(frame), payload: frame.subarray(4) }
}

interface Waiting {
  resolve: (answer: Uint8Array) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
  maxFrame: number
}

/** The caller's side: calls out, answers matched back by id. */
export class CallMux {
  readonly stream: Stream
  private readonly out: FrameQueue
  private readonly waiting = new Map<number, Waiting>()
  private nextId = 1
  private failure: Error | undefined
  private readonly counted: (direction: 'in' | 'out', bytes: number) => void

  /** `maxFrame` bounds every frame read (each call's own bound is checked on its answer). */
  constructor (stream: Stream, maxFrame: number, counted: (direction: 'in' | 'out', bytes: number) => void = () => {}) {
    this.stream = stream
    this.counted = counted
    this.out = new FrameQueue(stream, err => { this.close(new StreamEndedError(`the stream failed: ${err.message}`)) })
    void this.read(maxFrame)
  }

  /** True once no more calls can go on this stream. */
  get closed (): boolean {
    return this.failure != null || this.stream.status !== 'open'
  }

  /** Calls waiting for their answers. */
  get pending (): number {
    return this.waiting.size
  }

  private async read (maxFrame: number): Promise<void> {
    try {
      for await (const chunk of lp.decode(this.stream.source, { maxDataLength: maxFrame })) {
        const frame = chunk.subarray()
        const id = frame.byteLength < 4 ? undefined : idOf(frame)
        const w = id == null ? undefined : this.waiting.get(id)
        // an answer to nothing asked (or after its deadline) is dropped
        if (id == null || w == null) continue
        this.waiting.delete(id)
        clearTimeout(w.timer)
        const payload = frame.subarray(4)
        this.counted('in', payload.byteLength)
        if (payload.byteLength > w.maxFrame) w.reject(new MessageTooLargeError(`peer sent a message larger than ${w.maxFrame} bytes`))
        else w.resolve(payload)
      }
      // the peer ended its side in order: what it did not answer, it did not take
      this.close(new CallNotTakenError('the stream ended before the answer came'))
    } catch (err) {
      this.close(this.stream.status === 'reset' ? new StreamEndedError(`stream failed: ${(err as Error).message}`) : mapReadError(err, maxFrame))
    }
  }

  /** Fail every waiting call with `err`, and take no more. */
  close (err: Error): void {
    this.failure ??= err
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer)
      w.reject(err)
    }
    this.waiting.clear()
    this.out.end()
  }

  /** Close the stream both ways as a failure. */
  abort (err: Error): void {
    this.close(err)
    this.stream.abort(err)
  }

  /** Send `request`; resolves with the answer's payload (at most `maxFrame` bytes), within `timeoutMs`. */
  async call (request: Uint8Array, timeoutMs: number, maxFrame: number): Promise<Uint8Array> {
    if (this.failure != null) throw this.failure
    if (request.byteLength > maxFrame) throw new MessageTooLargeError(`the request is larger than ${maxFrame} bytes`)
    const id = this.nextId
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // that call only: the stream stays for the others, a late answer is dropped
        this.waiting.delete(id)
        reject(new StreamEndedError(`no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(id, { resolve, reject, timer, maxFrame })
      this.counted('out', request.byteLength)
      this.out.push(id, request)
    })
  }
}

/** A multiplexed stream a peer serves: answering `busy` calls, and to be closed once they are answered (`stop`). */
export interface ServedCalls {
  busy: number
  stop: boolean
  /** Close the writing side now if nothing is busy (once `stop` is set). */
  finish: () => void
}

/**
 * The callee's side: each request frame goes to `onRequest` as it comes (calls run side by
 * side, at most `maxBusy` at once, each within `timeoutMs`), each answer goes back with its id as soon as it is ready. Once `stop` is set,
 * requests are no longer taken (the caller sends them again elsewhere) and the writing side
 * closes after the last busy answer.
 */
export function serveCalls (stream: Stream, maxFrame: number, onRequest: (request: Uint8Array) => Promise<Uint8Array>, counted: (direction: 'in' | 'out', bytes: number) => void = () => {}, maxBusy = 1024, timeoutMs = 60_000): { served: ServedCalls, done: Promise<void> } {
  let failed: Error | undefined
  const out = new FrameQueue(stream, err => { failed = err })
  // at most `maxBusy` calls at once: past that, reading waits (and the caller's writes with it)
  let roomMade: (() => void) | undefined
  const served: ServedCalls = {
    busy: 0,
    stop: false,
    finish: () => {
      if (served.busy < maxBusy) {
        const made = roomMade
        roomMade = undefined
        made?.()
      }
      if (served.stop && served.busy === 0) out.end()
    }
  }
  /** One request: answered with its id, unless it took longer than `timeoutMs` (then given up: no answer, its place freed). */
  const serveOne = async (id: number, request: Uint8Array): Promise<void> => {
    let over = false
    const timer = setTimeout(() => {
      over = true
      served.busy--
      served.finish()
    }, timeoutMs)
    try {
      const answer = await onRequest(request)
      if (over) return
      counted('out', answer.byteLength)
      out.push(id, answer)
    } catch {
      // the request's failure is its own (the shim answers errors as envelopes)
    } finally {
      if (!over) {
        clearTimeout(timer)
        served.busy--
        served.finish()
      }
    }
  }
  const done = (async () => {
    try {
      // the frame holds the id besides the request
      for await (const chunk of lp.decode(stream.source, { maxDataLength: maxFrame + 4 })) {
        if (served.stop) continue
        const frame = open(chunk.subarray())
        if (frame == null) throw new StreamEndedError('a call frame shorter than its id')
        counted('in', frame.payload.byteLength)
        served.busy++
        void serveOne(frame.id, frame.payload)
        if (served.busy >= maxBusy) await new Promise<void>(resolve => { roomMade = resolve })
      }
    } catch (err) {
      stream.abort(mapReadError(err, maxFrame))
      throw err
    }
    // the caller closed its side: answer what is busy, then close ours
    served.stop = true
    served.finish()
    await out.done
    if (failed != null) throw failed
  })()
  return { served, done }
}

function mapReadError (err: unknown, maxBytes: number): Error {
  const name = (err as Error)?.name ?? ''
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError' || name === 'InvalidMessageLengthError') {
    return new MessageTooLargeError(`peer sent a message larger than ${maxBytes} bytes`)
  }
  return new StreamEndedError(`stream failed: ${(err as Error)?.message ?? String(err)}`)
}
