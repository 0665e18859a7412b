/** `upgossip check`: a publisher's check of transforms and simulation objects before releasing. */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Command } from 'commander'
import { UpgossipError } from '../../errors.js'
import type { CheckedSimulationObject } from '../../shim/index.js'
import type { TransformCheck } from '../../upgrade/index.js'
import type { HttpSamplesCheck, HttpSimulationCheck } from './check-http.js'
import { note, readInput, say, sayJson } from '../output.js'

/** The check found a mismatch or a failure. */
export class CheckFailedError extends UpgossipError {
  static override name = 'CheckFailedError'
}

/** Register `check`. */
export function checkCommand (program: Command): void {
  program.command('check')
    .description('check a new version against the previous one: transforms on sample state, simulation objects on sample requests')
    .argument('<dir>', 'the new version\'s package directory')
    .requiredOption('--previous <bundle|dir>', 'the previous version: a release bundle or a package directory')
    .option('--state <dir>', 'a sample state directory of the previous version (up, and down(up(state)) == state)')
    .option('--samples <file>', 'JSON lines in the previous version\'s protocol: {"request": …, "response": …}; for a process app (run), HTTP requests {"method", "path", "headers", "body"} with the body as text')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nA process app\'s samples are answered by the previous version\'s program, then sent through the\nsimulation objects both ways and through them to the new version\'s program (docs/cli.md#check).\nExit 1 on any mismatch. Example:\n  $ upgossip check ./kv-v2 --previous kv-1.0.0.car --state ./sample-state --samples samples.jsonl')
    .action(async (dir: string, opts: { previous: string, state?: string, samples?: string, json?: boolean }) => {
      const { MemoryBlockStore } = await import('../../store/index.js')
      const { packDirectory, unpackPackage } = await import('../../package/index.js')
      const { readBundle } = await import('../../release/index.js')
      const { checkTransforms } = await import('../../upgrade/index.js')
      const { roundTrip } = await import('../../shim/index.js')
      const { toHttpRequest } = await import('../../host/index.js')
      const work = await fs.mkdtemp(path.join(os.tmpdir(), 'upgossip-check-'))
      try {
        const next = await packDirectory(dir, new MemoryBlockStore())
        let previousDir = opts.previous
        if ((await fs.stat(opts.previous).catch(() => undefined))?.isDirectory() !== true) {
          const bundle = await readBundle(await readInput(opts.previous))
          previousDir = path.join(work, 'previous')
          await unpackPackage(bundle.signed.record.package, bundle.blocks, previousDir)
        }
        const previous = await packDirectory(previousDir, new MemoryBlockStore())
        const m = next.manifest
        const report: Record<string, unknown> = { version: m.version, previous: previous.manifest.version, problems: 0 }
        let problems = 0

        if (m.transform != null && opts.state != null) {
          const t = await checkTransforms({ packageDir: path.resolve(dir), up: m.transform.up, down: m.transform.down, state: path.resolve(opts.state), work: path.join(work, 'transform'), fromVersion: previous.manifest.version, toVersion: m.version })
          report.transform = t
          if (!t.up.ok) problems++
          if (t.roundTrip != null && !t.roundTrip.ok) problems += Math.max(1, t.roundTrip.problems.length)
        } else {
          report.transform = m.transform == null ? 'no transform: the state directory is carried over as is' : 'not exercised: give --state DIR'
        }

        const lines = opts.samples == null
          ? []
          : (await fs.readFile(opts.samples, 'utf8')).split('\n').map((l, i) => ({ l, i })).filter(({ l }) => l.trim() !== '').map(({ l, i }) => {
              try {
                return { value: JSON.parse(l) as unknown, line: i + 1 }
              } catch {
                throw new CheckFailedError(`${opts.samples ?? ''} line ${i + 1} is not JSON`)
              }
            })
        // a process app's samples are HTTP requests (answered by the previous version's program); an SDK app's, request and response
        const httpSamples = m.run?.wire !== 'http'
          ? []
          : lines.map(({ value, line }) => {
            try {
              return toHttpRequest(value)
            } catch (err) {
              throw new CheckFailedError(`${opts.samples ?? ''} line ${line}: a process app's sample is an HTTP request {"method", "path", "headers", "body"} with the body as text: ${(err as Error).message}`)
            }
          })
        const samples = m.run == null ? lines.map(({ value }) => value as { request: unknown, response: unknown }) : []
        const httpSos: Partial<Record<'past' | 'future', string>> = {}
        const sims: Record<string, unknown> = {}
        for (const kind of ['past', 'future'] as const) {
          const file = m.simulation?.[kind]
          if (file == null) continue
          // the package's own file: nothing is trusted until the check below
          const mod = await import(pathToFileURL(path.resolve(dir, ...file.split('/'))).href) as { default?: { version?: unknown, serve?: unknown, call?: unknown } | null }
          const so = mod.default
          const expected = kind === 'past' ? m.protocol - 1 : m.protocol
          if (so == null || typeof so.serve !== 'function' || typeof so.call !== 'function' || so.version !== expected) {
            sims[kind] = { ok: false, error: `${file}: expected { version: ${expected}, serve, call }` }
            problems++
            continue
          }
          if (m.run?.wire === 'tcp') {
            sims[kind] = 'not exercised: a "wire": "tcp" app\'s simulation objects transform byte streams, and check sends HTTP samples only'
            continue
          }
          if (samples.length === 0 && httpSamples.length === 0) {
            sims[kind] = 'not exercised: give --samples FILE'
            continue
          }
          if (m.run != null) {
            // run again as the daemon runs it: in a worker, from its file
            httpSos[kind] = path.resolve(dir, ...file.split('/'))
            continue
          }
          const results = (await roundTrip(so as CheckedSimulationObject, kind, samples)).filter(r => r.problems.length > 0)
          sims[kind] = { samples: samples.length, mismatches: results }
          problems += results.length
        }
        if (Object.keys(httpSos).length > 0) {
          const { checkHttpSamples } = await import('./check-http.js')
          const transformed = report.transform as TransformCheck | string
          // the new version runs on what its `up` made of the sample state (or the sample itself, when it has no transform)
          const nextState = m.transform == null || opts.state == null ? opts.state : typeof transformed !== 'string' && transformed.up.ok ? path.join(work, 'transform', 'up') : undefined
          if (m.transform != null && opts.state != null && nextState == null) {
            for (const kind of Object.keys(httpSos)) sims[kind] = 'not exercised: the transform failed, so the new version has no state to start on'
          } else {
            const http = await checkHttpSamples({ previous: { manifest: previous.manifest, packageDir: previousDir, state: opts.state }, next: { manifest: m, packageDir: dir, state: nextState }, sos: httpSos, samples: httpSamples, work: path.join(work, 'programs') })
            report.samples = http.answered
            Object.assign(sims, http.simulation)
            problems += http.problems
          }
        }
        report.simulation = Object.keys(sims).length === 0 ? 'no simulation objects' : sims
        report.problems = problems

        if (opts.json === true) {
          sayJson(report)
        } else {
          say(`checking ${m.app} ${previous.manifest.version} → ${m.version}`)
          const t = report.transform
          if (typeof t === 'string') say(`transform: ${t}`)
          else {
            const tc = t as { up: { ok: boolean, files?: number, error?: string }, roundTrip?: { ok: boolean, problems: string[], error?: string } }
            say(`transform up: ${tc.up.ok ? `ok (${tc.up.files ?? 0} files)` : `FAILED: ${tc.up.error ?? ''}`}`)
            if (tc.roundTrip != null) {
              say(`down(up(state)) == state: ${tc.roundTrip.ok ? 'ok' : `NO${tc.roundTrip.error != null ? `: ${tc.roundTrip.error}` : ''}`}`)
              for (const p of tc.roundTrip.problems) say(`  ${p}`)
            }
          }
          const answered = report.samples as HttpSamplesCheck['answered'] | undefined
          if (answered != null) say('error' in answered ? `samples: FAILED: ${answered.error}` : `samples: ${answered.statuses.length} HTTP requests, answered by ${answered.by}'s program: ${answered.statuses.join(' ')}`)
          const mismatched = (list: Array<{ index: number, problems: string[] }> | undefined): void => {
            for (const mm of list ?? []) for (const p of mm.problems) say(`  sample ${mm.index + 1}: ${p}`)
          }
          for (const [kind, r] of Object.entries(sims)) {
            if (typeof r === 'string') { say(`${kind} SO: ${r}`); continue }
            const rr = r as { ok?: boolean, error?: string, samples?: number, mismatches?: Array<{ index: number, problems: string[] }>, newVersion?: HttpSimulationCheck['newVersion'] }
            if (rr.error != null) { say(`${kind} SO: FAILED: ${rr.error}`); continue }
            say(`${kind} SO: ${rr.samples ?? 0} samples, ${rr.mismatches?.length ?? 0} did not survive the round trip`)
            mismatched(rr.mismatches)
            const nv = rr.newVersion
            if (nv == null) continue
            if (typeof nv === 'string') say(`${kind} SO with ${m.version}'s program: ${nv}`)
            else if ('error' in nv) say(`${kind} SO with ${m.version}'s program: FAILED: ${nv.error}`)
            else {
              say(`${kind} SO with ${m.version}'s program: ${nv.samples} samples, ${nv.mismatches.length} answered otherwise than ${previous.manifest.version}'s`)
              mismatched(nv.mismatches)
            }
          }
          if (Object.keys(sims).length === 0) say('simulation objects: none')
        }
        if (problems > 0) throw new CheckFailedError(`${problems} problem(s) found`)
        if (opts.json !== true) note('no problems found')
      } finally {
        const { removeTree } = await import('../../store/index.js')
        await removeTree(work)
      }
    })
}
