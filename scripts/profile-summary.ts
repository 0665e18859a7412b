/**
 * Summarise `node --cpu-prof` profiles: self time by function and by package or source
 * file, so a hot path shows without a browser. `npm run bench -- --profile DIR` makes
 * every daemon write one.
 *
 * Usage: node scripts/profile-summary.ts FILE.cpuprofile [FILE…] [--top 25] [--last SECONDS] [--merge]
 *   --last S  only the samples of each profile's last S seconds (a window at its end,
 *             e.g. the idle stretch of `scripts/idle.ts`, which stops the daemons after it)
 *   --merge   one summary of all the files together
 */
import fs from 'node:fs'
import path from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** Where a source URL belongs: an npm package, a file of upgossip, or a node internal. */
export function owner (url: string): string {
  if (url === '') return '(native / idle / gc)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return (rest[0] ?? '').startsWith('@') ? `${rest[0] ?? ''}/${rest[1] ?? ''}` : rest[0] ?? url
  }
  if (url.startsWith('node:')) return url
  const dist = url.indexOf('/dist/')
  if (dist >= 0) return `upgossip ${url.slice(dist + 1)}`
  return path.basename(url)
}

/** Self time (ms) by function and by owner, plus the profile's wall time. */
export function summariseProfile (profile: Profile, lastMs = Infinity): { wallMs: number, byFunction: Map<string, number>, byOwner: Map<string, number> } {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const self = new Map<number, number>()
  const wallMs = (profile.endTime - profile.startTime) / 1000
  const fromMs = wallMs - lastMs
  let at = 0
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000
    at += ms
    if (at >= fromMs) self.set(id, (self.get(id) ?? 0) + ms)
  })
  const byFunction = new Map<string, number>()
  const byOwner = new Map<string, number>()
  for (const [id, ms] of self) {
    const n = byId.get(id)
    if (n == null) continue
    const f = n.callFrame
    const name = `${f.functionName === '' ? '(anonymous)' : f.functionName} ${owner(f.url)}:${f.lineNumber + 1}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms)
    const o = f.functionName === '(idle)' ? '(idle)' : f.functionName === '(garbage collector)' ? '(gc)' : owner(f.url)
    byOwner.set(o, (byOwner.get(o) ?? 0) + ms)
  }
  return { wallMs: Math.min(wallMs, lastMs), byFunction, byOwner }
}

function table (map: Map<string, number>, total: number, top: number): string {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, ms]) => `${ms.toFixed(0).padStart(8)} ms ${(100 * ms / total).toFixed(1).padStart(5)} %  ${k}`).join('\n')
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const args = process.argv.slice(2)
  const valueOf = (name: string): number | undefined => { const at = args.indexOf(name); return at >= 0 ? Number(args[at + 1]) : undefined }
  const top = valueOf('--top') ?? 25
  const lastMs = 1000 * (valueOf('--last') ?? Infinity)
  const merge = args.includes('--merge')
  const files = args.filter((a, i) => !a.startsWith('--') && !['--top', '--last'].includes(args[i - 1] ?? ''))
  const print = (name: string, s: ReturnType<typeof summariseProfile>): void => {
    const busy = [...s.byOwner].filter(([k]) => k !== '(idle)').reduce((a, [, v]) => a + v, 0)
    process.stdout.write(`== ${name}: ${s.wallMs.toFixed(0)} ms wall, ${busy.toFixed(0)} ms busy\n-- by package or file\n${table(s.byOwner, s.wallMs, top)}\n-- by function\n${table(s.byFunction, s.wallMs, top)}\n\n`)
  }
  const all = { wallMs: 0, byFunction: new Map<string, number>(), byOwner: new Map<string, number>() }
  for (const file of files) {
    const s = summariseProfile(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile, lastMs)
    if (!merge) { print(file, s); continue }
    all.wallMs += s.wallMs
    for (const [k, v] of s.byFunction) all.byFunction.set(k, (all.byFunction.get(k) ?? 0) + v)
    for (const [k, v] of s.byOwner) all.byOwner.set(k, (all.byOwner.get(k) ?? 0) + v)
  }
  if (merge) print(`${files.length} profiles`, all)
}
