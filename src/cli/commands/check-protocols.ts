/**
 * Samples in either version's protocol, for `upgossip check`: the `"protocol"` tag of a
 * `--samples` line (absent: the previous version's), the samples grouped by it, and how a
 * sample's differences are reported. A sample of the previous version's protocol keeps the
 * report's first wording (`request .value: 3.14159 → 3.14`); one of the new version's, which
 * a new-version peer sends towards the previous version, is reported field by field as a
 * JSON path, with the way it went (`request field $.ts does not survive the future SO
 * (2.0.0 → 1.0.0 → 2.0.0): sent 1700000000, came back missing`).
 *
 * @example
 * ```ts
 * const { protocol, value } = readProtocolTag({ protocol: 2, request: { ts: 1 } }, versions) // 2, { request: { ts: 1 } }
 * const mismatches = await sdkRoundTrips(so, 'future', samples, versions)
 * ```
 */
import { describeDifference, roundTrip, showValue } from '../../shim/index.js'
import type { CheckedSimulationObject, FieldDifference, RoundTripResult, Sample, SampleResult, SideDifference } from '../../shim/index.js'

/** The two versions a check compares, as far as their protocols go. */
export interface SampleVersions {
  previous: { version: string, protocol: number }
  next: { version: string, protocol: number }
  /** JSON paths (`$.updated`) whose loss or change the publisher accepts (`--accept-loss`): a difference at or under one is not a problem. */
  accepted?: string[]
}

/** True when `path` (`$.a.b`) is at or under a path the publisher accepts. */
function isAccepted (path: string, versions: SampleVersions): boolean {
  return (versions.accepted ?? []).some(a => path === a || path.startsWith(`${a}.`) || path.startsWith(`${a}[`))
}

/** The differences the publisher has not accepted. */
function notAccepted<T extends FieldDifference> (differences: T[], versions: SampleVersions): T[] {
  return differences.filter(d => !isAccepted(`$${d.path}`, versions))
}

/** One sample of `--samples`: its place among the samples (`sample 3` is index 2) and the protocol it is written in. */
export interface Tagged<T> {
  index: number
  protocol: number
  sample: T
}

/** A field that did not come back the same, in the `--json` report: its JSON path, what was expected and what came (absent: missing). */
export interface FieldReport {
  side: 'request' | 'response'
  path: string
  expected?: unknown
  got?: unknown
}

/** One sample's problems in the report; a sample of the new version's protocol says so, and names its fields. */
export interface Mismatch extends SampleResult {
  protocol?: number
  fields?: FieldReport[]
}

/**
 * The protocol a sample line is written in (its `"protocol"`, else the previous
 * version's), and the line without the tag. Throws, saying why, for a protocol that is
 * neither version's.
 */
export function readProtocolTag (value: unknown, versions: SampleVersions): { protocol: number, value: unknown } {
  const { previous, next } = versions
  if (value == null || typeof value !== 'object' || Array.isArray(value) || !('protocol' in value)) return { protocol: previous.protocol, value }
  const { protocol, ...rest } = value as Record<string, unknown>
  if (protocol !== previous.protocol && protocol !== next.protocol) {
    throw new Error(`"protocol": ${showValue(protocol)} is neither ${previous.version}'s protocol (${previous.protocol}) nor ${next.version}'s (${next.protocol})`)
  }
  return { protocol, value: rest }
}

/** True for samples written in the new version's protocol (and not also the previous one's). */
export function inNewProtocol (protocol: number, versions: SampleVersions): boolean {
  return protocol !== versions.previous.protocol
}

/** The samples of each protocol, in their order: the previous version's protocol first. */
export function byProtocol<T> (samples: Array<Tagged<T>>): Array<[number, Array<Tagged<T>>]> {
  const groups = new Map<number, Array<Tagged<T>>>()
  for (const s of samples) groups.set(s.protocol, [...(groups.get(s.protocol) ?? []), s])
  return [...groups].sort(([a], [b]) => a - b)
}

/** How many samples each protocol has (`{ "1": 3, "2": 1 }`). */
export function countByProtocol (samples: Array<Tagged<unknown>>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of samples) out[s.protocol] = (out[s.protocol] ?? 0) + 1
  return out
}

/** A difference's path as JSON path: `$.items[2].ts`, `$` for the whole value. */
const jsonPath = (d: FieldDifference): string => `$${d.path}`

/** A difference in the report's JSON, without the sides that are missing. */
function fieldReport (d: SideDifference): FieldReport {
  return { side: d.side, path: jsonPath(d), ...(d.before === undefined ? {} : { expected: d.before }), ...(d.after === undefined ? {} : { got: d.after }) }
}

/** The versions a sample of `protocol` goes through: the one it is written for, and the other. */
function sidesOf (protocol: number, versions: SampleVersions): { home: string, other: string } {
  return inNewProtocol(protocol, versions)
    ? { home: versions.next.version, other: versions.previous.version }
    : { home: versions.previous.version, other: versions.next.version }
}

/** A sample's round trip through the SO of `kind` as a mismatch of the report, or undefined when everything came back. */
export function roundTripMismatch (found: RoundTripResult, tagged: Tagged<unknown>, kind: 'past' | 'future', versions: SampleVersions): Mismatch | undefined {
  if (found.problems.length === 0) return undefined
  // every difference one the publisher accepts: nothing to report (a failure without differences still is)
  const differences = notAccepted(found.differences, versions)
  if (found.differences.length > 0 && differences.length === 0) return undefined
  const result = { ...found, differences }
  if (!inNewProtocol(tagged.protocol, versions)) return { index: tagged.index, problems: result.problems }
  const { home, other } = sidesOf(tagged.protocol, versions)
  const way = `the ${kind} SO (${home} → ${other} → ${home})`
  const problems = result.differences.length > 0
    ? result.differences.map(d => d.before === undefined
      ? `${d.side} field ${jsonPath(d)} appears on the way through ${way}: not sent, came back ${showValue(d.after)}`
      : `${d.side} field ${jsonPath(d)} does not survive ${way}: sent ${showValue(d.before)}, came back ${showValue(d.after)}`)
    : result.problems
  return { index: tagged.index, protocol: tagged.protocol, problems, ...(result.differences.length > 0 ? { fields: result.differences.map(fieldReport) } : {}) }
}

/**
 * Where the answer a caller gets through the SO of `kind` and the other version's program
 * differs from the answer of the version the sample is written for, as a mismatch of the
 * report (undefined when it does not): `before` that version's own answer, `after` the
 * caller's.
 */
export function answerMismatch (found: FieldDifference[], tagged: Tagged<unknown>, kind: 'past' | 'future', versions: SampleVersions): Mismatch | undefined {
  const differences = notAccepted(found, versions)
  if (differences.length === 0) return undefined
  if (!inNewProtocol(tagged.protocol, versions)) {
    return { index: tagged.index, problems: differences.map(d => `response ${describeDifference(d)}`) }
  }
  const { home, other } = sidesOf(tagged.protocol, versions)
  return {
    index: tagged.index,
    protocol: tagged.protocol,
    problems: differences.map(d => `response field ${jsonPath(d)} differs through the ${kind} SO: ${home}'s program answers ${showValue(d.before)}, ${other}'s answer comes back as ${showValue(d.after)}`),
    fields: differences.map(d => fieldReport({ side: 'response', ...d }))
  }
}

/** A sample that failed (an SO threw, a program did not answer) as a mismatch of the report. */
export function sampleFailure (tagged: Tagged<unknown>, problem: string, versions: SampleVersions): Mismatch {
  return { index: tagged.index, ...(inNewProtocol(tagged.protocol, versions) ? { protocol: tagged.protocol } : {}), problems: [problem] }
}

/** What one SO did with an SDK app's samples. */
export interface SdkSimulationCheck {
  samples: number
  /** How many samples each protocol has. */
  protocols: Record<string, number>
  mismatches: Mismatch[]
}

/**
 * An SDK app's samples through one SO both ways, each in its own protocol: a sample of
 * the new version's protocol goes from a new-version node to a previous-version one and
 * back, and so must every field of its request (and of its response, when the sample
 * gives the new version's answer).
 */
export async function sdkRoundTrips (so: CheckedSimulationObject, kind: 'past' | 'future', samples: Array<Tagged<Sample>>, versions: SampleVersions): Promise<SdkSimulationCheck> {
  const mismatches: Mismatch[] = []
  for (const [protocol, group] of byProtocol(samples)) {
    const results = await roundTrip(so, group.map(s => s.sample), { protocol })
    for (const [i, result] of results.entries()) {
      const mismatch = roundTripMismatch(result, group[i] as Tagged<Sample>, kind, versions)
      if (mismatch != null) mismatches.push(mismatch)
    }
  }
  return { samples: samples.length, protocols: countByProtocol(samples), mismatches: mismatches.sort((a, b) => a.index - b.index) }
}
