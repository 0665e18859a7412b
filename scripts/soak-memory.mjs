#!/usr/bin/env node
/**
 * The memory figures of a soak report (`upgossip testnet --scenario soak --json`): a table
 * of the mean RSS of each daemon by minute (Markdown, on stdout) and, with `--svg`, the
 * plot of every sample. With `--heap FILE.jsonl` (written by scripts/daemon-memory.mjs
 * during the same run) it adds each daemon's V8 heap by minute (heapUsed / heapTotal, MiB),
 * the plot a dashed line of heapUsed for the daemons named by `--heap-peers`, and a second
 * table: each daemon's mean figures over the second and the last quarter of the run.
 *
 *   node scripts/soak-memory.mjs REPORT.json [--svg OUT.svg] [--heap FILE.jsonl] [--heap-peers peer-1]
 */
import fs from 'node:fs'

const args = process.argv.slice(2)
const reportFile = args[0]
let svgFile
let heapFile
let heapPeers = ['peer-1']
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--svg') svgFile = args[++i]
  else if (args[i] === '--heap') heapFile = args[++i]
  else if (args[i] === '--heap-peers') heapPeers = args[++i].split(',')
}
if (reportFile == null) {
  console.error('usage: node scripts/soak-memory.mjs REPORT.json [--svg OUT.svg] [--heap FILE.jsonl] [--heap-peers peer-1]')
  process.exit(2)
}
// the report is the JSON object on stdout; skip anything before it
const text = fs.readFileSync(reportFile, 'utf8')
const report = JSON.parse(text.slice(text.indexOf('{')))
const { samples } = report.memory
const names = [...new Set(samples.flatMap(s => Object.keys(s.rssMb)))].sort()
const heap = heapFile == null ? [] : fs.readFileSync(heapFile, 'utf8').trim().split('\n').map(l => JSON.parse(l))
// the inspector's clock starts when scripts/daemon-memory.mjs first reached the daemons, a
// few seconds into the run: its samples are aligned with the report's on the end of the run
// (both stop when the daemons do), which puts them within about 10 s of the report's clock
const endMs = samples[samples.length - 1].atMs
const shiftMs = heap.length === 0 ? 0 : endMs - 1000 * Math.max(...heap.map(x => x.atS))
const heapMs = x => x.atS * 1000 + shiftMs
const round = x => (Math.round(x * 10) / 10).toFixed(1)
const mean = xs => xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length

// the table: mean RSS per daemon by minute of the run
const minutes = Math.floor(endMs / 60_000)
const header = ['minute', ...names.map(n => `${n} RSS`), ...(heap.length === 0 ? [] : names.map(n => `${n} heap used / total`))]
console.log(`| ${header.join(' | ')} |`)
console.log(`|${header.map(() => '---').join('|')}|`)
for (let m = 0; m <= minutes; m++) {
  const inMinute = samples.filter(s => Math.floor(s.atMs / 60_000) === m)
  const rss = names.map(n => round(mean(inMinute.flatMap(s => s.rssMb[n] == null ? [] : [s.rssMb[n]]))))
  const heaps = heap.length === 0
    ? []
    : names.map(n => {
      const h = heap.filter(x => x.peer === n && Math.floor(heapMs(x) / 60_000) === m)
      return h.length === 0 ? '' : `${round(mean(h.map(x => x.heapUsed)))} / ${round(mean(h.map(x => x.heapTotal)))}`
    })
  console.log(`| ${[m, ...rss, ...heaps].join(' | ')} |`)
}

if (heap.length > 0) {
  // the same windows as the soak's check: the second quarter of the run (after warm-up) and the last
  const fields = ['rss', 'heapUsed', 'heapTotal', 'external', 'brk', 'anon', 'file'].filter(f => heap.some(x => x[f] != null))
  console.log(`\n| daemon | window | ${fields.join(' | ')} |`)
  console.log(`|---|---|${fields.map(() => '---').join('|')}|`)
  for (const n of names) {
    for (const [label, from, to] of [['2nd quarter', endMs / 4, endMs / 2], ['last quarter', endMs * 3 / 4, endMs + 60_000]]) {
      const h = heap.filter(x => x.peer === n && heapMs(x) >= from && heapMs(x) < to)
      console.log(`| ${n} | ${label} | ${fields.map(f => round(mean(h.map(x => x[f])))).join(' | ')} |`)
    }
  }
}

if (svgFile != null) {
  const W = 760
  const H = 260
  const x0 = 50
  const x1 = 650
  const y0 = 230
  const yTop = 15
  const maxMb = Math.max(...samples.flatMap(s => Object.values(s.rssMb)))
  const yMax = Math.ceil(maxMb * 1.1 / 50) * 50
  const X = ms => (x0 + (x1 - x0) * ms / endMs).toFixed(1)
  const Y = mb => (y0 - (y0 - yTop) * mb / yMax).toFixed(1)
  const colours = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7']
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`, '<rect width="100%" height="100%" fill="white"/>']
  for (let mb = 0; mb <= yMax; mb += 50) out.push(`<line x1="${x0}" x2="${x1}" y1="${Y(mb)}" y2="${Y(mb)}" stroke="#eee"/><text x="${x0 - 6}" y="${(Number(Y(mb)) + 4).toFixed(1)}" text-anchor="end" fill="#666">${mb}</text>`)
  const step = endMs > 40 * 60_000 ? 10 : endMs > 15 * 60_000 ? 5 : 1
  for (let m = 0; m * 60_000 <= endMs; m += step) out.push(`<line x1="${X(m * 60_000)}" x2="${X(m * 60_000)}" y1="${yTop}" y2="${y0}" stroke="#f3f3f3"/><text x="${X(m * 60_000)}" y="246" text-anchor="middle" fill="#666">${m} min</text>`)
  let legendY = 25
  names.forEach((n, i) => {
    const c = colours[i % colours.length]
    const pts = samples.filter(s => s.rssMb[n] != null).map(s => `${X(s.atMs)},${Y(s.rssMb[n])}`).join(' ')
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${pts}"/>`)
    out.push(`<text x="660" y="${legendY}" fill="${c}">${n} RSS</text>`)
    legendY += 16
    if (heap.length > 0 && heapPeers.includes(n)) {
      const hp = heap.filter(x => x.peer === n && heapMs(x) >= 0 && heapMs(x) <= endMs).map(x => `${X(heapMs(x))},${Y(x.heapUsed)}`).join(' ')
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.2" stroke-dasharray="4 3" points="${hp}"/>`)
      out.push(`<text x="660" y="${legendY}" fill="${c}">${n} V8 heap used</text>`)
      legendY += 16
    }
  })
  out.push(`<text x="${x0}" y="12" fill="#333">resident memory (MiB) of each daemon during the soak${heap.length > 0 ? '; dashed: V8 heap in use' : ''}</text>`)
  out.push('</svg>')
  fs.writeFileSync(svgFile, out.join('\n') + '\n')
}
