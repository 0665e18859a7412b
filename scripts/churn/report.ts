/**
 * The churn's figures for docs/churn.md: two SVG charts (disk by folder, resident memory,
 * over the releases published) and a markdown table of the samples, made from a run's
 * JSON (`npm run -s churn -- … --json > run.json`, then
 * `node scripts/churn.ts --report run.json --out docs/churn`).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { lineChart } from '../bench/svg.ts'
import type { Series } from '../bench/svg.ts'
import type { ChurnSample } from './footprint.ts'

/** What the report reads of a run. */
export interface ChurnRun {
  releases: number
  peers: number
  samples: ChurnSample[]
}

/** Bytes the folders named in a sample do not cover: keys, journal, node state, control files. */
export function otherBytes (s: ChurnSample): number {
  return s.disk.total - s.disk.blocks - s.disk.packages - s.disk.state - s.disk.logs - s.disk.records
}

/** The mean over the daemons of `f`, per release sampled. */
function meanBy (run: ChurnRun, f: (s: ChurnSample) => number): Array<[number, number]> {
  const byRelease = new Map<number, number[]>()
  for (const s of run.samples) byRelease.set(s.release, [...(byRelease.get(s.release) ?? []), f(s)])
  return [...byRelease].map(([r, v]) => [r, v.reduce((a, b) => a + b, 0) / v.length])
}

const KiB = (n: number): number => Math.round(n / 1024 * 10) / 10

/** The disk chart: the mean daemon's bytes by folder. */
export function diskChart (run: ChurnRun): string {
  const parts: Array<[string, (s: ChurnSample) => number]> = [
    ['total', s => s.disk.total], ['logs', s => s.disk.logs], ['records', s => s.disk.records], ['other', otherBytes],
    ['blocks', s => s.disk.blocks], ['packages', s => s.disk.packages], ['state', s => s.disk.state]
  ]
  const series: Series[] = parts.map(([name, f]) => ({ name, points: meanBy(run, s => KiB(f(s))) }))
  return lineChart({ title: `Disk of a daemon over ${run.releases} releases (mean of ${run.peers})`, x: 'releases published', y: 'KiB', series })
}

/** The memory chart: each daemon's RSS. */
export function rssChart (run: ChurnRun): string {
  const peers = [...new Set(run.samples.map(s => s.peer))]
  const series: Series[] = peers.map(p => ({ name: p, points: run.samples.filter(s => s.peer === p && s.rssMB != null).map(s => [s.release, s.rssMB as number]) }))
  return lineChart({ title: `Resident memory over ${run.releases} releases`, x: 'releases published', y: 'MiB', series })
}

/** The samples as a markdown table, KiB and MiB. */
export function markdownTable (run: ChurnRun): string {
  const rows = run.samples.map(s => `| ${s.release} | ${s.peer} | ${KiB(s.disk.blocks)} | ${KiB(s.disk.packages)} | ${KiB(s.disk.state)} | ${KiB(s.disk.logs)} | ${KiB(s.disk.records)} | ${KiB(otherBytes(s))} | ${KiB(s.disk.total)} | ${s.rssMB ?? '–'} |`)
  return ['| release | peer | blocks KiB | packages KiB | state KiB | logs KiB | records KiB | other KiB | total KiB | RSS MiB |', '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|', ...rows].join('\n') + '\n'
}

/** Write `<out>/disk-<N>.svg`, `<out>/rss-<N>.svg` and `<out>/table-<N>.md` for a run of N releases. */
export async function writeReport (runFile: string, out: string): Promise<string[]> {
  const run = JSON.parse(await fs.readFile(runFile, 'utf8')) as ChurnRun
  await fs.mkdir(out, { recursive: true })
  const files: Array<[string, string]> = [
    [`disk-${run.releases}.svg`, diskChart(run)], [`rss-${run.releases}.svg`, rssChart(run)], [`table-${run.releases}.md`, markdownTable(run)]
  ]
  for (const [name, text] of files) await fs.writeFile(path.join(out, name), text)
  return files.map(([name]) => path.join(out, name))
}
