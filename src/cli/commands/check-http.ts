/**
 * The process-app half of `upgossip check` (`run` with `wire: "http"`): sample HTTP
 * requests of the previous version are answered by the previous version's own program,
 * then go through the new version's simulation objects both ways (what comes back must be
 * what went in), and through them to the new version's program, whose answers must be the
 * previous version's. Everything runs as a daemon runs it: each program as `host/`'s
 * {@link ProcessApp} (on a copy of the sample state, with a proxy that answers for one
 * peer alone), the SOs in a {@link SimulationRunner}'s worker with the per-message limit.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { parseDuration } from '../../duration.js'
import { AppProxy, ProcessApp, toHttpRequest, toHttpResponse } from '../../host/index.js'
import type { HttpRequestMessage, HttpResponseMessage, RunSpec, SimulationSpec } from '../../host/index.js'
import { SimulationRunner } from '../../host/so-runner.js'
import type { Manifest } from '../../package/index.js'
import { diffValues, roundTrip } from '../../shim/index.js'
import type { CheckedSimulationObject, Sample, SampleResult, SampleView } from '../../shim/index.js'
import { copyTree } from '../../store/index.js'

/** One version as `check` runs it. */
export interface CheckedVersion {
  manifest: Manifest
  packageDir: string
  /** The state the program starts on (copied first); none: an empty directory. */
  state?: string
}

/** What the new version's program answered through one SO, compared with the previous version's answers; or why not. */
export type ProgramCheck = { samples: number, mismatches: SampleResult[] } | { error: string } | string

/** What one SO did with the samples. */
export interface HttpSimulationCheck {
  samples: number
  /** The round trip through the SO alone, as for SDK apps. */
  mismatches: SampleResult[]
  /** The samples through the SO to the new version's program. */
  newVersion: ProgramCheck
}

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

/** How many lines of a program's output an error quotes. */
const LOG_LINES = 5

/**
 * Run `version`'s program on a copy of its state, hand it to `use`, and stop it. Throws
 * when it does not become ready, with the end of its output.
 */
async function withProgram<T> (version: CheckedVersion, work: string, use: (app: ProcessApp, peerId: string) => Promise<T>): Promise<T> {
  const m = version.manifest
  const run = m.run as RunSpec
  await fs.mkdir(work, { recursive: true })
  const runDir = await fs.mkdtemp(path.join(work, `${m.version}-`))
  const stateDir = path.join(runDir, 'state')
  if (version.state != null) await copyTree(version.state, stateDir)
  else await fs.mkdir(stateDir)
  const logFile = path.join(runDir, 'app.log')
  const peerId = (await generateKeyPair('Ed25519')).publicKey.toString()
  const alone = async (): Promise<never> => { throw new Error('upgossip check runs one peer') }
  // the program may ask the proxy for its peers: it is told it is alone
  const proxy: AppProxy = new AppProxy({
    selfId: () => peerId,
    peers: () => [],
    route: async () => ({ self: true }),
    send: alone,
    connect: alone,
    deliverSelf: async (request): Promise<HttpResponseMessage> => await app.request(peerId, request),
    log: () => {}
  })
  await proxy.start()
  const app: ProcessApp = new ProcessApp({
    app: m.app,
    version: m.version,
    protocol: m.protocol,
    packageDir: path.resolve(version.packageDir),
    stateDir,
    run,
    healthPath: m.health.http,
    simulations: [],
    peerId,
    logFile,
    proxyUrl: proxy.url,
    onRoute: async () => ({ self: true }),
    onSend: alone
  })
  try {
    app.start()
    try {
      await app.waitReady(parseDuration(m.health.readyWithin))
    } catch (err) {
      // the program's own output, without the lines the host adds (`--- starting …`)
      const log = (await fs.readFile(logFile, 'utf8').catch(() => '')).split('\n').filter(l => l.trim() !== '' && !l.startsWith('--- ')).slice(-LOG_LINES).join(' | ')
      throw new Error(`${m.version}'s program (${run.command.join(' ')}) did not start: ${(err as Error).message}${log === '' ? '' : `; its output ends: ${log}`}`)
    }
    return await use(app, peerId)
  } finally {
    await app.stop(2000)
    await proxy.stop()
  }
}

/** Load one SO into a running program, as a daemon does; throws when it does not load. */
async function loadInto (app: ProcessApp, spec: SimulationSpec): Promise<void> {
  const spoken = await app.loadSimulations([spec])
  if (!spoken.includes(spec.version)) throw new Error(`${spec.module} did not load (the program's app.log says why)`)
}

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
    answers = await withProgram(previous, path.join(opts.work, 'previous'), async (app, peerId) => {
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
    const ask = async (answer: (sample: Sample) => Promise<unknown>): Promise<ProgramCheck> => {
      const found: SampleResult[] = []
      for (const [index, sample] of exchanges.entries()) {
        let problems: string[]
        try {
          problems = compareAnswer(sample, await answer(sample))
        } catch (err) {
          problems = [`failed: ${(err as Error).message}`]
        }
        if (problems.length > 0) found.push({ index, problems })
      }
      return { samples: exchanges.length, mismatches: found }
    }
    try {
      // each SO meets a fresh start of the programs, so that both see the same state
      check.newVersion = kind === 'past'
        // a previous-version peer's request reaching a new node: served through the SO, `local` the program
        ? await withProgram(next, path.join(opts.work, 'next-past'), async (app, peerId) => {
          await loadInto(app, spec)
          return await ask(async sample => await app.request(peerId, sample.request, previous.manifest.protocol, 10_000))
        })
        // a previous-version node's program calling a new peer: through the SO it loaded, `remote` that peer's program
        : await withProgram(previous, path.join(opts.work, 'previous-future'), async prev => {
          await loadInto(prev, spec)
          return await withProgram(next, path.join(opts.work, 'next-future'), async (app, peerId) =>
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
