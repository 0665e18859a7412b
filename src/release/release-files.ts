/**
 * The release book's files: `releases/<id>.cbor` (the signed release) and
 * `releases/<id>.json` (its state on this peer, and a summary of its record, so the book
 * can know every release it holds without reading each record back into memory).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { z } from 'zod'
import { UpgossipError } from '../errors.js'
import { describeSchemaIssues, safeParse } from '../schema.js'
import { writeFileAtomic, writeJsonAtomic } from '../store/index.js'
import { decodeSignedRelease, encodeSignedRelease, releaseId } from './record.js'
import type { SignedRelease } from './record.js'

/** A file of the release store is damaged (it is skipped and reported on load). */
export class ReleaseStoreDamagedError extends UpgossipError {
  static override name = 'ReleaseStoreDamagedError'
}

export const RELEASE_STATES = ['fetching', 'staged', 'waiting', 'upgrading', 'active', 'superseded', 'failed', 'rolled-back', 'revoked', 'refused'] as const

/** Where a release stands on this peer (docs/operator.md, "Peer and release states"). */
export type ReleaseState = typeof RELEASE_STATES[number]

/** States a release does not leave by itself: nothing is under way for it on this peer. */
export const SETTLED_STATES: readonly ReleaseState[] = ['superseded', 'failed', 'rolled-back', 'revoked', 'refused']

/**
 * What the book knows of every release it holds, in memory whether or not the signed
 * release is: enough to list, count and pick releases (a few hundred bytes, where a
 * signed release with its manifest is ~10 KB).
 */
export interface ReleaseSummary {
  id: string
  app: string
  version: string
  state: ReleaseState
  /** Why it was refused or failed. */
  reason?: string
  /** When this peer admitted it (ISO). */
  admitted: string
  /** The record's `size`. */
  size: number
  /** The manifest's protocol version. */
  protocol?: number
  /** Whether the manifest names simulation objects. */
  simulation: boolean
  /** Signatures kept. */
  signers: number
  expires: string
}

/** The summary of a signed release in `state`. */
export function summarize (id: string, signed: SignedRelease, meta: { state: ReleaseState, reason?: string, admitted: string }): ReleaseSummary {
  const r = signed.record
  const manifest = r.manifest as { protocol?: unknown, simulation?: unknown }
  return {
    id,
    app: r.app,
    version: r.version,
    state: meta.state,
    ...(meta.reason == null ? {} : { reason: meta.reason }),
    admitted: meta.admitted,
    size: r.size,
    ...(typeof manifest.protocol === 'number' ? { protocol: manifest.protocol } : {}),
    simulation: manifest.simulation != null,
    signers: signed.signatures.length,
    expires: r.expires
  }
}

const MetaSchema = z.object({
  state: z.enum(RELEASE_STATES),
  reason: z.string().optional(),
  admitted: z.string(),
  // the summary of the record; files written before the book kept a window lack it
  app: z.string().optional(),
  version: z.string().optional(),
  size: z.number().optional(),
  protocol: z.number().optional(),
  simulation: z.boolean().optional(),
  signers: z.number().optional(),
  expires: z.string().optional()
})

/** A `<id>.json` as read: the state, and the summary when the file has one. */
export interface ReleaseMeta {
  state: ReleaseState
  reason?: string
  admitted: string
  summary?: ReleaseSummary
}

/** The release files of one directory. */
export class ReleaseFiles {
  constructor (readonly dir: string) {}

  /** The ids of every release with a record file (a `.json` without its `.cbor` is a half-admitted one, not a release). */
  async ids (): Promise<string[]> {
    await fs.mkdir(this.dir, { recursive: true })
    return (await fs.readdir(this.dir)).filter(n => n.endsWith('.cbor')).map(n => n.slice(0, -'.cbor'.length))
  }

  /** The signed release `id`, checked against its id. */
  async readRecord (id: string): Promise<SignedRelease> {
    const signed = decodeSignedRelease(await fs.readFile(path.join(this.dir, `${id}.cbor`)))
    if ((await releaseId(signed.record)).toString() !== id) throw new ReleaseStoreDamagedError(`${id}.cbor: file name does not match its release id`)
    return signed
  }

  /** The state file of `id`. */
  async readMeta (id: string): Promise<ReleaseMeta> {
    const file = path.join(this.dir, `${id}.json`)
    let json: unknown
    try {
      json = JSON.parse(await fs.readFile(file, 'utf8'))
    } catch (err) {
      throw new ReleaseStoreDamagedError(`${file} is missing or not valid JSON: ${(err as Error).message}`)
    }
    const parsed = safeParse(MetaSchema, json)
    if (!parsed.success) throw new ReleaseStoreDamagedError(describeSchemaIssues(file, parsed.error))
    const m = parsed.data
    const meta: ReleaseMeta = { state: m.state, admitted: m.admitted, ...(m.reason == null ? {} : { reason: m.reason }) }
    if (m.app != null && m.version != null && m.size != null && m.signers != null && m.expires != null) {
      meta.summary = {
        id,
        app: m.app,
        version: m.version,
        state: m.state,
        admitted: m.admitted,
        size: m.size,
        simulation: m.simulation === true,
        signers: m.signers,
        expires: m.expires,
        ...(m.reason == null ? {} : { reason: m.reason }),
        ...(m.protocol == null ? {} : { protocol: m.protocol })
      }
    }
    return meta
  }

  async writeRecord (id: string, signed: SignedRelease): Promise<void> {
    await writeFileAtomic(path.join(this.dir, `${id}.cbor`), encodeSignedRelease(signed))
  }

  /** Write the state file: the summary, whose state and reason are the release's. */
  async writeMeta (summary: ReleaseSummary): Promise<void> {
    const { id: _id, ...meta } = summary
    await writeJsonAtomic(path.join(this.dir, `${summary.id}.json`), meta)
  }

  /** Remove both files, the record first: {@link ids} starts from it, so a crash in between leaves no half release. */
  async remove (id: string): Promise<void> {
    await fs.rm(path.join(this.dir, `${id}.cbor`), { force: true })
    await fs.rm(path.join(this.dir, `${id}.json`), { force: true })
  }
}
