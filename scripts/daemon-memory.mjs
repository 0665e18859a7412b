#!/usr/bin/env node
/**
 * V8 heap and resident memory of a testnet's daemons over time, read from outside through
 * the inspector — nothing is added to the daemon. Start the testnet with the inspector on
 * (the daemons inherit the environment):
 *
 *   NODE_OPTIONS=--inspect=127.0.0.1:0 node bin/upgossip.js testnet --scenario soak --peers 4 --minutes 30 --json --dir DIR > report.json
 *   node scripts/daemon-memory.mjs DIR --out memory.jsonl [--interval 10] [--snapshot peer-1@90,600,1200 --snapshot-dir D]
 *
 * Every `--interval` seconds it writes one line per daemon: `process.memoryUsage()` in MiB
 * (rss, heapTotal, heapUsed, external, arrayBuffers) after the time since the first
 * sample. It finds each daemon's inspector in the first "Debugger listening on ws://…"
 * line of `DIR/logs/peer-N.log` and checks that the process there is that daemon. It stops
 * when every daemon has gone. `--snapshot NAME@S1,S2,…` also takes a heap snapshot of that
 * daemon (HeapProfiler.takeHeapSnapshot) at those seconds, into `--snapshot-dir`; a
 * snapshot makes the process allocate, so its resident memory after one is not a clean
 * figure.
 */
import fs from 'node:fs'
import path from 'node:path'

const args = process.argv.slice(2)
const dir = args[0]
let out
let interval = 10
let snapshotPeer
let snapshotAt = []
let snapshotDir = '.'
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--out') out = args[++i]
  else if (args[i] === '--interval') interval = Number(args[++i])
  else if (args[i] === '--snapshot') {
    const [name, times] = args[++i].split('@')
    snapshotPeer = name
    snapshotAt = times.split(',').map(Number)
  } else if (args[i] === '--snapshot-dir') snapshotDir = args[++i]
}
if (dir == null || out == null) {
  console.error('usage: node scripts/daemon-memory.mjs TESTNET_DIR --out FILE.jsonl [--interval S] [--snapshot peer-1@90,600 --snapshot-dir DIR]')
  process.exit(2)
}

const mib = b => Math.round(b / 1024 / 102.4) / 10
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** A minimal Chrome DevTools Protocol client over the global WebSocket. */
class Inspector {
  constructor (url) {
    this.url = url
    this.next = 1
    this.pending = new Map()
    this.listeners = new Map()
  }

  async open () {
    this.ws = new WebSocket(this.url)
    this.ws.onmessage = ev => {
      const msg = JSON.parse(String(ev.data))
      if (msg.id != null) {
        const p = this.pending.get(msg.id)
        this.pending.delete(msg.id)
        if (msg.error != null) p?.reject(new Error(msg.error.message))
        else p?.resolve(msg.result)
      } else this.listeners.get(msg.method)?.(msg.params)
    }
    this.ws.onclose = () => {
      for (const p of this.pending.values()) p.reject(new Error('inspector closed'))
      this.pending.clear()
    }
    await new Promise((resolve, reject) => { this.ws.onopen = resolve; this.ws.onerror = () => reject(new Error(`cannot open ${this.url}`)) })
  }

  call (method, params = {}) {
    const id = this.next++
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('inspector closed'))
    this.ws.send(JSON.stringify({ id, method, params }))
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }))
  }

  async evaluate (expression) {
    const r = await this.call('Runtime.evaluate', { expression, returnByValue: true })
    return r.result.value
  }

  async snapshot (file) {
    const chunks = []
    this.listeners.set('HeapProfiler.addHeapSnapshotChunk', p => chunks.push(p.chunk))
    await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
    fs.writeFileSync(file, chunks.join(''))
  }
}

/** Find the daemons' inspectors: peer name → connected client. */
async function connect () {
  const found = new Map()
  const logs = path.join(dir, 'logs')
  for (let tries = 0; tries < 600; tries++) {
    const names = fs.existsSync(logs) ? fs.readdirSync(logs).filter(f => /^peer-\d+\.log$/.test(f)) : []
    for (const f of names) {
      const name = f.slice(0, -'.log'.length)
      if (found.has(name)) continue
      const url = /Debugger listening on (ws:\/\/\S+)/.exec(fs.readFileSync(path.join(logs, f), 'utf8'))?.[1]
      if (url == null) continue
      const client = new Inspector(url)
      try {
        await client.open()
        const argv = await client.evaluate('process.argv.join(" ")')
        if (!/ daemon --data /.test(argv)) throw new Error(`${url} is not a daemon: ${argv}`)
        found.set(name, client)
        console.error(`${name}: ${url}`)
      } catch (err) {
        console.error(`${name}: ${err.message}`)
      }
    }
    if (found.size > 0 && found.size === names.length && tries > 20) break
    await sleep(500)
  }
  return found
}

/**
 * Resident memory by kind of mapping (Linux `/proc/PID/smaps`), MiB: `brk` is the `[heap]`
 * mapping (the C library's main malloc arena), `anon` every other anonymous mapping (V8's
 * heap pages, other malloc arenas, large allocations), `file` mapped files (the node binary
 * and libraries, partly shared).
 */
function mappings (pid) {
  let text
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8')
  } catch {
    return {}
  }
  const kb = { brk: 0, anon: 0, file: 0 }
  let kind = 'anon'
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head != null) {
      const name = head[1]
      kind = name === '[heap]' ? 'brk' : name.startsWith('/') ? 'file' : 'anon'
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss != null) kb[kind] += Number(rss[1])
  }
  return { brk: mib(kb.brk * 1024), anon: mib(kb.anon * 1024), file: mib(kb.file * 1024) }
}

const clients = await connect()
const t0 = Date.now()
const taken = new Set()
while (clients.size > 0) {
  const atS = Math.round((Date.now() - t0) / 1000)
  for (const [name, client] of clients) {
    try {
      const m = await client.evaluate('({ ...process.memoryUsage(), pid: process.pid })')
      fs.appendFileSync(out, JSON.stringify({ atS, peer: name, rss: mib(m.rss), heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers), ...mappings(m.pid) }) + '\n')
      const due = snapshotAt.find(s => s <= atS && !taken.has(s))
      if (name === snapshotPeer && due != null) {
        taken.add(due)
        const file = path.join(snapshotDir, `${name}-${due}s.heapsnapshot`)
        await client.snapshot(file)
        console.error(`${name}: heap snapshot at ${atS} s → ${file}`)
      }
    } catch (err) {
      console.error(`${name}: gone (${err.message})`)
      clients.delete(name)
    }
  }
  await sleep(interval * 1000)
}
