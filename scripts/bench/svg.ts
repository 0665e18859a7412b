/**
 * Plain SVG charts for the report, written by the benchmark itself (no plotting tool):
 * a line chart of series over a numeric x axis, and a grouped bar chart.
 *
 * @example
 * ```ts
 * const svg = lineChart({ title: 'Swarm time', x: 'peers', y: 's', series: [{ name: 'swarm', points: [[10, 1.2], [50, 3.4]] }] })
 * ```
 */

/** One line. */
export interface Series {
  name: string
  points: Array<[number, number]>
  /** Dashed (a baseline or a prediction). */
  dashed?: boolean
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf']
const W = 640
const H = 360
const M = { left: 64, right: 150, top: 40, bottom: 48 }

function esc (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** Round numbers for an axis from 0 (or min) to max. */
export function ticks (max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1]
  const raw = max / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map(f => f * mag).find(s => s >= raw) ?? raw
  const out = []
  for (let v = 0; v <= max + step * 0.001; v += step) out.push(Math.round(v * 1e6) / 1e6)
  if ((out.at(-1) ?? 0) < max) out.push(Math.round((out.length * step) * 1e6) / 1e6)
  return out
}

function fmt (v: number): string {
  if (v >= 10_000) return `${Math.round(v / 1000)}k`
  if (Math.abs(v) >= 100) return String(Math.round(v))
  return String(Math.round(v * 100) / 100)
}

function frame (title: string, xLabel: string, yLabel: string, xs: number[], ys: number[], sx: (x: number) => number, sy: (y: number) => number, xText?: (x: number) => string): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`
  ]
  for (const y of ys) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/>`)
    out.push(`<text x="${M.left - 6}" y="${sy(y) + 4}" text-anchor="end">${fmt(y)}</text>`)
  }
  for (const x of xs) out.push(`<text x="${sx(x)}" y="${H - M.bottom + 16}" text-anchor="middle">${esc(xText?.(x) ?? fmt(x))}</text>`)
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`)
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`)
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`)
  out.push(`<text x="16" y="${(M.top + H - M.bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(M.top + H - M.bottom) / 2})">${esc(yLabel)}</text>`)
  return out
}

/** A line chart; a horizontal reference line at `reference` if given (a target). */
export function lineChart (opts: { title: string, x: string, y: string, series: Series[], reference?: { value: number, label: string }, logX?: boolean }): string {
  const all = opts.series.flatMap(s => s.points)
  const xsRaw = [...new Set(all.map(p => p[0]))].sort((a, b) => a - b)
  const xMin = opts.logX === true ? Math.log10(Math.max(1e-9, xsRaw[0] ?? 1)) : 0
  const xMaxRaw = xsRaw.at(-1) ?? 1
  const xMax = opts.logX === true ? Math.log10(xMaxRaw) : xMaxRaw
  const yMax = Math.max(...all.map(p => p[1]), opts.reference?.value ?? 0) * 1.05
  const ys = ticks(yMax)
  const top = ys.at(-1) ?? 1
  const tx = (x: number): number => opts.logX === true ? Math.log10(x) : x
  const sx = (x: number): number => M.left + (xMax === xMin ? 0.5 : (tx(x) - xMin) / (xMax - xMin)) * (W - M.left - M.right)
  const sy = (y: number): number => H - M.bottom - (y / top) * (H - M.top - M.bottom)
  const xTicks = xsRaw.length <= 8 ? xsRaw : ticks(xMaxRaw, 6)
  const out = frame(opts.title, opts.x, opts.y, xTicks, ys, sx, sy)
  if (opts.reference != null) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${sy(opts.reference.value)}" y2="${sy(opts.reference.value)}" stroke="#888" stroke-dasharray="2,3"/>`)
    out.push(`<text x="${W - M.right + 4}" y="${sy(opts.reference.value) + 4}" fill="#666">${esc(opts.reference.label)}</text>`)
  }
  opts.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string
    const pts = [...s.points].sort((a, b) => a[0] - b[0])
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6,4"' : ''} points="${pts.map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ')}"/>`)
    if (pts.length <= 30) for (const p of pts) out.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3" fill="${color}"/>`)
    out.push(`<rect x="${W - M.right + 10}" y="${M.top + i * 18}" width="12" height="3" fill="${color}"/>`)
    out.push(`<text x="${W - M.right + 26}" y="${M.top + i * 18 + 5}">${esc(s.name)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** A grouped bar chart: one group per category, one bar per series. */
export function barChart (opts: { title: string, y: string, categories: string[], series: Array<{ name: string, values: number[] }>, reference?: { value: number, label: string } }): string {
  const yMax = Math.max(...opts.series.flatMap(s => s.values), opts.reference?.value ?? 0) * 1.05
  const ys = ticks(yMax)
  const top = ys.at(-1) ?? 1
  const sy = (y: number): number => H - M.bottom - (y / top) * (H - M.top - M.bottom)
  const groupW = (W - M.left - M.right) / Math.max(1, opts.categories.length)
  const barW = groupW * 0.8 / Math.max(1, opts.series.length)
  const cx = (i: number): number => M.left + groupW * (i + 0.5)
  const out = frame(opts.title, '', opts.y, opts.categories.map((_, i) => i), ys, cx, sy, i => opts.categories[i] ?? '')
  opts.series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length] as string
    s.values.forEach((v, i) => {
      const x = cx(i) - groupW * 0.4 + k * barW
      out.push(`<rect x="${x.toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(H - M.bottom - sy(v)).toFixed(1)}" fill="${color}"/>`)
    })
    out.push(`<rect x="${W - M.right + 10}" y="${M.top + k * 18 - 4}" width="12" height="10" fill="${color}"/>`)
    out.push(`<text x="${W - M.right + 26}" y="${M.top + k * 18 + 5}">${esc(s.name)}</text>`)
  })
  if (opts.reference != null) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${sy(opts.reference.value)}" y2="${sy(opts.reference.value)}" stroke="#888" stroke-dasharray="2,3"/>`)
    out.push(`<text x="${W - M.right + 4}" y="${sy(opts.reference.value) + 14}" fill="#666">${esc(opts.reference.label)}</text>`)
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}
