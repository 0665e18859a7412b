/**
 * Byte streams for `upgossip check` of a `wire: "tcp"` app: its samples (the bytes a
 * client sends on one connection), one connection's exchange with a program, the
 * comparison of two streams as people read them, and the round trip of a sample through a
 * stream SO run as a daemon runs it (in its worker).
 *
 * @example
 * ```ts
 * const sample = toStreamSample({ lines: [{ op: 'list' }] })   // the bytes {"op":"list"}\n
 * diffStreams(expected, actual)                                 // ['line 1 .text: "a" → "b"']
 * ```
 */
import { UpgossipError } from '../../errors.js'
import type { Pipe, SimulationSpec } from '../../host/index.js'
import { StreamSimulations } from '../../host/index.js'
import type { ByteStream } from '../../net/index.js'
import { diffValues } from '../../shim/index.js'
import type { ByteSource, SampleResult } from '../../shim/index.js'

/** A sample line that is not a TCP sample. */
export class StreamSampleError extends UpgossipError {
  static override name = 'StreamSampleError'
}

/** A TCP sample: what one client sends on one connection, and what the previous version's program sent back. */
export interface StreamSample {
  request: Uint8Array
  response: Uint8Array
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * One line of a TCP app's samples file as the bytes it sends: exactly one of `send` (text,
 * sent as UTF-8), `sendBase64` (any bytes) or `lines` (each item one line: a string as it
 * is, anything else as its JSON; every line ends with a newline — NDJSON).
 */
export function toStreamSample (value: unknown): Uint8Array {
  const v = value as Record<string, unknown> | null
  if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new StreamSampleError('a TCP sample is an object: {"send": "text"}, {"sendBase64": "…"} or {"lines": [ … ]}')
  const given = ['send', 'sendBase64', 'lines'].filter(k => k in v)
  const unknown = Object.keys(v).filter(k => !given.includes(k))
  if (given.length !== 1 || unknown.length > 0) throw new StreamSampleError(`a TCP sample has exactly one of "send", "sendBase64" or "lines"${unknown.length > 0 ? ` (not ${unknown.map(k => JSON.stringify(k)).join(', ')})` : ''}`)
  if (typeof v.send === 'string') return encoder.encode(v.send)
  if (typeof v.sendBase64 === 'string') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v.sendBase64)) throw new StreamSampleError('"sendBase64" is not base64')
    return new Uint8Array(Buffer.from(v.sendBase64, 'base64'))
  }
  if (Array.isArray(v.lines)) return encoder.encode(v.lines.map(l => `${typeof l === 'string' ? l : JSON.stringify(l)}\n`).join(''))
  throw new StreamSampleError(`"${given[0] ?? ''}" must be ${given[0] === 'lines' ? 'an array' : 'a string'}`)
}

/** The problems listed for one stream, at most. */
const MAX_PROBLEMS = 10

/** A line as a value to compare: its JSON value when it is JSON, else the text. */
function lineValue (line: string): { json: true, value: unknown } | { json: false, value: string } {
  try {
    return { json: true, value: JSON.parse(line) }
  } catch {
    return { json: false, value: line }
  }
}

/** The lines of a text; the end of the last one is the end of the text, with a newline or without. */
function linesOf (text: string): string[] {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines
}

const shown = (text: string | undefined): string => text == null ? 'missing' : JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text)

/**
 * Where two byte streams differ, as people read them: UTF-8 streams line by line, a line
 * that is JSON on both sides as a value (spacing and key order aside, so the same answer
 * from Python's `json.dumps` and JavaScript's `JSON.stringify` is the same), other lines
 * as text; a stream that is not UTF-8, byte by byte.
 */
export function diffStreams (expected: Uint8Array, actual: Uint8Array): string[] {
  let a: string, b: string
  try {
    a = decoder.decode(expected)
    b = decoder.decode(actual)
  } catch {
    const at = expected.findIndex((byte, i) => actual[i] !== byte)
    if (at === -1 && expected.byteLength === actual.byteLength) return []
    return [`${expected.byteLength} bytes → ${actual.byteLength} bytes, the first difference at byte ${at === -1 ? expected.byteLength : at}`]
  }
  const linesA = linesOf(a)
  const linesB = linesOf(b)
  const problems: string[] = []
  for (let i = 0; i < Math.max(linesA.length, linesB.length); i++) {
    const x = linesA[i]
    const y = linesB[i]
    const at = `line ${i + 1}`
    if (x == null || y == null) {
      problems.push(`${at}: ${shown(x)} → ${shown(y)}`)
      continue
    }
    const vx = lineValue(x)
    const vy = lineValue(y)
    if (vx.json && vy.json) problems.push(...diffValues(vx.value, vy.value).map(d => `${at} ${d}`))
    else if (x !== y) problems.push(`${at}: ${shown(x)} → ${shown(y)}`)
  }
  if (a.endsWith('\n') !== b.endsWith('\n')) problems.push(a.endsWith('\n') ? 'the last line ends with a newline → does not' : 'the last line ends without a newline → with one')
  return problems.length > MAX_PROBLEMS ? [...problems.slice(0, MAX_PROBLEMS), `… and ${problems.length - MAX_PROBLEMS} more`] : problems
}

/** How one connection of a check ended. */
export interface Exchanged {
  /** What came back. */
  received: Uint8Array
  /** `closed`: the other side ended it; `quiet`: it kept it open, sending nothing more, and it was closed here. */
  end: 'closed' | 'quiet'
}

/** Limits of one exchange: quiet time after the sample was sent, and the whole. */
export interface ExchangeLimits {
  quietMs: number
  limitMs: number
}

/** The bytes `source` yields, in one piece. */
async function collect (source: ByteSource): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of source) chunks.push(chunk)
  return new Uint8Array(Buffer.concat(chunks))
}

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  if (bytes.byteLength > 0) yield bytes
}

/** A promise and what settles it (`Promise.withResolvers`, which the ES2023 library this code builds against does not declare). */
function deferred<T> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let settle: (value: T) => void = () => {}
  const promise = new Promise<T>(resolve => { settle = resolve })
  return { promise, resolve: settle }
}

/** Ended the exchange here (quiet, or past its limit): not a failure of the other side. */
class ExchangeEnded extends Error {
  constructor (message: string, readonly quiet: boolean) {
    super(message)
  }
}

/**
 * One connection, as a client makes it: send `request`, end the writing side, and take
 * what comes back until the other side ends it. A program that keeps its connections open
 * is done once it has answered and then sent nothing for `quietMs`, or once it has sent
 * nothing at all for `limitMs` (long enough for a daemon's watchdog to stop an SO that
 * loops, which fails the connection: a silence that short is not taken for an answer).
 * Throws when the connection fails, or is still sending after `limitMs`.
 */
export async function exchange (pipe: Pipe, request: Uint8Array, limits: ExchangeLimits): Promise<Exchanged> {
  const chunks: Uint8Array[] = []
  let sent = false
  const ended = deferred<ExchangeEnded>()
  const overall = setTimeout(() => {
    ended.resolve(chunks.length === 0 ? new ExchangeEnded('silent', true) : new ExchangeEnded(`the connection was still sending after ${limits.limitMs} ms`, false))
  }, limits.limitMs)
  let idle: NodeJS.Timeout | undefined
  const rest = (): void => {
    clearTimeout(idle)
    if (sent && chunks.length > 0) idle = setTimeout(() => { ended.resolve(new ExchangeEnded('quiet', true)) }, limits.quietMs)
  }
  let failure: Error | undefined
  const client: ByteStream = {
    source: (async function * () {
      yield * once(request)
      sent = true
      rest()
    })(),
    sink: async source => {
      const it = source[Symbol.asyncIterator]()
      for (;;) {
        // ending it here throws into the carrier, which closes the program's side too
        const next = await Promise.race([it.next(), ended.promise])
        if (next instanceof ExchangeEnded) throw next
        if (next.done === true) return
        chunks.push(next.value instanceof Uint8Array ? next.value : next.value.subarray())
        rest()
      }
    },
    abort: err => { failure ??= err }
  }
  try {
    await pipe(client)
  } finally {
    clearTimeout(overall)
    clearTimeout(idle)
  }
  const received = new Uint8Array(Buffer.concat(chunks))
  if (failure instanceof ExchangeEnded && failure.quiet) return { received, end: 'quiet' }
  if (failure != null) throw failure
  return { received, end: 'closed' }
}

/**
 * Round-trip each sample through the stream SO of `spec`, run in a daemon's worker for a
 * node whose own protocol is `native`. Past SO (run by new-version nodes): a
 * previous-version client's connection is served, and what the SO makes of it goes out
 * again through the SO's `call` to a previous-version peer that answers with the sample's
 * response. Future SO (run by previous-version nodes): called, then served, the other way
 * round. The request that reaches that peer and the response that reaches the client must
 * be the sample's.
 */
export async function streamRoundTrip (spec: SimulationSpec, native: number, kind: 'past' | 'future', samples: StreamSample[], limitMs: number): Promise<SampleResult[]> {
  const log: string[] = []
  const sos = new StreamSimulations({ log: line => { log.push(line) } }, { native })
  try {
    if (!(await sos.load([spec])).includes(spec.version)) throw new Error(`${spec.module} did not load in a daemon's worker: ${log.length > 0 ? log.join('; ') : 'no answer'}`)
    const results: SampleResult[] = []
    for (const [index, sample] of samples.entries()) {
      let problems: string[]
      try {
        const [request, response] = await throughBoth(sos, spec.version, kind, sample, limitMs)
        problems = [...diffStreams(sample.request, request).map(d => `request ${d}`), ...diffStreams(sample.response, response).map(d => `response ${d}`)]
      } catch (err) {
        problems = [`failed: ${(err as Error).message}`]
      }
      results.push({ index, problems })
    }
    return results
  } finally {
    await sos.close()
  }
}

/** One sample through two translated connections, the first's output the second's input: the request and the response as they come out. */
async function throughBoth (sos: StreamSimulations, version: number, kind: 'past' | 'future', sample: StreamSample, limitMs: number): Promise<[Uint8Array, Uint8Array]> {
  // the client's connection (served for a past SO, called for a future one) and the one onward to the peer
  const [first, second] = kind === 'past' ? ['serve', 'call'] as const : ['call', 'serve'] as const
  // the direction the client's request travels in the first connection (served: towards the app)
  const req = kind === 'past' ? 'in' : 'out'
  const pair = (toward: ByteSource, back: ByteSource): Record<'in' | 'out', ByteSource> => req === 'in' ? { in: toward, out: back } : { out: toward, in: back }
  const onward = deferred<Record<'in' | 'out', ByteSource>>()
  const a = sos.translate(first, version, 'check', pair(once(sample.request), (async function * () { yield * (await onward.promise)[req] })()))
  // in the onward connection the request travels the other way, and the peer's response in the request's direction
  let b: ReturnType<StreamSimulations['translate']>
  try {
    b = sos.translate(second, version, 'check', req === 'in' ? { out: a.in, in: once(sample.response) } : { in: a.out, out: once(sample.response) })
  } catch (err) {
    // the first connection waits for the second: it ends with it
    a.abort(err as Error)
    throw err
  }
  onward.resolve(b)
  const back = req === 'in' ? 'out' : 'in'
  const timer = setTimeout(() => {
    const err = new Error(`the simulation object did not finish within ${limitMs} ms`)
    a.abort(err)
    b.abort(err)
  }, limitMs)
  try {
    return await Promise.all([collect(b[back]), collect(a[back])])
  } finally {
    clearTimeout(timer)
  }
}
