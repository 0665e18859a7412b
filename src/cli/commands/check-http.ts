/**
 * The process-app half of `upgossip check` (`run` with `wire: "http"`): sample HTTP
 * requests are answered by the program of the version whose protocol they are written in
 * (the previous version's, or the new version's for samples tagged with its protocol),
 * then go through the new version's simulation objects both ways (what comes back must be
 * what went in), and through them to the other version's program, whose answers must be
 * the same as it reaches the caller. Everything runs as a daemon runs it: each program as
 * `host/`'s {@link ProcessApp} (`check-program.ts`), the SOs in a
 * {@link SimulationRunner}'s worker with the per-message limit.
 */
import path from 'node:path'
import { ProcessApp, toHttpRequest, toHttpResponse } from '../../host/index.js'
import type { HttpRequestMessage, HttpResponseMessage, ProcessAppInit, SimulationSpec } from '../../host/index.js'
import { SimulationRunner } from '../../host/so-runner.js'
import { diffFields, roundTrip } from '../../shim/index.js'
import type { CheckedSimulationObject, Sample, SampleView } from '../../shim/index.js'
import { answerMismatch, byProtocol, countByProtocol, inNewProtocol, roundTripMismatch, sampleFailure } from './check-protocols.js'
import type { Mismatch, SampleVersions, Tagged } from './check-protocols.js'
import { askEach, loadInto, withProgram } from './check-program.js'
import type { CheckedVersion, ProgramCheck, SimulationSamplesCheck } from './check-program.js'

export type { CheckedVersion, ProgramCheck } from './check-program.js'

/** What one SO did with the HTTP samples. */
export type HttpSimulationCheck = SimulationSamplesCheck

/** One version's program's answers to the samples in its protocol (the reference), or why there are none. */
export type HttpAnswered = { by: string, statuses: number[] } | { error: string }

/** What checking HTTP samples found. */
export interface HttpSamplesCheck {
  /** The previous version's answers to the samples in its protocol, when there are any. */
  answered?: HttpAnswered
  /** The new version's answers to the samples in its protocol, when there are any. */
  answeredInNew?: HttpAnswered
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

/** A body as compared: its JSON value when it is JSON (so each field is named, spacing and key order aside), else as {@link bodyText} shows it. */
function bodyValue (body: Uint8Array): unknown {
  const text = bodyText(body)
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/**
 * What must survive a translation: method, path, body, and the headers the sample itself
 * gave; status, body and `content-type` of a response (`date`, `server` and their like
 * differ between any two answers, and `content-length` is the daemon's to set). A JSON
 * body is compared as a value.
 */
export const httpView: SampleView = (value, side, sample) => {
  if (side === 'request') {
    const m = toHttpRequest(value)
    const wanted = Object.keys(toHttpRequest(sample.request).headers)
    return { method: m.method, path: m.path, headers: Object.fromEntries(wanted.map(h => [h, m.headers[h]])), body: bodyValue(m.body) }
  }
  const r = toHttpResponse(value)
  return { status: r.status, headers: { 'content-type': r.headers['content-type'] }, body: bodyValue(r.body) }
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

/** A sample with the answer of its own version's program. */
type Exchange = Tagged<Sample & { request: HttpRequestMessage, response: HttpResponseMessage }>

/** The samples of one protocol: the version they are written for (`home`), the other one, and `home`'s answers. */
interface Group {
  protocol: number
  home: CheckedVersion
  other: CheckedVersion
  samples: Array<Tagged<HttpRequestMessage>>
  /** Each sample with `home`'s answer; none when its program gave none. */
  exchanges?: Exchange[]
}

/** Ask `version`'s program every sample in order, on one start of it. */
async function answersOf (version: CheckedVersion, samples: Array<Tagged<HttpRequestMessage>>, work: string): Promise<HttpResponseMessage[]> {
  return await withProgram(version, work, httpApp, async (app, peerId) => {
    const out: HttpResponseMessage[] = []
    for (const { sample } of samples) out.push(await app.request(peerId, sample, undefined, 10_000))
    return out
  })
}

/**
 * Check `samples` (requests in either version's protocol) against the program of the
 * version each is written for, the new version's SOs (module paths, by kind) and the
 * other version's program. The samples of each protocol run in their order, on starts of
 * the programs of their own.
 */
export async function checkHttpSamples (opts: { previous: CheckedVersion, next: CheckedVersion, accepted?: string[], sos: Partial<Record<'past' | 'future', string>>, samples: Array<Tagged<HttpRequestMessage>>, work: string }): Promise<HttpSamplesCheck> {
  const { previous, next } = opts
  const versions: SampleVersions = { previous: previous.manifest, next: next.manifest, accepted: opts.accepted }
  const kinds = Object.keys(opts.sos) as Array<'past' | 'future'>
  const result: HttpSamplesCheck = { simulation: {}, problems: 0 }
  const groups: Group[] = []
  for (const [protocol, samples] of byProtocol(opts.samples)) {
    const fresh = inNewProtocol(protocol, versions)
    const group: Group = { protocol, home: fresh ? next : previous, other: fresh ? previous : next, samples }
    groups.push(group)
    let answered: HttpAnswered
    if (group.home.manifest.run?.wire !== 'http') {
      answered = { error: `the ${fresh ? 'new' : 'previous'} version ${group.home.manifest.version} is not a process app with "wire": "http", so it cannot answer HTTP samples` }
    } else {
      try {
        const answers = await answersOf(group.home, samples, path.join(opts.work, `answers-${protocol}`))
        group.exchanges = samples.map((s, i) => ({ ...s, sample: { request: s.sample, response: answers[i] as HttpResponseMessage } }))
        answered = { by: group.home.manifest.version, statuses: answers.map(a => a.status) }
      } catch (err) {
        answered = { error: (err as Error).message }
      }
    }
    if ('error' in answered) result.problems++
    if (fresh) result.answeredInNew = answered
    else result.answered = answered
  }
  const answeredGroups = groups.flatMap(g => g.exchanges == null ? [] : [{ protocol: g.protocol, exchanges: g.exchanges }])
  if (answeredGroups.length === 0) {
    const by = groups.map(g => `${g.home.manifest.version}'s program`).join(' and ')
    for (const kind of kinds) result.simulation[kind] = `not exercised: ${by} gave no answers to compare with`
    return result
  }

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
    const mismatches: Mismatch[] = []
    try {
      for (const { protocol, exchanges } of answeredGroups) {
        const results = await roundTrip(worker.so, exchanges.map(e => e.sample), { protocol, view: httpView })
        for (const [i, r] of results.entries()) {
          const mismatch = roundTripMismatch(r, exchanges[i] as Exchange, kind, versions)
          if (mismatch != null) mismatches.push(mismatch)
        }
      }
    } finally {
      await worker.stop()
    }
    mismatches.sort((a, b) => a.index - b.index)
    const check: HttpSimulationCheck = { samples: opts.samples.length, protocols: countByProtocol(opts.samples), mismatches, newVersion: '' }
    result.problems += mismatches.length
    result.simulation[kind] = check
    for (const group of groups) {
      const program = await throughProgram(kind, spec, group, versions, opts.work)
      if (typeof program !== 'string') result.problems += 'error' in program ? 1 : program.mismatches.length
      if (inNewProtocol(group.protocol, versions)) check.previousVersion = program
      else check.newVersion = program
    }
    if (!groups.some(g => !inNewProtocol(g.protocol, versions))) check.newVersion = `not exercised: no samples in ${previous.manifest.version}'s protocol (${previous.manifest.protocol})`
  }
  return result
}

/**
 * The samples of `group` through the SO of `kind` (`spec`) to the other version's program,
 * on fresh starts of the programs (so that every SO meets the same state): what the caller
 * gets back must be what the samples' own version answered.
 */
async function throughProgram (kind: 'past' | 'future', spec: SimulationSpec, group: Group, versions: SampleVersions, work: string): Promise<ProgramCheck> {
  const { home, other, exchanges, protocol } = group
  if (exchanges == null) return `not exercised: ${home.manifest.version}'s program gave no answers to compare with`
  if (other.manifest.run?.wire !== 'http') return `not exercised: ${other.manifest.version} is not a process app with "wire": "http"`
  const ask = async (answer: (request: HttpRequestMessage) => Promise<unknown>): Promise<ProgramCheck> => await askEach(exchanges, async e => await answer(e.sample.request),
    (e, got) => answerMismatch(diffFields(httpView(e.sample.response, 'response', e.sample), httpView(got, 'response', e.sample)), e, kind, versions),
    (e, problem) => sampleFailure(e, problem, versions))
  // the SO runs on the new-version node for a past SO, on the previous-version node for a future one
  const soOnOther = (kind === 'past') === !inNewProtocol(protocol, versions)
  try {
    return soOnOther
      // the request reaches the other version's node in its own protocol, served through the SO, `local` the program
      ? await withProgram(other, path.join(work, `${kind}-${protocol}-other`), httpApp, async (app, peerId) => {
        await loadInto(app, spec)
        return await ask(async request => await app.request(peerId, request, protocol, 10_000))
      })
      // the samples' own node sends it out through the SO it loaded, `remote` the other version's program
      : await withProgram(home, path.join(work, `${kind}-${protocol}-home`), httpApp, async homeApp => {
        await loadInto(homeApp, spec)
        return await withProgram(other, path.join(work, `${kind}-${protocol}-other`), httpApp, async (app, peerId) =>
          await ask(async request => await homeApp.callPeer(other.manifest.protocol, request, async r => await app.request(peerId, r, undefined, 10_000))))
      })
  } catch (err) {
    return { error: (err as Error).message }
  }
}
