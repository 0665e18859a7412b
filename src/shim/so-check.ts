/**
 * A publisher's check of simulation objects before a release: sample requests and
 * responses, written in either version's protocol, go through an SO both ways, and every
 * field that does not survive the round trip is reported.
 */

/** The shape of a simulation object (docs/shim.md). */
export interface CheckedSimulationObject {
  version: number
  serve: (request: unknown, local: (request: unknown) => Promise<unknown>) => unknown
  call: (request: unknown, remote: (request: unknown) => Promise<unknown>) => unknown
}

/** A sample exchange, in one version's protocol; without a response, only the request is checked. */
export interface Sample {
  request: unknown
  response?: unknown
}

/** One place where two values differ: its path (`.items[2].ts`; `''` for the whole value) and both sides (undefined: missing there). */
export interface FieldDifference {
  path: string
  before: unknown
  after: unknown
}

const isRecord = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v)

/** Every path where two values differ, compared structurally (arrays by index, objects by key, key order aside). */
export function diffFields (a: unknown, b: unknown, at = ''): FieldDifference[] {
  if (Object.is(a, b)) return []
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: FieldDifference[] = []
    for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...diffFields(a[i], b[i], `${at}[${i}]`))
    return out
  }
  if (isRecord(a) && isRecord(b)) {
    const out: FieldDifference[] = []
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) out.push(...diffFields(a[key], b[key], `${at}.${key}`))
    return out
  }
  return [{ path: at, before: a, after: b }]
}

/** A value as a difference shows it: its JSON, or `missing`. */
export function showValue (v: unknown): string {
  return v === undefined ? 'missing' : JSON.stringify(v) ?? String(v)
}

/** One difference as a line: `.items[2].name: "a" → "b"`. */
export function describeDifference (d: FieldDifference): string {
  return `${d.path === '' ? '(whole value)' : d.path}: ${showValue(d.before)} → ${showValue(d.after)}`
}

/** The paths where two values differ, with both sides: `.items[2].name: "a" → "b"`. */
export function diffValues (a: unknown, b: unknown): string[] {
  return diffFields(a, b).map(describeDifference)
}

/** What one sample did. */
export interface SampleResult {
  index: number
  problems: string[]
}

/** A difference in the request or the response of one sample. */
export interface SideDifference extends FieldDifference {
  side: 'request' | 'response'
}

/** What one sample's round trip did: its problems as lines, and the differences they come from (none when the SO threw). */
export interface RoundTripResult extends SampleResult {
  differences: SideDifference[]
}

/**
 * What of a request or response is compared: the value itself by default; for HTTP
 * messages, say, the fields that must survive (bodies as text, not every header).
 */
export type SampleView = (value: unknown, side: 'request' | 'response', sample: Sample) => unknown

/** Thrown at the far end of a round trip whose sample has no response: the request has arrived, which is all there is to check. */
class NoResponse extends Error {}

/**
 * Round-trip each sample, written in protocol `protocol`, through `so`. A sample in the
 * SO's own version (a previous-version request through a past SO, a new-version one
 * through a future SO) is served first: it arrives at a node that speaks it through the
 * SO, and goes on, translated, to its own version's side (`local`), where the SO's `call`
 * sends it out again in that version (`remote`) to a peer that answers with the sample
 * response. A sample in the other protocol is called first, then served, the other way
 * round. What comes out must equal what went in, as `view` shows them.
 */
export async function roundTrip (so: CheckedSimulationObject, samples: Sample[], opts: { protocol: number, view?: SampleView }): Promise<RoundTripResult[]> {
  const view = opts.view ?? (value => value)
  const results: RoundTripResult[] = []
  for (const [index, sample] of samples.entries()) {
    const problems: string[] = []
    const differences: SideDifference[] = []
    const answered = sample.response !== undefined
    let requestBack: unknown
    let arrived = false
    try {
      const answer = async (req: unknown): Promise<unknown> => {
        requestBack = req
        arrived = true
        if (!answered) throw new NoResponse()
        return sample.response
      }
      const through = opts.protocol === so.version
        ? async () => await so.serve(sample.request, async translated => await so.call(translated, answer))
        : async () => await so.call(sample.request, async translated => await so.serve(translated, answer))
      const response = await through().catch(err => {
        // without a response the SO's answer is not looked at, whatever it made of the missing one
        if (!answered && arrived) return undefined
        throw err
      })
      differences.push(...diffFields(view(sample.request, 'request', sample), view(requestBack, 'request', sample)).map(d => ({ side: 'request' as const, ...d })))
      if (answered) differences.push(...diffFields(view(sample.response, 'response', sample), view(response, 'response', sample)).map(d => ({ side: 'response' as const, ...d })))
      problems.push(...differences.map(d => `${d.side} ${describeDifference(d)}`))
    } catch (err) {
      problems.push(`threw: ${(err as Error).message}`)
    }
    results.push({ index, problems, differences })
  }
  return results
}
