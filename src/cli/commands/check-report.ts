/**
 * What `upgossip check` found, as one object (`--json` prints it as it is) and as lines
 * for people: the transform, each version's answers to a process app's samples in its
 * protocol, and what each simulation object did with the samples.
 */
import type { TransformCheck } from '../../upgrade/index.js'
import { say } from '../output.js'
import type { HttpAnswered, HttpSamplesCheck } from './check-http.js'
import type { ProgramCheck, SimulationSamplesCheck } from './check-program.js'
import type { Mismatch, SdkSimulationCheck } from './check-protocols.js'
import type { TcpSamplesCheck } from './check-tcp.js'

/** What `check` found (the `--json` object). */
export interface CheckReport {
  version: string
  previous: string
  /** The transform's check, or why it was not run. */
  transform: TransformCheck | string
  /** A process app's samples in the previous version's protocol as the previous version's program answered them. */
  samples?: HttpSamplesCheck['answered'] | TcpSamplesCheck['answered']
  /** An HTTP app's samples in the new version's protocol as the new version's program answered them. */
  newProtocolSamples?: HttpAnswered
  /** Each SO's result (an SDK app's: `{ samples, protocols, mismatches }`; a process app's has `newVersion` too, and `previousVersion` for samples in the new protocol), or why it was not exercised. */
  simulation: Record<string, SimulationSamplesCheck | SdkSimulationCheck | { ok: false, error: string } | string> | string
  problems: number
}

/** The samples whose round trip, or whose answer from the other version's program, differed: a line per problem. */
function sayMismatches (list: Mismatch[] | undefined): void {
  for (const mm of list ?? []) for (const p of mm.problems) say(`  sample ${mm.index + 1}${mm.protocol == null ? '' : ` (protocol ${mm.protocol})`}: ${p}`)
}

/** How many samples an SO had, and in which protocols when any is not the previous version's (`4 samples (3 in protocol 1, 1 in protocol 2)`). */
function sampleCount (samples: number, protocols: Record<string, number> | undefined, previousProtocol: number): string {
  const each = Object.entries(protocols ?? {})
  if (each.every(([p]) => Number(p) === previousProtocol)) return `${samples} samples`
  return `${samples} samples (${each.map(([p, n]) => `${n} in protocol ${p}`).join(', ')})`
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

function saySamples (answered: NonNullable<CheckReport['samples']>, label = 'samples'): void {
  if ('error' in answered) {
    say(`${label}: FAILED: ${answered.error}`)
  } else if ('statuses' in answered) {
    say(`${label}: ${answered.statuses.length} HTTP requests, answered by ${answered.by}'s program: ${answered.statuses.join(' ')}`)
  } else {
    const open = answered.ends.filter(e => e === 'quiet').length
    say(`samples: ${answered.received.length} TCP connections, answered by ${answered.by}'s program: ${answered.received.map(n => `${n} bytes`).join(', ')}${open > 0 ? ` (${open} left open by the program, taken once it went quiet)` : ''}`)
  }
}

/** One SO's samples through it to one version's program (`by`), compared with the other's (`than`). */
function sayProgram (kind: string, program: ProgramCheck, by: string, than: string, which: string): void {
  if (typeof program === 'string') say(`${kind} SO with ${by}'s program: ${program}`)
  else if ('error' in program) say(`${kind} SO with ${by}'s program: FAILED: ${program.error}`)
  else {
    say(`${kind} SO with ${by}'s program: ${program.samples} samples${which}, ${program.mismatches.length} answered otherwise than ${than}'s`)
    sayMismatches(program.mismatches)
  }
}

/** Print the report for people, on stdout (`previousProtocol`: the previous version's, which samples are in unless they say otherwise). */
export function sayCheckReport (app: string, report: CheckReport, previousProtocol: number): void {
  say(`checking ${app} ${report.previous} → ${report.version}`)
  sayTransform(report.transform)
  if (report.samples != null) saySamples(report.samples)
  if (report.newProtocolSamples != null) saySamples(report.newProtocolSamples, `samples in ${report.version}'s protocol`)
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
    say(`${kind} SO: ${sampleCount(r.samples, r.protocols, previousProtocol)}, ${r.mismatches.length} did not survive the round trip`)
    sayMismatches(r.mismatches)
    if (!('newVersion' in r)) continue
    sayProgram(kind, r.newVersion, report.version, report.previous, '')
    if (r.previousVersion != null) sayProgram(kind, r.previousVersion, report.previous, report.version, ` in ${report.version}'s protocol`)
  }
  if (Object.keys(sims).length === 0) say('simulation objects: none')
}
