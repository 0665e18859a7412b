/**
 * The `--samples` file of `upgossip check`: JSON lines, each one sample in the form the
 * new version's kind of app takes (an SDK app's exchange, an HTTP app's request, a TCP
 * app's connection), written in the protocol its `"protocol"` names, the previous
 * version's when it names none. A line that is not a sample is refused, naming it.
 *
 * @example
 * ```ts
 * const samples = await readSamples('samples.jsonl', next.manifest, versions)
 * if (samples.kind === 'sdk') for (const { index, protocol, sample } of samples.samples) …
 * ```
 */
import fs from 'node:fs/promises'
import { UpgossipError } from '../../errors.js'
import type { HttpRequestMessage } from '../../host/index.js'
import type { Manifest } from '../../package/index.js'
import type { Sample } from '../../shim/index.js'
import { inNewProtocol, readProtocolTag } from './check-protocols.js'
import type { SampleVersions, Tagged } from './check-protocols.js'

/** The check found a mismatch or a failure, or was given samples it cannot read. */
export class CheckFailedError extends UpgossipError {
  static override name = 'CheckFailedError'
}

/** The samples of `--samples`, by what the new version is: an SDK app's exchanges, an HTTP app's requests, a TCP app's connections. */
export type Samples =
  | { kind: 'sdk', samples: Array<Tagged<Sample>> }
  | { kind: 'http', samples: Array<Tagged<HttpRequestMessage>> }
  | { kind: 'tcp', samples: Array<Tagged<Uint8Array>> }

/** An SDK app's sample: `{ "request": …, "response"?: … }`. */
function toSdkSample (value: unknown): Sample {
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new Error('this is not an object')
  if (!('request' in value)) throw new Error('it has no "request"')
  const { request, response } = value as Record<string, unknown>
  return response === undefined ? { request } : { request, response }
}

/** Read `--samples` (JSON lines) as samples of `m`'s kind, each tagged with its protocol (`versions`: the two the check compares). */
export async function readSamples (file: string | undefined, m: Manifest, versions: SampleVersions): Promise<Samples> {
  if (file == null) return m.run == null ? { kind: 'sdk', samples: [] } : m.run.wire === 'http' ? { kind: 'http', samples: [] } : { kind: 'tcp', samples: [] }
  const lines = (await fs.readFile(file, 'utf8')).split('\n').map((l, i) => ({ l, line: i + 1 })).filter(({ l }) => l.trim() !== '').map(({ l, line }) => {
    let value: unknown
    try {
      value = JSON.parse(l)
    } catch {
      throw new CheckFailedError(`${file} line ${line} is not JSON`)
    }
    try {
      return { ...readProtocolTag(value, versions), line }
    } catch (err) {
      throw new CheckFailedError(`${file} line ${line}: ${(err as Error).message}`)
    }
  })
  const each = <T>(what: string, parse: (value: unknown) => T): Array<Tagged<T>> => lines.map(({ value, protocol, line }, index) => {
    try {
      return { index, protocol, sample: parse(value) }
    } catch (err) {
      throw new CheckFailedError(`${file} line ${line}: ${what}: ${(err as Error).message}`)
    }
  })
  if (m.run == null) return { kind: 'sdk', samples: each('an SDK app\'s sample is an object {"request": …, "response": …}', toSdkSample) }
  if (m.run.wire === 'http') {
    const { toHttpRequest } = await import('../../host/index.js')
    // answered by the program of the version whose protocol the sample is in
    return {
      kind: 'http',
      samples: each('a process app\'s sample is an HTTP request {"method", "path", "headers", "body"} with the body as text (or as JSON)', value => {
        const body = (value as Record<string, unknown> | null)?.body
        return toHttpRequest(body == null || typeof body === 'string' ? value : { ...(value as object), body: JSON.stringify(body) })
      })
    }
  }
  const tagged = lines.find(l => inNewProtocol(l.protocol, versions))
  if (tagged != null) throw new CheckFailedError(`${file} line ${tagged.line}: a TCP app's samples are replayed in ${versions.previous.version}'s protocol (${versions.previous.protocol}) only, not yet in ${versions.next.version}'s (${tagged.protocol}); leave this sample out, or write it in protocol ${versions.previous.protocol}`)
  const { toStreamSample } = await import('./check-streams.js')
  return { kind: 'tcp', samples: each('a TCP app\'s sample is what a client sends on one connection', toStreamSample) }
}
