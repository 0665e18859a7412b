/**
 * `upgossip check --classes RELEASE…`: the releases of several apps (classes of node), each
 * a bundle or a package directory, checked for the calls between them during their
 * rollouts (shim/'s {@link checkClassCalls}); the report for people or as JSON.
 *
 * @example
 * ```sh
 * upgossip check --classes store-1.0.0.car store-2.0.0.car client-1.0.0.car ./client-v2
 * ```
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { Manifest } from '../../package/index.js'
import type { ClassCall, ClassCallsReport } from '../../shim/index.js'
import { readBundleFile, say, sayJson } from '../output.js'

/** The manifest of one input: a package directory's `upgossip.json` (its files checked as `pack` does), or a bundle's record. */
async function manifestOf (input: string): Promise<Manifest> {
  const { MANIFEST_FILE, packDirectory, parseManifest, readManifestBytes } = await import('../../package/index.js')
  if ((await fs.stat(input).catch(() => undefined))?.isDirectory() === true) {
    const file = path.join(input, MANIFEST_FILE)
    // read first, so a bad manifest is named with its directory
    const bytes = await fs.readFile(file).catch(() => undefined)
    if (bytes != null) readManifestBytes(bytes, file)
    const { MemoryBlockStore } = await import('../../store/index.js')
    return (await packDirectory(input, new MemoryBlockStore())).manifest
  }
  const { readBundle } = await import('../../release/index.js')
  const bundle = await readBundle(await readBundleFile(input))
  return parseManifest(bundle.signed.record.manifest, `${input}: ${MANIFEST_FILE}`)
}

/** The lines of one combination, under its caller's heading. */
function sayCombination (c: ClassCall): void {
  const callee = `${c.callee.app} ${c.callee.version}`
  if (c.result === 'ok') say(`  ${callee}: ok (${c.via ?? ''})`)
  else if (c.result === 'never-meet') say(`  ${callee}: never meet (${c.reason ?? ''})`)
  else {
    say(`  ${callee}: CANNOT: ${c.reason ?? ''}`)
    for (const [i, fix] of (c.fixes ?? []).entries()) say(`    ${i === 0 ? 'fix:' : 'or: '} ${fix}`)
  }
}

/** Print the report for people, on stdout. */
export function sayClassCallsReport (report: ClassCallsReport): void {
  const apps = Object.entries(report.apps)
  say(`checking calls between classes: ${apps.map(([app, versions]) => `${app} ${versions.map(v => v.version).join(', ')}`).join('; ')}`)
  for (const w of report.warnings) say(`warning: ${w}`)
  const called = new Set(report.combinations.map(c => c.callee.app))
  for (const [app, versions] of apps) {
    for (const v of versions) {
      if (v.neverRuns != null) say(`${app} ${v.version} never runs: ${v.neverRuns}`)
      else if (called.has(app)) say(`${app} ${v.version} serves ${v.serves.map(s => `${s.protocol} (${s.via})`).join(', ')}`)
    }
  }
  if (report.combinations.length === 0) say('no release calls another app')
  let heading = ''
  for (const c of report.combinations) {
    const h = `${c.caller.app} ${c.caller.version} → ${c.callee.app}, protocol ${c.protocol}:`
    if (h !== heading) say(heading = h)
    sayCombination(c)
  }
  const failing = report.combinations.filter(c => c.result === 'fails').length
  const ok = report.combinations.filter(c => c.result === 'ok').length
  say(`${ok} combination(s) can talk, ${failing} cannot, ${report.combinations.length - ok - failing} never meet`)
}

/** Read the releases `inputs`, check the calls between them, print the report; resolves with how many combinations cannot talk. */
export async function checkClasses (inputs: string[], json: boolean): Promise<number> {
  const { checkClassCalls } = await import('../../shim/index.js')
  const manifests: Manifest[] = []
  for (const input of inputs) manifests.push(await manifestOf(input))
  const report = checkClassCalls(manifests)
  if (json) sayJson(report)
  else sayClassCallsReport(report)
  return report.problems
}
