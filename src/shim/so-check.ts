/**
 * A publisher's check of simulation objects before a release: sample requests and
 * responses of the previous version go through an SO both ways, and every field that
 * does not survive the round trip is reported.
 */

/** The shape of a simulation object (docs/shim.md). */
export interface CheckedSimulationObject {
  version: number
  serve: (request: unknown, local: (request: unknown) => Promise<unknown>) => unknown
  call: (request: unknown, remote: (request: unknown) => Promise<unknown>) => unknown
}

/** A sample exchange in the previous version's format. */
export interface Sample {
  request: unknown
  response: unknown
}

/** The paths where two values differ, with both sides: `.items[2].name: "a" → "b"`. */
export function diffValues (a: unknown, b: unknown, at = ''): string[] {
  if (Object.is(a, b)) return []
  const isObj = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object'
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: string[] = []
    for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...diffValues(a[i], b[i], `${at}[${i}]`))
    return out
  }
  if (isObj(a) && isObj(b) && !Array.isArray(a) && !Array.isArray(b)) {
    const out: string[] = []
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) out.push(...diffValues(a[key], b[key], `${at}.${key}`))
    return out
  }
  const show = (v: unknown): string => v === undefined ? 'missing' : JSON.stringify(v) ?? String(v)
  return [`${at === '' ? '(whole value)' : at}: ${show(a)} → ${show(b)}`]
}

/** What one sample did. */
export interface SampleResult {
  index: number
  problems: string[]
}

/**
 * What of a request or response is compared: the value itself by default; for HTTP
 * messages, say, the fields that must survive (bodies as text, not every header).
 */
export type SampleView = (value: unknown, side: 'request' | 'response', sample: Sample) => unknown

/**
 * Round-trip each sample through `so`. For a past SO (shipped with the new version,
 * speaking the previous one): the request is served (previous → new), then called back
 * (new → previous) to a remote that answers with the sample response. For a future SO
 * (shipped with the new version, loaded by previous-version nodes) the same, the other
 * way round. What comes out must equal what went in, as `view` shows them.
 */
export async function roundTrip (so: CheckedSimulationObject, kind: 'past' | 'future', samples: Sample[], view: SampleView = value => value): Promise<SampleResult[]> {
  const results: SampleResult[] = []
  for (const [index, sample] of samples.entries()) {
    const problems: string[] = []
    let requestBack: unknown
    try {
      const answer = async (req: unknown): Promise<unknown> => { requestBack = req; return sample.response }
      const response = kind === 'past'
        ? await so.serve(sample.request, async translated => await so.call(translated, answer))
        : await so.call(sample.request, async translated => await so.serve(translated, answer))
      problems.push(...diffValues(view(sample.request, 'request', sample), view(requestBack, 'request', sample)).map(d => `request ${d}`))
      problems.push(...diffValues(view(sample.response, 'response', sample), view(response, 'response', sample)).map(d => `response ${d}`))
    } catch (err) {
      problems.push(`threw: ${(err as Error).message}`)
    }
    results.push({ index, problems })
  }
  return results
}
