/** `upgossip check`: a publisher's check of transforms and simulation objects before releasing. */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Command } from 'commander'
import type { CheckedSimulationObject } from '../../shim/index.js'
import { UsageError, note, readInput, sayJson } from '../output.js'
import { collect } from '../program-options.js'
import type { CheckedVersion } from './check-program.js'
import { sayCheckReport } from './check-report.js'
import type { CheckReport } from './check-report.js'
import { CheckFailedError, readSamples } from './check-samples.js'

/** Register `check`. */
export function checkCommand (program: Command): void {
  program.command('check')
    .description('check a new version against the previous one: transforms on sample state, simulation objects on sample requests; or, with --classes, the calls between several apps during their rollouts')
    .usage('<dir> --previous <bundle|dir> [options]\n       upgossip check --classes <release...> [--json]')
    .argument('[dir]', 'the new version\'s package directory')
    .option('--previous <bundle|dir>', 'the previous version: a release bundle or a package directory (required with <dir>)')
    .option('--state <dir>', 'a sample state directory of the previous version (up, and down(up(state)) == state)')
    .option('--samples <file>', 'JSON lines, each in the previous version\'s protocol, or in the one its "protocol": N names (the new version\'s: sent from a new-version peer to a previous-version one and back): {"request": …, "response": …}; for a process app (run) with "wire": "http", HTTP requests {"method", "path", "headers", "body"} with the body as text (or JSON); with "wire": "tcp", one connection each, in the previous version\'s protocol: {"send": "text"}, {"sendBase64": "…"} or {"lines": [ … ]}')
    .option('--classes <release...>', 'instead of <dir>: the releases (bundles or package directories) of several apps, every version before and after their rollouts; checks every "calls" entry against each version of the called app it may meet')
    .option('--accept-loss <path>', 'a JSON path ($.updated, $.items) whose loss or change through the SOs is expected (an old version keeps no such field): not a problem; repeatable', collect)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nA sample tagged "protocol": N (the new version\'s) goes through each SO to the previous version and\nback; every field that does not survive is named, as a JSON path ($.ts). A process app\'s samples\nare answered by the program of the version whose protocol they are in, then sent through the\nsimulation objects both ways and through them to the other version\'s program (docs/cli.md#check).\nWith --classes, each app starts on its oldest release given; "after" rules on another app with\nfraction 1 keep versions apart (docs/cli.md#several-classes-check---classes).\nExit 1 on any mismatch, or a combination of versions that cannot talk. Examples:\n  $ upgossip check ./kv-v2 --previous kv-1.0.0.car --state ./sample-state --samples samples.jsonl\n  $ echo \'{"protocol": 2, "request": {"action": "set", "k": "colour", "v": "blue"}, "response": {"result": "blue"}}\' >> samples.jsonl\n  $ upgossip check ./kv-v2 --previous kv-1.0.0.car --samples samples.jsonl\n  $ upgossip check --classes store-1.0.0.car store-2.0.0.car client-1.0.0.car ./client-v2')
    .action(async (dir: string | undefined, opts: { previous?: string, state?: string, samples?: string, acceptLoss?: string[], classes?: string[], json?: boolean }) => {
      if (opts.classes != null) {
        const extra = [dir == null ? undefined : `<dir> (${dir})`, ...(['previous', 'state', 'samples'] as const).map(o => opts[o] == null ? undefined : `--${o}`)].filter(o => o != null)
        if (extra.length > 0) throw new UsageError(`--classes checks the releases it names alone; drop ${extra.join(', ')}`)
        const { checkClasses } = await import('./check-classes.js')
        const problems = await checkClasses(opts.classes, opts.json === true)
        if (problems > 0) throw new CheckFailedError(`${problems} combination(s) of versions cannot talk`)
        if (opts.json !== true) note('no problems found')
        return
      }
      if (dir == null) throw new UsageError('missing required argument \'dir\' (or --classes <release...>)')
      if (opts.previous == null) throw new UsageError('required option \'--previous <bundle|dir>\' not specified')
      await checkVersion(dir, { ...opts, previous: opts.previous })
    })
}

/** Check `dir` against its previous version (`check DIR --previous …`). */
async function checkVersion (dir: string, opts: { previous: string, state?: string, samples?: string, acceptLoss?: string[], json?: boolean }): Promise<void> {
  const { MemoryBlockStore } = await import('../../store/index.js')
  const { packDirectory, unpackPackage } = await import('../../package/index.js')
  const { readBundle } = await import('../../release/index.js')
  const { checkTransforms } = await import('../../upgrade/index.js')
  const { sdkRoundTrips } = await import('./check-protocols.js')
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
    const report: CheckReport = { version: m.version, previous: previous.manifest.version, transform: '', simulation: {}, problems: 0 }
    let problems = 0

    if (m.transform != null && opts.state != null) {
      const t = await checkTransforms({ packageDir: path.resolve(dir), up: m.transform.up, down: m.transform.down, state: path.resolve(opts.state), work: path.join(work, 'transform'), fromVersion: previous.manifest.version, toVersion: m.version })
      report.transform = t
      if (!t.up.ok) problems++
      if (t.roundTrip != null && !t.roundTrip.ok) problems += Math.max(1, t.roundTrip.problems.length)
    } else {
      report.transform = m.transform == null ? 'no transform: the state directory is carried over as is' : 'not exercised: give --state DIR'
    }

    for (const p of opts.acceptLoss ?? []) if (!/^\$([.[]|$)/.test(p)) throw new UsageError(`--accept-loss ${p}: not a JSON path; write it as the report does, from $ (e.g. $.updated)`)
    const versions = { previous: previous.manifest, next: m, accepted: opts.acceptLoss }
    const samples = await readSamples(opts.samples, m, versions)
    // a process app's SOs are run again as the daemon runs them: in a worker, from their file
    const processSos: Partial<Record<'past' | 'future', string>> = {}
    const sims: Exclude<CheckReport['simulation'], string> = {}
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
      } else if (samples.samples.length === 0) {
        sims[kind] = 'not exercised: give --samples FILE'
      } else if (samples.kind !== 'sdk') {
        processSos[kind] = path.resolve(dir, ...file.split('/'))
      } else {
        const checked = await sdkRoundTrips(so as CheckedSimulationObject, kind, samples.samples, versions)
        sims[kind] = checked
        problems += checked.mismatches.length
      }
    }
    if (Object.keys(processSos).length > 0 && samples.kind !== 'sdk') {
      // the new version runs on what its `up` made of the sample state (or the sample itself, when it has no transform)
      const transformed = report.transform
      const nextState = m.transform == null || opts.state == null ? opts.state : typeof transformed !== 'string' && transformed.up.ok ? path.join(work, 'transform', 'up') : undefined
      if (m.transform != null && opts.state != null && nextState == null) {
        for (const kind of Object.keys(processSos)) sims[kind] = 'not exercised: the transform failed, so the new version has no state to start on'
      } else {
        const checkedVersions: { previous: CheckedVersion, next: CheckedVersion } = { previous: { manifest: previous.manifest, packageDir: previousDir, state: opts.state }, next: { manifest: m, packageDir: dir, state: nextState } }
        const programs = path.join(work, 'programs')
        const checked = samples.kind === 'http'
          ? await (await import('./check-http.js')).checkHttpSamples({ ...checkedVersions, accepted: opts.acceptLoss, sos: processSos, samples: samples.samples, work: programs })
          : await (await import('./check-tcp.js')).checkTcpSamples({ ...checkedVersions, sos: processSos, samples: samples.samples.map(s => s.sample), work: programs })
        report.samples = checked.answered
        if ('answeredInNew' in checked) report.newProtocolSamples = checked.answeredInNew
        Object.assign(sims, checked.simulation)
        problems += checked.problems
      }
    }
    report.simulation = Object.keys(sims).length === 0 ? 'no simulation objects' : sims
    report.problems = problems

    // the previous version's answers before what the SOs made of them
    if (opts.json === true) sayJson({ version: report.version, previous: report.previous, transform: report.transform, samples: report.samples, newProtocolSamples: report.newProtocolSamples, simulation: report.simulation, problems })
    else sayCheckReport(m.app, report, previous.manifest.protocol)
    if (problems > 0) throw new CheckFailedError(`${problems} problem(s) found`)
    if (opts.json !== true) note('no problems found')
  } finally {
    const { removeTree } = await import('../../store/index.js')
    await removeTree(work)
  }
}
