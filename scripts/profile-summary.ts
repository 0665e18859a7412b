/**
 * Summarise `node --cpu-prof` profiles: self time by function and by package or source
 * file, so a hot path shows without a browser. `npm run bench -- --profile DIR` makes
 * every daemon write one.
 *
 * Usage: node scripts/profile-summary.ts FILE.cpuprofile [FILE…] [--top 25]
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
export function summariseProfile (profile: Profile): { wallMs: number, byFunction: Map<string, number>, byOwner: Map<string, number> } {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => { self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000) })
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
  return { wallMs: (profile.endTime - profile.startTime) / 1000, byFunction, byOwner }
}

function table (map: Map<string, number>, total: number, top: number): string {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, ms]) => `${ms.toFixed(0).padStart(8)} ms ${(100 * ms / total).toFixed(1).padStart(5)} %  ${k}`).join('\n')
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const args = process.argv.slice(2)
  const topAt = args.indexOf('--top')
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25
  const files = args.filter((a, i) => !a.startsWith('--') && (topAt < 0 || i !== topAt + 1))
  for (const file of files) {
    const s = summariseProfile(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile)
    const busy = [...s.byOwner].filter(([k]) => k !== '(idle)').reduce((a, [, v]) => a + v, 0)
    process.stdout.write(`== ${file}: ${s.wallMs.toFixed(0)} ms wall, ${busy.toFixed(0)} ms busy\n-- by package or file\n${table(s.byOwner, s.wallMs, top)}\n-- by function\n${table(s.byFunction, s.wallMs, top)}\n\n`)
  }
}
