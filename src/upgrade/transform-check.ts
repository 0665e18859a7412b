/**
 * A publisher's check of transforms before a release: `up` on sample state, and
 * where `down` exists, `down(up(state))` compared file by file with the state: JSON files
 * by their values (whitespace and key order aside), other files byte by byte. Module
 * and command transforms run exactly as a daemon runs them.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type { TransformEntry } from '../package/index.js'
import { diffValues } from '../shim/index.js'
import { copyTree, setWritable } from '../store/index.js'
import { runTransform } from './transform.js'

/** Every file under `dir` with its bytes, by relative path. */
async function files (dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!e.isFile()) continue
    const file = path.join(e.parentPath, e.name)
    out.set(path.relative(dir, file), await fs.readFile(file))
  }
  return out
}

/** The file's value when it is JSON (UTF-8, any whitespace), else undefined. */
function jsonValue (bytes: Buffer): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) }
  } catch {
    return undefined
  }
}

/**
 * How two versions of one file differ, or undefined when they do not: two JSON files by
 * value, with the first path that differs and both values (`.items[2].ts: 17 → missing`);
 * anything else by the first byte that differs (`byte 12: 0x41 → 0x42`).
 */
export function diffFile (before: Buffer, after: Buffer): string | undefined {
  const a = jsonValue(before)
  const b = jsonValue(after)
  if (a != null && b != null) {
    const paths = diffValues(a.value, b.value)
    if (paths.length === 0) return undefined
    return `${(paths[0] ?? '').replace(/^\(whole value\)/, 'the whole value')}${paths.length > 1 ? ` (and ${paths.length - 1} more difference${paths.length > 2 ? 's' : ''})` : ''}`
  }
  if (before.equals(after)) return undefined
  let at = 0
  while (at < before.length && at < after.length && before[at] === after[at]) at++
  const byte = (buf: Buffer): string => at < buf.length ? `0x${(buf[at] ?? 0).toString(16).padStart(2, '0')}` : 'end of file'
  const sizes = before.length === after.length ? '' : `; ${before.length} bytes → ${after.length}`
  return `byte ${at}: ${byte(before)} → ${byte(after)}${sizes}`
}

/**
 * The files that differ between two directories: missing on one side, or different
 * content (see {@link diffFile}): `data.json: differs after the round trip, first at .b: "two" → missing`.
 */
export async function diffTrees (a: string, b: string): Promise<string[]> {
  const left = await files(a)
  const right = await files(b)
  const out: string[] = []
  for (const [name, bytes] of left) {
    const other = right.get(name)
    const diff = other == null ? undefined : diffFile(bytes, other)
    if (other == null) out.push(`${name}: missing after the round trip`)
    else if (diff != null) out.push(`${name}: differs after the round trip, first at ${diff}`)
  }
  for (const name of right.keys()) if (!left.has(name)) out.push(`${name}: appeared in the round trip`)
  return out.sort()
}

/** What checking the transforms found. */
export interface TransformCheck {
  up: { ok: boolean, files?: number, error?: string }
  roundTrip?: { ok: boolean, problems: string[], error?: string }
}

/** Run `up` (and `down` after it, when there is one) on a copy of `state`, in `work`. */
export async function checkTransforms (opts: { packageDir: string, up: TransformEntry, down?: TransformEntry, state: string, work: string, fromVersion: string, toVersion: string, limitMs?: number }): Promise<TransformCheck> {
  const logFile = path.join(opts.work, 'transform.log')
  const upOut = path.join(opts.work, 'up')
  // like a daemon: the transform gets a read-only copy, never the publisher's sample itself
  const state = path.join(opts.work, 'state')
  await fs.mkdir(opts.work, { recursive: true })
  await copyTree(opts.state, state)
  await setWritable(state, false)
  try {
    await runTransform({ packageDir: opts.packageDir, entry: opts.up, from: state, to: upOut, fromVersion: opts.fromVersion, toVersion: opts.toVersion, logFile, limitMs: opts.limitMs })
  } catch (err) {
    return { up: { ok: false, error: (err as Error).message } }
  }
  const result: TransformCheck = { up: { ok: true, files: (await files(upOut)).size } }
  if (opts.down == null) return result
  const downOut = path.join(opts.work, 'down')
  try {
    await runTransform({ packageDir: opts.packageDir, entry: opts.down, from: upOut, to: downOut, fromVersion: opts.toVersion, toVersion: opts.fromVersion, logFile, limitMs: opts.limitMs })
  } catch (err) {
    result.roundTrip = { ok: false, problems: [], error: (err as Error).message }
    return result
  }
  const problems = await diffTrees(opts.state, downOut)
  result.roundTrip = { ok: problems.length === 0, problems }
  return result
}
