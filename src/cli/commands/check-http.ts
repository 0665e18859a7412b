/**
 * The process-app half of `upgossip check` (`run` with `wire: "http"`): sample HTTP
 * requests of the previous version are answered by the previous version's own program,
 * then go through the new version's simulation objects both ways (what comes back must be
 * what went in), and through them to the new version's program, whose answers must be the
 * previous version's. Each program runs as a daemon runs it (`host/`'s {@link ProcessApp},
 * on a copy of the sample state, with a proxy that answers for one peer alone).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { parseDuration } from '../../duration.js'
import { AppProxy, ProcessApp, toHttpRequest, toHttpResponse } from '../../host/index.js'
import type { HttpRequestMessage, HttpResponseMessage, RunSpec } from '../../host/index.js'
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

/** What the new version's program answered, through one SO, compared with the previous version's answers. */
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

/** An SO as the daemon runs it for an HTTP app: every message it takes or gives is checked and normalised (string bodies become bytes). */
export function asHttpSimulation (so: CheckedSimulationObject): CheckedSimulationObject {
  const through = (next: (request: unknown) => Promise<unknown>) => async (request: unknown): Promise<HttpResponseMessage> => toHttpResponse(await next(toHttpRequest(request)))
  return {
    version: so.version,
    serve: async (request, local) => toHttpResponse(await so.serve(toHttpRequest(request), through(local))),
    call: async (request, remote) => toHttpResponse(await so.call(toHttpRequest(request), through(remote)))
  }
}

/** How many lines of a program's log an error quotes. */
const LOG_LINES = 5

/**
 * Run `version`'s program on a copy of its state, hand `use` a way to send it requests,
 * and stop it. Throws when it does not become ready, with the end of its log.
 */
async function withProgram<T> (version: CheckedVersion, work: string, use: (send: (request: unknown) => Promise<HttpResponseMessage>) => Promise<T>): Promise<T> {
  const m = version.manifest
  const run = m.run as RunSpec
  await fs.mkdir(work, { recursive: true })
  const runDir = await fs.mkdtemp(path.join(work, `${m.version}-`))
  const stateDir = path.join(runDir, 'state')
  if (version.state != null) await copyTree(version.state, stateDir)
  else await fs.mkdir(stateDir)
  const logFile = path.join(runDir, 'app.log')
  const peerId = (await generateKeyPair('Ed25519')).publicKey.toString()
  // the program may ask the proxy for its peers: it is told it is alone
  const proxy: AppProxy = new AppProxy({
    selfId: () => peerId,
    peers: () => [],
    route: async () => ({ self: true }),
    send: async () => { throw new Error('upgossip check runs one peer') },
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
    peerId,
    logFile,
    proxyUrl: proxy.url,
    onRoute: async () => ({ self: true }),
    onSend: async () => { throw new Error('upgossip check runs one peer') }
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
    return await use(async request => await app.request(peerId, request, undefined, 10_000))
  } finally {
    await app.stop(2000)
    await proxy.stop()
  }
}

/**
 * Check `samples` (requests of the previous version's protocol) against the previous
 * version's program, the new version's SOs and its program.
 */
export async function checkHttpSamples (opts: { previous: CheckedVersion, next: CheckedVersion, sos: Partial<Record<'past' | 'future', CheckedSimulationObject>>, samples: HttpRequestMessage[], work: string }): Promise<HttpSamplesCheck> {
  const { previous, next, samples } = opts
  const result: HttpSamplesCheck = { answered: { error: '' }, simulation: {}, problems: 0 }
  if (previous.manifest.run?.wire !== 'http') {
    result.answered = { error: `the previous version ${previous.manifest.version} is not a process app with "wire": "http", so it cannot answer HTTP samples` }
    result.problems++
    for (const kind of Object.keys(opts.sos) as Array<'past' | 'future'>) result.simulation[kind] = 'not exercised: no answers to compare with'
    return result
  }
  let answers: HttpResponseMessage[]
  try {
    answers = await withProgram(previous, path.join(opts.work, 'previous'), async send => {
      const out: HttpResponseMessage[] = []
      for (const request of samples) out.push(await send(request))
      return out
    })
  } catch (err) {
    result.answered = { error: (err as Error).message }
    result.problems++
    for (const kind of Object.keys(opts.sos) as Array<'past' | 'future'>) result.simulation[kind] = `not exercised: ${previous.manifest.version}'s program gave no answers to compare with`
    return result
  }
  result.answered = { by: previous.manifest.version, statuses: answers.map(a => a.status) }
  const exchanges: Sample[] = samples.map((request, i) => ({ request, response: answers[i] }))

  for (const kind of ['past', 'future'] as const) {
    const raw = opts.sos[kind]
    if (raw == null) continue
    const so = asHttpSimulation(raw)
    const mismatches = (await roundTrip(so, kind, exchanges, httpView)).filter(r => r.problems.length > 0)
    const check: HttpSimulationCheck = { samples: samples.length, mismatches, newVersion: '' }
    result.problems += mismatches.length
    if (next.manifest.run?.wire !== 'http') {
      check.newVersion = `not exercised: ${next.manifest.version} is not a process app with "wire": "http"`
    } else {
      try {
        // a fresh start for each SO, so that both see the same state
        check.newVersion = await withProgram(next, path.join(opts.work, `next-${kind}`), async send => {
          const found: SampleResult[] = []
          for (const [index, sample] of exchanges.entries()) {
            let problems: string[]
            try {
              // past: a previous-version peer's request served by a new node; future: a previous-version node calling a new peer
              const answer = kind === 'past' ? await so.serve(sample.request, send) : await so.call(sample.request, send)
              problems = diffValues(httpView(sample.response, 'response', sample), httpView(answer, 'response', sample)).map(d => `response ${d}`)
            } catch (err) {
              problems = [`threw: ${(err as Error).message}`]
            }
            if (problems.length > 0) found.push({ index, problems })
          }
          return { samples: exchanges.length, mismatches: found }
        })
        result.problems += (check.newVersion as { mismatches: SampleResult[] }).mismatches.length
      } catch (err) {
        check.newVersion = { error: (err as Error).message }
        result.problems++
      }
    }
    result.simulation[kind] = check
  }
  return result
}
