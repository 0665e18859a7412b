/**
 * One daemon's footprint: bytes under its data directory by folder, and its resident
 * memory from `/proc/<pid>/status`.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { residentBytes } from '#src/testnet/index.js'

/** Bytes of a data directory, by what holds them. */
export interface DiskUse {
  /** `blocks/`: the block store. */
  blocks: number
  /** `packages/`: unpacked packages. */
  packages: number
  /** `state/`: the app's state directories, one per version kept. */
  state: number
  /** `events.jsonl` and `app.log`, and the files they were rotated into (`events.1.jsonl`, `app.1.log`, …). */
  logs: number
  /** `releases/`: the release book's records and state files, and the revocations (an addition to the JSON the contract names). */
  records: number
  /** The whole data directory. */
  total: number
}

/** One sample of the churn's JSON. */
export interface ChurnSample {
  /** Releases published so far. */
  release: number
  peer: string
  disk: DiskUse
  /** Resident set size of the daemon process, MiB (null where /proc is not there). */
  rssMB: number | null
}

/** Sum of the apparent sizes of the files under `p` (a file: its size; missing: 0). Files vanish while we walk: a switch removes old packages. */
export async function bytesUnder (p: string): Promise<number> {
  let st
  try {
    st = await fs.lstat(p)
  } catch {
    return 0
  }
  if (!st.isDirectory()) return st.size
  let sum = 0
  for (const name of await fs.readdir(p).catch(() => [] as string[])) sum += await bytesUnder(path.join(p, name))
  return sum
}

/** Bytes of `dataDir` by folder. */
export async function diskUse (dataDir: string): Promise<DiskUse> {
  const names = await fs.readdir(dataDir).catch(() => [] as string[])
  const logNames = names.filter(n => /^events(\.\d+)?\.jsonl$/.test(n) || /^app(\.\d+)?\.log$/.test(n))
  let logs = 0
  for (const n of logNames) logs += await bytesUnder(path.join(dataDir, n))
  return {
    blocks: await bytesUnder(path.join(dataDir, 'blocks')),
    packages: await bytesUnder(path.join(dataDir, 'packages')),
    state: await bytesUnder(path.join(dataDir, 'state')),
    logs,
    records: await bytesUnder(path.join(dataDir, 'releases')),
    total: await bytesUnder(dataDir)
  }
}

/** A sample of one daemon. */
export async function sampleDaemon (release: number, peer: string, dataDir: string, pid: number | undefined): Promise<ChurnSample> {
  const rss = pid == null ? undefined : await residentBytes(pid)
  return { release, peer, disk: await diskUse(dataDir), rssMB: rss == null ? null : Math.round(rss / 1024 / 1024 * 10) / 10 }
}
