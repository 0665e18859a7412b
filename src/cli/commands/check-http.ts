/**
 * The process-app half of `upgossip check` (`run` with `wire: "http"`): sample HTTP
 * requests of the previous version are answered by the previous version's own program,
 * then go through the new version's simulation objects both ways (what comes back must be
 * what went in), and through them to the new version's program, whose answers must be the
 * previous version's. Everything runs as a daemon runs it: each program as `host/`'s
 * {@link ProcessApp} (`check-program.ts`), the SOs in a {@link SimulationRunner}'s worker
 * with the per-message limit.
 */
import path from 'node:path'
import { ProcessApp, toHttpRequest, toHttpResponse } from '../../host/index.js'
import type { HttpRequestMessage, HttpResponseMessage, ProcessAppInit, SimulationSpec } from '../../host/index.js'
import { SimulationRunner } from '../../host/so-runner.js'
import { diffValues, roundTrip } from '../../shim/index.js'
import type { CheckedSimulationObject, Sample, SampleResult, SampleView } from '../../shim/index.js'
import { askEach, loadInto, withProgram } from './check-program.js'
import type { CheckedVersion, ProgramCheck, SimulationSamplesCheck } from './check-program.js'

export type { CheckedVersion, ProgramCheck } from './check-program.js'

/** What one SO did with the HTTP samples. */
export type HttpSimulationCheck = SimulationSamplesCheck

/** What checking HTTP samples found. */
export interface HttpSamplesCheck {
  /** The previous version's answers to the samples (the reference), or why there are none. */
  answered: { by: string, statuses: number[] } | { error: string }
  simulation: Partial<Record<'past' | 'future', HttpSimulationCheck | string>>
  problems: number
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/** A body as people read it: text, or base64 when it is not UTF-8. */
function bodyText (body: Uint8Array): string {
  try {
    return decoder.decode(body)
  } catch {
    return `base64:${Buffer.from(body).toString('base64')}`
  }
}

/**
 * What must survive a translation: method, path, body, and the headers the sample itself
 * gave; status, body and `content-type` of a response (`date`, `server` and their like
 * differ between any two answers, and `content-length` is the daemon's to set).
 */
export const httpView: SampleView = (value, side, sample) => {
  if (side === 'request') {
    const m = toHttpRequest(value)
    const wanted = Object.keys(toHttpRequest(sample.request).headers)
    return { method: m.method, path: m.path, headers: Object.fromEntries(wanted.map(h => [h, m.headers[h]])), body: bodyText(m.body) }
  }
  const r = toHttpResponse(value)
  return { status: r.status, headers: { 'content-type': r.headers['content-type'] }, body: bodyText(r.body) }
}

/** The one SO of `spec` as the daemon runs it, in a worker, for a node whose own protocol is `native`; every message checked as the daemon checks it. */
async function workerSimulation (spec: SimulationSpec, native: number): Promise<{ so: CheckedSimulationObject, stop: () => Promise<void> }> {
  const problems: string[] = []
  const runner = new SimulationRunner({ log: message => { problems.push(message) } }, { native })
  const spoken = await runner.load([spec])
  if (!spoken.includes(spec.version)) {
    await runner.stop()
    throw new Error(`${spec.module} did not load in a daemon's worker: ${problems.length > 0 ? problems.join('; ') : 'no answer'}`)
  }
  const through = (next: (request: unknown) => Promise<unknown>) => async (request: unknown): Promise<HttpResponseMessage> => toHttpResponse(await next(toHttpRequest(request)))
  return {
    so: {
      version: spec.version,
      serve: async (request, local) => toHttpResponse(await runner.serve(spec.version, toHttpRequest(request), through(local))),
      call: async (request, remote) => toHttpResponse(await runner.call(spec.version, toHttpRequest(request), through(remote)))
    },
    stop: async () => { await runner.stop() }
  }
}

/** An HTTP app's program, as a daemon starts it. */
const httpApp = (init: ProcessAppInit): ProcessApp => new ProcessApp(init)

/** Compare a program's answer through an SO with the previous version's own answer. */
function compareAnswer (sample: Sample, answer: unknown): string[] {
  return diffValues(httpView(sample.response, 'response', sample), httpView(answer, 'response', sample)).map(d => `response ${d}`)
}

/**
 * Check `samples` (requests of the previous version's protocol) against the previous
 * version's program, the new version's SOs (module paths, by kind) and its program.
 */
export async function checkHttpSamples (opts: { previous: CheckedVersion, next: CheckedVersion, sos: Partial<Record<'past' | 'future', string>>, samples: HttpRequestMessage[], work: string }): Promise<HttpSamplesCheck> {
  const { previous, next, samples } = opts
  const kinds = Object.keys(opts.sos) as Array<'past' | 'future'>
  const result: HttpSamplesCheck = { answered: { error: '' }, simulation: {}, problems: 0 }
  const noAnswers = (error: string): HttpSamplesCheck => {
    result.answered = { error }
    result.problems++
    for (const kind of kinds) result.simulation[kind] = `not exercised: ${previous.manifest.version}'s program gave no answers to compare with`
    return result
  }
  if (previous.manifest.run?.wire !== 'http') return noAnswers(`the previous version ${previous.manifest.version} is not a process app with "wire": "http", so it cannot answer HTTP samples`)
  let answers: HttpResponseMessage[]
  try {
    answers = await withProgram(previous, path.join(opts.work, 'previous'), httpApp, async (app, peerId) => {
      const out: HttpResponseMessage[] = []
      for (const request of samples) out.push(await app.request(peerId, request, undefined, 10_000))
      return out
    })
  } catch (err) {
    return noAnswers((err as Error).message)
  }
  result.answered = { by: previous.manifest.version, statuses: answers.map(a => a.status) }
  const exchanges: Sample[] = samples.map((request, i) => ({ request, response: answers[i] }))

  for (const kind of kinds) {
    // a past SO is run by new-version nodes, a future SO by previous-version ones
    const spec: SimulationSpec = { module: opts.sos[kind] as string, version: kind === 'past' ? previous.manifest.protocol : next.manifest.protocol }
    let worker: Awaited<ReturnType<typeof workerSimulation>>
    try {
      worker = await workerSimulation(spec, kind === 'past' ? next.manifest.protocol : previous.manifest.protocol)
    } catch (err) {
      result.simulation[kind] = `FAILED: ${(err as Error).message}`
      result.problems++
      continue
    }
    let mismatches: SampleResult[]
    try {
      mismatches = (await roundTrip(worker.so, kind, exchanges, httpView)).filter(r => r.problems.length > 0)
    } finally {
      await worker.stop()
    }
    const check: HttpSimulationCheck = { samples: samples.length, mismatches, newVersion: '' }
    result.problems += mismatches.length
    result.simulation[kind] = check
    if (next.manifest.run?.wire !== 'http') {
      check.newVersion = `not exercised: ${next.manifest.version} is not a process app with "wire": "http"`
      continue
    }
    const ask = async (answer: (sample: Sample) => Promise<unknown>): Promise<ProgramCheck> => await askEach(exchanges, answer, compareAnswer)
    try {
      // each SO meets a fresh start of the programs, so that both see the same state
      check.newVersion = kind === 'past'
        // a previous-version peer's request reaching a new node: served through the SO, `local` the program
        ? await withProgram(next, path.join(opts.work, 'next-past'), httpApp, async (app, peerId) => {
          await loadInto(app, spec)
          return await ask(async sample => await app.request(peerId, sample.request, previous.manifest.protocol, 10_000))
        })
        // a previous-version node's program calling a new peer: through the SO it loaded, `remote` that peer's program
        : await withProgram(previous, path.join(opts.work, 'previous-future'), httpApp, async prev => {
          await loadInto(prev, spec)
          return await withProgram(next, path.join(opts.work, 'next-future'), httpApp, async (app, peerId) =>
            await ask(async sample => await prev.callPeer(next.manifest.protocol, toHttpRequest(sample.request), async r => await app.request(peerId, r, undefined, 10_000))))
        })
      result.problems += (check.newVersion as { mismatches: SampleResult[] }).mismatches.length
    } catch (err) {
      check.newVersion = { error: (err as Error).message }
      result.problems++
    }
  }
  return result
}
