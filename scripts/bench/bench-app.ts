/**
 * The `bench` app: three protocol versions whose wire formats differ at every step, with
 * past and future simulation objects between them (like the demo app, but with a null
 * request and a bulk upload), and a control request that runs a load loop *inside* the
 * app, so shim overhead is measured app to app, without the control API in the way.
 *
 * - protocol 1: `{ op: 'null' }` → `{ ok: true }`; `{ op: 'put', data }` → `{ ok: true, n }`
 * - protocol 2: `{ kind: 'nothing' }` → `{ done: true }`; `{ kind: 'upload', payload }` → `{ done: true, size }`
 * - protocol 3: `{ call: ['nothing'] }` → `{ result: 'ok' }`; `{ call: ['upload', payload] }` → `{ result: 'ok', size }`
 * - any version: `{ bench: { target, count, inflight, bytes } }` → `{ latencies: [ms…], wallMs }`: `count`
 *   calls to `target` (`bytes` > 0: uploads of that many bytes), `inflight` at a time.
 * - the baseline, no upgossip on the path: `{ tcpServe: true }` → `{ port }`, a TCP server in the app
 *   on 127.0.0.1 answering each line `{"op":"null"}` with `{"ok":true}`; `{ tcpBench: { port, count,
 *   inflight } }` → `{ latencies, wallMs }`: the same null request over one connection to that port,
 *   `inflight` pipelined.
 */
import { TIMED_LOOP_SOURCE } from './timed-loop.ts'

// the baseline: the same null request over a plain TCP connection between two app processes
const TCP = `
import net from 'node:net'
let tcpServer
async function tcpServe () {
  if (tcpServer == null) {
    tcpServer = net.createServer(socket => {
      socket.setNoDelay(true)
      let buffered = ''
      socket.setEncoding('utf8')
      socket.on('data', data => {
        buffered += data
        let out = ''
        for (let end = buffered.indexOf('\\n'); end >= 0; end = buffered.indexOf('\\n')) {
          const req = JSON.parse(buffered.slice(0, end))
          buffered = buffered.slice(end + 1)
          out += JSON.stringify(req?.op === 'null' ? { ok: true } : { error: 'unknown' }) + '\\n'
        }
        if (out !== '') socket.write(out)
      })
      socket.on('error', () => {})
    })
    await new Promise(resolve => tcpServer.listen(0, '127.0.0.1', resolve))
  }
  return { port: tcpServer.address().port }
}
async function tcpBench (spec) {
  const socket = net.connect(spec.port, '127.0.0.1')
  socket.setNoDelay(true)
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const waiting = []
  let buffered = ''
  socket.setEncoding('utf8')
  socket.on('data', data => {
    buffered += data
    for (let end = buffered.indexOf('\\n'); end >= 0; end = buffered.indexOf('\\n')) {
      const res = JSON.parse(buffered.slice(0, end))
      buffered = buffered.slice(end + 1)
      const { resolve, reject } = waiting.shift()
      if (res?.ok === true) resolve(res)
      else reject(new Error('the baseline server answered ' + JSON.stringify(res)))
    }
  })
  const call = request => new Promise((resolve, reject) => { waiting.push({ resolve, reject }); socket.write(JSON.stringify(request) + '\\n') })
  const result = await timedLoop(spec.count, spec.inflight, () => call({ op: 'null' }))
  socket.destroy()
  return result
}
`

function server (protocol: 1 | 2 | 3): string {
  const handlers = {
    1: `if (req?.op === 'null') return { ok: true }
  if (req?.op === 'put') return { ok: true, n: req.data.byteLength }`,
    2: `if (req?.kind === 'nothing') return { done: true }
  if (req?.kind === 'upload') return { done: true, size: req.payload.byteLength }`,
    3: `if (req?.call?.[0] === 'nothing') return { result: 'ok' }
  if (req?.call?.[0] === 'upload') return { result: 'ok', size: req.call[1].byteLength }`
  }[protocol]
  const request = {
    1: "bytes > 0 ? { op: 'put', data: new Uint8Array(bytes).fill(7) } : { op: 'null' }",
    2: "bytes > 0 ? { kind: 'upload', payload: new Uint8Array(bytes).fill(7) } : { kind: 'nothing' }",
    3: "bytes > 0 ? { call: ['upload', new Uint8Array(bytes).fill(7)] } : { call: ['nothing'] }"
  }[protocol]
  return `import { connect } from 'upgossip/app'
${TIMED_LOOP_SOURCE}
${TCP}
const node = await connect()
node.serve(async (req) => {
  if (req?.tcpServe === true) return await tcpServe()
  if (req?.tcpBench != null) return await tcpBench(req.tcpBench)
  if (req?.bench != null) {
    const bytes = req.bench.bytes ?? 0
    const request = ${request}
    return await timedLoop(req.bench.count, req.bench.inflight, () => node.call(req.bench.target, request))
  }
  ${handlers}
  throw new Error('unknown v${protocol} request')
})
await node.ready()
`
}

// requests and responses between adjacent versions; payloads pass through untouched
const UP12 = `const up = r => r.op === 'put' ? { kind: 'upload', payload: r.data } : { kind: 'nothing' }
const down = r => r.kind === 'upload' ? { op: 'put', data: r.payload } : { op: 'null' }
const upRes = r => r.n != null ? { done: r.ok, size: r.n } : { done: r.ok }
const downRes = r => r.size != null ? { ok: r.done, n: r.size } : { ok: r.done }`
const UP23 = `const up = r => r.kind === 'upload' ? { call: ['upload', r.payload] } : { call: ['nothing'] }
const down = r => r.call[0] === 'upload' ? { kind: 'upload', payload: r.call[1] } : { kind: 'nothing' }
const upRes = r => r.size != null ? { done: r.result === 'ok', size: r.size } : { done: r.result === 'ok' }
const downRes = r => r.size != null ? { result: r.done ? 'ok' : 'no', size: r.size } : { result: r.done ? 'ok' : 'no' }`

/** A past SO of version `v` (shipped with v+1: lets a v+1 node speak v). */
function past (v: 1 | 2): string {
  return `${v === 1 ? UP12 : UP23}
export default {
  version: ${v},
  async serve (req, local) { return downRes(await local(up(req))) },
  async call (req, remote) { return upRes(await remote(down(req))) }
}
`
}

/** A future SO of version `v` (shipped with v: lets a v−1 node speak v). */
function future (v: 2 | 3): string {
  return `${v === 2 ? UP12 : UP23}
export default {
  version: ${v},
  async serve (req, local) { return upRes(await local(down(req))) },
  async call (req, remote) { return downRes(await remote(up(req))) }
}
`
}

/** The files of version `protocol` of the bench app, with manifest changes. */
export function benchAppVersion (protocol: 1 | 2 | 3, manifest: Record<string, unknown> = {}): { files: Record<string, string>, manifest: Record<string, unknown> } {
  const base: Record<string, unknown> = { app: 'bench', version: `${protocol}.0.0`, main: 'server.js', protocol, health: { readyWithin: '10s', stableFor: '500ms' } }
  if (protocol === 1) return { files: { 'server.js': server(1) }, manifest: { ...base, ...manifest } }
  return {
    files: { 'server.js': server(protocol), 'so/past.js': past((protocol - 1) as 1 | 2), 'so/future.js': future(protocol) },
    manifest: { ...base, upgrades: `^${protocol - 1}.0.0`, simulation: { past: 'so/past.js', future: 'so/future.js' }, ...manifest }
  }
}
