/**
 * What `upgossip check` found, as one object (`--json` prints it as it is) and as lines
 * for people: the transform, the previous version's answers to a process app's samples,
 * and what each simulation object did with the samples.
 */
import type { TransformCheck } from '../../upgrade/index.js'
import { say } from '../output.js'
import type { HttpSamplesCheck } from './check-http.js'
import type { SimulationSamplesCheck } from './check-program.js'
import type { TcpSamplesCheck } from './check-tcp.js'

/** Samples whose round trip, or whose answer from the new version's program, differed. */
type Mismatches = Array<{ index: number, problems: string[] }>

/** What `check` found (the `--json` object). */
export interface CheckReport {
  version: string
  previous: string
  /** The transform's check, or why it was not run. */
  transform: TransformCheck | string
  /** A process app's samples as the previous version's program answered them. */
  samples?: HttpSamplesCheck['answered'] | TcpSamplesCheck['answered']
  /** Each SO's result (an SDK app's: `{ samples, mismatches }`; a process app's has `newVersion` too), or why it was not exercised. */
  simulation: Record<string, SimulationSamplesCheck | { samples: number, mismatches: Mismatches } | { ok: false, error: string } | string> | string
  problems: number
}

function sayMismatches (list: Mismatches | undefined): void {
  for (const mm of list ?? []) for (const p of mm.problems) say(`  sample ${mm.index + 1}: ${p}`)
}

function sayTransform (t: CheckReport['transform']): void {
  if (typeof t === 'string') {
    say(`transform: ${t}`)
    return
  }
  say(`transform up: ${t.up.ok ? `ok (${t.up.files ?? 0} files)` : `FAILED: ${t.up.error ?? ''}`}`)
  if (t.roundTrip != null) {
    say(`down(up(state)) == state: ${t.roundTrip.ok ? 'ok' : `NO${t.roundTrip.error != null ? `: ${t.roundTrip.error}` : ''}`}`)
    for (const p of t.roundTrip.problems) say(`  ${p}`)
  }
}

function saySamples (answered: NonNullable<CheckReport['samples']>): void {
  if ('error' in answered) {
    say(`samples: FAILED: ${answered.error}`)
  } else if ('statuses' in answered) {
    say(`samples: ${answered.statuses.length} HTTP requests, answered by ${answered.by}'s program: ${answered.statuses.join(' ')}`)
  } else {
    const open = answered.ends.filter(e => e === 'quiet').length
    say(`samples: ${answered.received.length} TCP connections, answered by ${answered.by}'s program: ${answered.received.map(n => `${n} bytes`).join(', ')}${open > 0 ? ` (${open} left open by the program, taken once it went quiet)` : ''}`)
  }
}

/** Print the report for people, on stdout. */
export function sayCheckReport (app: string, report: CheckReport): void {
  say(`checking ${app} ${report.previous} → ${report.version}`)
  sayTransform(report.transform)
  if (report.samples != null) saySamples(report.samples)
  const sims = typeof report.simulation === 'string' ? {} : report.simulation
  for (const [kind, r] of Object.entries(sims)) {
    if (typeof r === 'string') {
      say(`${kind} SO: ${r}`)
      continue
    }
    if ('error' in r) {
      say(`${kind} SO: FAILED: ${r.error}`)
      continue
    }
    say(`${kind} SO: ${r.samples} samples, ${r.mismatches.length} did not survive the round trip`)
    sayMismatches(r.mismatches)
    const nv = 'newVersion' in r ? r.newVersion : undefined
    if (nv == null) continue
    if (typeof nv === 'string') say(`${kind} SO with ${report.version}'s program: ${nv}`)
    else if ('error' in nv) say(`${kind} SO with ${report.version}'s program: FAILED: ${nv.error}`)
    else {
      say(`${kind} SO with ${report.version}'s program: ${nv.samples} samples, ${nv.mismatches.length} answered otherwise than ${report.previous}'s`)
      sayMismatches(nv.mismatches)
    }
  }
  if (Object.keys(sims).length === 0) say('simulation objects: none')
}
