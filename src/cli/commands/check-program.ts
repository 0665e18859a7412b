/**
 * A process app's program as `upgossip check` runs it: as a daemon would (`host/`'s
 * {@link ProcessApp}, or {@link TcpProcessApp} for `wire: "tcp"`), in its package
 * directory, on a copy of the sample state, with a proxy that answers for one peer alone.
 * Shared by the HTTP half of the check (`check-http.ts`) and the TCP half (`check-tcp.ts`).
 *
 * @example
 * ```ts
 * const statuses = await withProgram(previous, work, init => new ProcessApp(init), async (app, peerId) =>
 *   (await app.request(peerId, { method: 'GET', path: '/', headers: {}, body: new Uint8Array() })).status)
 * ```
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { parseDuration } from '../../duration.js'
import { AppProxy } from '../../host/index.js'
import type { ProcessApp, ProcessAppInit, RunSpec, SimulationSpec } from '../../host/index.js'
import type { Manifest } from '../../package/index.js'
import { copyTree } from '../../store/index.js'
import type { Mismatch } from './check-protocols.js'

/** One version as `check` runs it. */
export interface CheckedVersion {
  manifest: Manifest
  packageDir: string
  /** The state the program starts on (copied first); none: an empty directory. */
  state?: string
}

/** What one version's program answered through one SO, compared with the other version's answers; or why not. */
export type ProgramCheck = { samples: number, mismatches: Mismatch[] } | { error: string } | string

/** What one SO of a process app did with the samples. */
export interface SimulationSamplesCheck {
  samples: number
  /** How many samples each protocol has (HTTP apps; a TCP app's are all in the previous version's). */
  protocols?: Record<string, number>
  /** The round trip through the SO alone, as for SDK apps. */
  mismatches: Mismatch[]
  /** The samples in the previous version's protocol through the SO to the new version's program, compared with the previous version's answers. */
  newVersion: ProgramCheck
  /** The samples in the new version's protocol through the SO to the previous version's program, compared with the new version's answers (HTTP apps, when there are any). */
  previousVersion?: ProgramCheck
}

/** How many lines of a program's output an error quotes. */
const LOG_LINES = 5

/** Calls that `check` refuses: it runs one peer. */
export async function alone (): Promise<never> {
  throw new Error('upgossip check runs one peer')
}

/**
 * Run `version`'s program (made by `make` from the init a daemon would give it) on a copy
 * of its state, hand it to `use`, and stop it. Throws when it does not become ready, with
 * the end of its output.
 */
export async function withProgram<A extends ProcessApp, T> (version: CheckedVersion, work: string, make: (init: ProcessAppInit) => A, use: (app: A, peerId: string) => Promise<T>): Promise<T> {
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
    send: alone,
    streams: async () => false,
    exchange: alone,
    connect: alone,
    exchangeSelf: async (head, body) => await app.requestStreamed(head, body),
    log: () => {}
  })
  await proxy.start()
  const app: A = make({
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
export async function loadInto (app: ProcessApp, spec: SimulationSpec): Promise<void> {
  const spoken = await app.loadSimulations([spec])
  if (!spoken.includes(spec.version)) throw new Error(`${spec.module} did not load (the program's app.log says why)`)
}

/**
 * Ask a program about every sample (`answer`), and compare what it says with the other
 * version's answer (`compare`: the sample's mismatch, if any; `index` its place among
 * `samples`); a sample it fails on is a problem of that sample (`failed` words it).
 */
export async function askEach<S> (
  samples: S[],
  answer: (sample: S) => Promise<unknown>,
  compare: (sample: S, answer: unknown, index: number) => Mismatch | undefined,
  failed: (sample: S, problem: string, index: number) => Mismatch = (_sample, problem, index) => ({ index, problems: [problem] })
): Promise<{ samples: number, mismatches: Mismatch[] }> {
  const mismatches: Mismatch[] = []
  for (const [index, sample] of samples.entries()) {
    let mismatch: Mismatch | undefined
    try {
      mismatch = compare(sample, await answer(sample), index)
    } catch (err) {
      mismatch = failed(sample, `failed: ${(err as Error).message}`, index)
    }
    if (mismatch != null) mismatches.push(mismatch)
  }
  return { samples: samples.length, mismatches }
}
