#!/usr/bin/env node
/**
 * The CPU of one package fetch between two peers in this one process, over loopback
 * (TCP, noise, yamux, blocks 2.0.0) — both ends, nothing else: no daemons, no app, no
 * gossip. Given two builds, it alternates them, so two versions of the frame path compare
 * side by side on a shared machine (the process's CPU per fetch, not wall time).
 *
 *   npm run build && cp -r dist dist-new && git checkout OLD && npm run build && cp -r dist dist-old && git checkout -
 *   node_modules/.bin/node scripts/pair-fetch.mjs dist-old dist-new [--rounds 16] [--mib 16]
 *
 * A build directory must resolve upgossip's node_modules (a copy inside the repository
 * does). Prints each fetch (CPU-s, ms, major collections, ms in the collector), then the
 * median CPU-s and major collections per build.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { PerformanceObserver, constants } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'

const args = process.argv.slice(2)
const option = (name, fallback) => { const i = args.indexOf(name); if (i < 0) return fallback; const v = Number(args[i + 1]); args.splice(i, 2); return v }
const rounds = option('--rounds', 16)
const mib = option('--mib', 16)
const builds = args.length > 0 ? args : ['dist']

const loaded = []
for (const dir of builds) {
  const url = file => pathToFileURL(path.resolve(dir, file)).href
  loaded.push({ name: dir, net: await import(url('net/index.js')), store: await import(url('store/index.js')), pack: await import(url('package/index.js')) })
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pair-fetch-'))
const data = Buffer.alloc(mib * 1048576)
for (let i = 0; i + 4 <= data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i)
await fs.writeFile(path.join(dir, 'big.bin'), data)
await fs.writeFile(path.join(dir, 'upgossip.json'), JSON.stringify({ app: 'pair', version: '1.0.0', protocol: 1, main: 'server.js' }))
await fs.writeFile(path.join(dir, 'server.js'), '')

let gc = { major: 0, ms: 0 }
new PerformanceObserver(list => {
  for (const e of list.getEntries()) {
    if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++
    gc.ms += e.duration
  }
}).observe({ entryTypes: ['gc'] })

async function fetchOnce (b) {
  const served = new b.store.MemoryBlockStore()
  const { cid: root } = await b.pack.packDirectory(dir, served)
  const fetched = new b.store.MemoryBlockStore()
  const peer = async store => await b.net.createPeerNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], services: { blocks: { store, metrics: b.net.noNetMetrics, log: () => {} } } })
  const server = await peer(served)
  const client = await peer(fetched)
  await client.dial(server.getMultiaddrs()[0])
  await new Promise(resolve => setTimeout(resolve, 300))
  gc = { major: 0, ms: 0 }
  const cpu = process.cpuUsage()
  const start = performance.now()
  await b.net.fetchPackage({ root, store: fetched, exchange: client.services.blocks, sources: () => client.getPeers(), onProgress: () => {}, log: () => {}, signal: new AbortController().signal })
  const used = process.cpuUsage(cpu)
  const run = { cpu: (used.user + used.system) / 1e6, ms: performance.now() - start, major: gc.major, gcMs: gc.ms }
  await client.stop()
  await server.stop()
  return run
}

const runs = new Map(loaded.map(b => [b.name, []]))
for (let r = 0; r < rounds; r++) {
  // alternate which goes first, so neither always follows the other's garbage
  for (const b of r % 2 === 0 ? loaded : [...loaded].reverse()) {
    const run = await fetchOnce(b)
    runs.get(b.name).push(run)
    console.log(`${b.name}: ${run.cpu.toFixed(3)} CPU-s, ${run.ms.toFixed(0)} ms, ${run.major} major GCs, ${run.gcMs.toFixed(0)} ms in GC`)
  }
}
for (const [name, list] of runs) {
  const cpu = list.map(x => x.cpu).sort((a, b) => a - b)
  const major = list.reduce((n, x) => n + x.major, 0) / list.length
  console.log(`${name}: median ${cpu[Math.floor(cpu.length / 2)].toFixed(3)} CPU-s per ${mib} MiB fetch (${cpu.map(c => c.toFixed(3)).join(' ')}); ${major.toFixed(2)} major GCs per fetch`)
}
await fs.rm(dir, { recursive: true })
process.exit(0)
