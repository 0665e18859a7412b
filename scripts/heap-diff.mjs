#!/usr/bin/env node
/**
 * Compare V8 heap snapshots (`.heapsnapshot`, as written by `--heapsnapshot-signal` or
 * `v8.writeHeapSnapshot()`): objects counted and summed by constructor (node type and
 * name), largest growth first.
 *
 *   node scripts/heap-diff.mjs A.heapsnapshot B.heapsnapshot [C.heapsnapshot …] [--top 25] [--retainers NAME]
 *
 * With one file it lists that snapshot's largest groups; with several, the growth from
 * the first to the last, and the count in every snapshot between. `--retainers NAME`
 * also prints, for the objects of group NAME in the last snapshot, who points at them
 * (owner's group and edge name), most frequent first: the way to find what holds a
 * growing group. Sizes are self sizes (shallow), in bytes.
 */
import fs from 'node:fs'

const args = process.argv.slice(2)
const files = []
let top = 25
let retainersOf
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i])
  else if (args[i] === '--retainers') retainersOf = args[++i]
  else files.push(args[i])
}
if (files.length === 0) {
  console.error('usage: node scripts/heap-diff.mjs A.heapsnapshot [B.heapsnapshot …] [--top N] [--retainers NAME]')
  process.exit(2)
}

/** Parse one snapshot into per-group counts and sizes (and, when asked, the graph). */
function load (file, keepGraph) {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'))
  const meta = snap.snapshot.meta
  const nf = meta.node_fields
  const nodeTypes = meta.node_types[0]
  const ef = meta.edge_fields
  const edgeTypes = meta.edge_types[0]
  const N = nf.length
  const E = ef.length
  const iType = nf.indexOf('type')
  const iName = nf.indexOf('name')
  const iSize = nf.indexOf('self_size')
  const iEdges = nf.indexOf('edge_count')
  const { nodes, edges, strings } = snap
  const groups = new Map()
  const groupOf = new Array(nodes.length / N)
  let total = 0
  for (let n = 0, k = 0; n < nodes.length; n += N, k++) {
    const type = nodeTypes[nodes[n + iType]]
    // objects and closures by constructor/function name; everything else by type
    const name = type === 'object' || type === 'closure' || type === 'native' ? `${type}:${strings[nodes[n + iName]]}` : `(${type})`
    const size = nodes[n + iSize]
    total += size
    groupOf[k] = name
    const g = groups.get(name) ?? { count: 0, size: 0 }
    g.count++
    g.size += size
    groups.set(name, g)
  }
  let graph
  if (keepGraph) {
    const iEType = ef.indexOf('type')
    const iEName = ef.indexOf('name_or_index')
    const iTo = ef.indexOf('to_node')
    const retainers = new Map()
    for (let n = 0, k = 0, e = 0; n < nodes.length; n += N, k++) {
      const count = nodes[n + iEdges]
      for (let j = 0; j < count; j++, e += E) {
        const to = edges[e + iTo] / N
        if (groupOf[to] !== retainersOf) continue
        const et = edgeTypes[edges[e + iEType]]
        if (et === 'weak') continue
        const en = et === 'element' || et === 'hidden' ? `[${et}]` : String(strings[edges[e + iEName]])
        const key = `${groupOf[k]} --${en}-->`
        retainers.set(key, (retainers.get(key) ?? 0) + 1)
      }
    }
    graph = retainers
  }
  return { file, total, nodes: nodes.length / N, groups, graph }
}

const snaps = files.map((f, i) => load(f, retainersOf != null && i === files.length - 1))
const mib = b => (b / 1024 / 1024).toFixed(2)
// compiled code comes and goes with the JIT; what the program holds is the rest
const codeOf = s => s.groups.get('(code)')?.size ?? 0
for (const s of snaps) console.log(`${s.file}: ${s.nodes} objects, ${mib(s.total)} MiB (self sizes), of which code ${mib(codeOf(s))} MiB, the rest ${mib(s.total - codeOf(s))} MiB`)

const first = snaps[0]
const last = snaps[snaps.length - 1]
const names = new Set(snaps.flatMap(s => [...s.groups.keys()]))
const rows = [...names].map(name => {
  const a = first.groups.get(name) ?? { count: 0, size: 0 }
  const b = last.groups.get(name) ?? { count: 0, size: 0 }
  return { name, counts: snaps.map(s => s.groups.get(name)?.count ?? 0), dCount: b.count - a.count, size: b.size, dSize: b.size - a.size }
})
if (snaps.length === 1) {
  rows.sort((x, y) => y.size - x.size)
  console.log('\ncount\tself bytes\tgroup')
  for (const r of rows.slice(0, top)) console.log(`${r.counts[0]}\t${r.size}\t${r.name}`)
} else {
  rows.sort((x, y) => y.dSize - x.dSize)
  console.log(`\ngrowth ${mib(last.total - first.total)} MiB, ${last.nodes - first.nodes} objects, first to last\n`)
  console.log(`Δbytes\tΔcount\tcounts (${snaps.map((_, i) => i + 1).join(' → ')})\tgroup`)
  for (const r of rows.slice(0, top)) console.log(`${r.dSize}\t${r.dCount}\t${r.counts.join(' → ')}\t${r.name}`)
}
if (last.graph != null) {
  console.log(`\nwhat points at ${retainersOf} in ${last.file} (strong edges):`)
  for (const [key, n] of [...last.graph.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${n}\t${key}`)
}
