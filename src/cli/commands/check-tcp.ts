/**
 * The TCP half of `upgossip check` (`run` with `wire: "tcp"`): each sample is one client
 * connection of the previous version's protocol (the bytes it sends, then the end of its
 * writing side). The previous version's program answers each; then every sample goes
 * through the new version's stream simulation objects both ways (the request and the
 * answer that come back must be the ones that went in), and through them to the new
 * version's program, whose answers must be the previous version's. Everything runs as a
 * daemon runs it: each program as `host/`'s {@link TcpProcessApp} (`check-program.ts`),
 * the SOs in a daemon's worker, the connections through the same carrier as peers'.
 * Streams are compared as `diffStreams` shows them (JSON lines as values).
 */
import path from 'node:path'
import { TcpProcessApp, connectPort, socketByteStream } from '../../host/index.js'
import type { ProcessAppInit, SimulationSpec } from '../../host/index.js'
import type { ByteStream } from '../../net/index.js'
import type { SampleResult } from '../../shim/index.js'
import type { Mismatch } from './check-protocols.js'
import { alone, askEach, loadInto, withProgram } from './check-program.js'
import type { CheckedVersion, SimulationSamplesCheck } from './check-program.js'
import { diffStreams, exchange, streamRoundTrip } from './check-streams.js'
import type { Exchanged, StreamSample } from './check-streams.js'

/** What checking TCP samples found. */
export interface TcpSamplesCheck {
  /**
   * The previous version's answers (the reference): bytes received on each connection and
   * how it ended (`closed` by the program, or `quiet`: open, but silent for a second after
   * the sample was sent); or why there are none.
   */
  answered: { by: string, received: number[], ends: Array<Exchanged['end']> } | { error: string }
  simulation: Partial<Record<'past' | 'future', SimulationSamplesCheck | string>>
  problems: number
}

/** A connection of a check: silent this long after the sample was sent, it is done; open this long in all, it failed. */
const LIMITS = { quietMs: 1000, limitMs: 10_000 }

/** A TCP app's program, as a daemon starts it; with `peer`, its connections out go to that peer, in that protocol version. */
function tcpApp (peer?: { version: number, open: () => Promise<ByteStream> }): (init: ProcessAppInit) => TcpProcessApp {
  return init => new TcpProcessApp({
    ...init,
    ...(peer == null ? {} : { onRoute: async () => ({ self: false, version: peer.version }) }),
    onOpenBytes: peer == null ? alone : async () => await peer.open()
  })
}

/** A sample with the previous version's answer, and how that program ended the connection. */
interface Answered extends StreamSample {
  end: Exchanged['end']
}

/** Compare what the new version's program sent back (and whether it closed the connection) with the previous version's answer. */
function compareAnswer (sample: Answered, answer: unknown, index: number): Mismatch | undefined {
  const got = answer as Exchanged
  const problems = diffStreams(sample.response, got.received).map(d => `response ${d}`)
  if (got.end !== sample.end) problems.push(got.end === 'quiet' ? 'the connection was left open, where the previous version closed it' : 'the connection was closed, where the previous version left it open')
  return problems.length > 0 ? { index, problems } : undefined
}

/**
 * Check `samples` (the bytes a client of the previous version's protocol sends on one
 * connection, each) against the previous version's program, the new version's stream SOs
 * (module paths, by kind) and its program.
 */
export async function checkTcpSamples (opts: { previous: CheckedVersion, next: CheckedVersion, sos: Partial<Record<'past' | 'future', string>>, samples: Uint8Array[], work: string }): Promise<TcpSamplesCheck> {
  const { previous, next, samples } = opts
  const kinds = Object.keys(opts.sos) as Array<'past' | 'future'>
  const result: TcpSamplesCheck = { answered: { error: '' }, simulation: {}, problems: 0 }
  const noAnswers = (error: string): TcpSamplesCheck => {
    result.answered = { error }
    result.problems++
    for (const kind of kinds) result.simulation[kind] = `not exercised: ${previous.manifest.version}'s program gave no answers to compare with`
    return result
  }
  if (previous.manifest.run?.wire !== 'tcp') return noAnswers(`the previous version ${previous.manifest.version} is not a process app with "wire": "tcp", so it cannot answer TCP samples`)
  let answers: Exchanged[]
  try {
    answers = await withProgram(previous, path.join(opts.work, 'previous'), tcpApp(), async (app, peerId) => {
      const out: Exchanged[] = []
      for (const request of samples) out.push(await exchange(await app.accept(peerId), request, LIMITS))
      return out
    })
  } catch (err) {
    return noAnswers((err as Error).message)
  }
  result.answered = { by: previous.manifest.version, received: answers.map(a => a.received.byteLength), ends: answers.map(a => a.end) }
  const exchanges: Answered[] = samples.map((request, i) => ({ request, response: (answers[i] as Exchanged).received, end: (answers[i] as Exchanged).end }))

  for (const kind of kinds) {
    // a past SO is run by new-version nodes, a future SO by previous-version ones
    const spec: SimulationSpec = { module: opts.sos[kind] as string, version: kind === 'past' ? previous.manifest.protocol : next.manifest.protocol }
    let mismatches: SampleResult[]
    try {
      mismatches = (await streamRoundTrip(spec, kind === 'past' ? next.manifest.protocol : previous.manifest.protocol, kind, exchanges, LIMITS.limitMs)).filter(r => r.problems.length > 0)
    } catch (err) {
      result.simulation[kind] = `FAILED: ${(err as Error).message}`
      result.problems++
      continue
    }
    const check: SimulationSamplesCheck = { samples: samples.length, mismatches, newVersion: '' }
    result.problems += mismatches.length
    result.simulation[kind] = check
    if (next.manifest.run?.wire !== 'tcp') {
      check.newVersion = `not exercised: ${next.manifest.version} is not a process app with "wire": "tcp"`
      continue
    }
    try {
      check.newVersion = await throughProgram(kind, spec, previous, next, exchanges, opts.work)
      result.problems += check.newVersion.mismatches.length
    } catch (err) {
      check.newVersion = { error: (err as Error).message }
      result.problems++
    }
  }
  return result
}

/** Each sample through the SO to the new version's program, on a fresh start of the programs (so that every SO meets the same state). */
async function throughProgram (kind: 'past' | 'future', spec: SimulationSpec, previous: CheckedVersion, next: CheckedVersion, exchanges: Answered[], work: string): Promise<{ samples: number, mismatches: Mismatch[] }> {
  if (kind === 'past') {
    // a previous-version peer's connection reaching a new node: served through the SO, on to the program
    return await withProgram(next, path.join(work, 'next-past'), tcpApp(), async (app, peerId) => {
      await loadInto(app, spec)
      return await askEach(exchanges, async sample => await exchange(await app.accept(peerId, previous.manifest.protocol), sample.request, LIMITS), compareAnswer)
    })
  }
  // a previous-version node's program connecting to a new peer: through the SO it loaded, on to that peer's program
  let peer: TcpProcessApp | undefined
  const open = async (): Promise<ByteStream> => socketByteStream(await connectPort(peer?.port ?? 0))
  return await withProgram(previous, path.join(work, 'previous-future'), tcpApp({ version: next.manifest.protocol, open }), async prev => {
    await loadInto(prev, spec)
    return await withProgram(next, path.join(work, 'next-future'), tcpApp(), async (app, peerId) => {
      peer = app
      return await askEach(exchanges, async sample => await exchange(await prev.connectOut(peerId), sample.request, LIMITS), compareAnswer)
    })
  })
}
