/**
 * The floor of the shim section: the parts an SDK call crosses, with none of upgossip's
 * logic between them. A "node" process runs a libp2p node made by `src/net` (TCP, noise,
 * yamux, as a daemon's) and forks an "app" child with IPC (`serialization: 'advanced'`, as
 * the daemon forks an SDK app). The caller's app sends each null request over IPC to its
 * node, which writes it, dag-cbor with the exchange's id in front, as a length-prefixed
 * frame on one long-lived libp2p stream to the other node; that node hands it over IPC to
 * its app, and the answer comes back the same way.
 *
 * Driven by JSON lines on stdin: `{"dial": ADDR}` opens the stream (answers `{"dialed":true}`),
 * `{"loop": {"count", "inflight"}}` runs the caller's loop in its app (answers
 * `{"latencies", "wallMs"}`). Prints `{"addr": …}` once listening; exits when stdin closes.
 *
 * Usage: node shim-floor-process.ts node KEYFILE   (the app role is forked by the node)
 */
import { fork } from 'node:child_process'
import readline from 'node:readline'
import * as dagCbor from '@ipld/dag-cbor'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import * as lp from 'it-length-prefixed'
import { createPeerNode, loadPeerKey } from '#src/net/index.js'
import { timedLoop } from './timed-loop.ts'

/** The protocol of the floor's stream. */
export const FLOOR_PROTOCOL = '/upgossip-bench/floor/1.0.0'

type ToApp = { t: 'request', id: number, request: unknown } | { t: 'result', id: number, value: unknown } | { t: 'loop', count: number, inflight: number }
type FromApp = { t: 'response', id: number, value: unknown } | { t: 'call', id: number, request: unknown } | { t: 'looped', latencies: number[], wallMs: number }

/** A frame: the exchange id (4 bytes, big-endian), then the dag-cbor value. */
function frame (id: number, value: unknown): Uint8Array {
  const body = dagCbor.encode(value)
  const out = new Uint8Array(4 + body.byteLength)
  new DataView(out.buffer).setUint32(0, id)
  out.set(body, 4)
  return out
}

function unframe (bytes: Uint8Array): { id: number, value: unknown } {
  return { id: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0), value: dagCbor.decode(bytes.subarray(4)) }
}

/** Frames written to a stream as they are queued, one write each (what a stream carries when nothing batches). */
class FrameWriter {
  private queue: Uint8Array[] = []
  private wake: (() => void) | undefined
  constructor (stream: Stream) {
    void stream.sink(this.source()).catch(() => {})
  }

  private async * source (): AsyncGenerator<Uint8Array> {
    while (true) {
      const next = this.queue.shift()
      if (next != null) {
        yield lp.encode.single(next).subarray()
        continue
      }
      await new Promise<void>(resolve => { this.wake = resolve })
    }
  }

  write (bytes: Uint8Array): void {
    this.queue.push(bytes)
    this.wake?.()
    this.wake = undefined
  }
}

async function readFrames (stream: Stream, onFrame: (id: number, value: unknown) => void): Promise<void> {
  for await (const chunk of lp.decode(stream.source)) {
    const { id, value } = unframe(chunk.subarray())
    onFrame(id, value)
  }
}

async function runNode (keyFile: string): Promise<void> {
  const node = await createPeerNode({ privateKey: await loadPeerKey(keyFile), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const app = fork(new URL(import.meta.url).pathname, ['app'], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const send = (m: ToApp): void => { app.send(m) }
  let out: FrameWriter | undefined
  let looped: ((m: Extract<FromApp, { t: 'looped' }>) => void) | undefined
  // the callee side: requests off the stream go to the app, its answers back on that stream
  let back: FrameWriter | undefined
  await node.handle(FLOOR_PROTOCOL, ({ stream }) => {
    back = new FrameWriter(stream)
    readFrames(stream, (id, request) => { send({ t: 'request', id, request }) }).catch(err => { stream.abort(err as Error) })
  })
  app.on('message', (m: FromApp) => {
    if (m.t === 'call') out?.write(frame(m.id, m.request))
    else if (m.t === 'response') back?.write(frame(m.id, m.value))
    else if (m.t === 'looped') looped?.(m)
  })
  const print = (v: unknown): void => { process.stdout.write(JSON.stringify(v) + '\n') }
  print({ addr: node.getMultiaddrs()[0]?.toString() })
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const command = JSON.parse(line) as { dial?: string, loop?: { count: number, inflight: number } }
    if (command.dial != null) {
      const stream = await node.dialProtocol(multiaddr(command.dial), FLOOR_PROTOCOL)
      out = new FrameWriter(stream)
      readFrames(stream, (id, value) => { send({ t: 'result', id, value }) }).catch(err => { stream.abort(err as Error) })
      print({ dialed: true })
    } else if (command.loop != null) {
      const done = new Promise<Extract<FromApp, { t: 'looped' }>>(resolve => { looped = resolve })
      send({ t: 'loop', ...command.loop })
      const { latencies, wallMs } = await done
      print({ latencies, wallMs })
    }
  }
  app.kill()
  await node.stop()
  process.exit(0)
}

/** The app: answers requests, and runs the caller's loop of null requests through its node. */
function runApp (): void {
  const waiting = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void }>()
  let nextId = 1
  const send = (m: FromApp): void => { process.send?.(m) }
  const call = (request: unknown): Promise<unknown> => new Promise((resolve, reject) => {
    const id = nextId++
    waiting.set(id, { resolve, reject })
    send({ t: 'call', id, request })
  })
  process.on('message', (m: ToApp) => {
    if (m.t === 'request') send({ t: 'response', id: m.id, value: (m.request as { op?: string })?.op === 'null' ? { ok: true } : { error: 'unknown' } })
    else if (m.t === 'result') {
      const pending = waiting.get(m.id)
      waiting.delete(m.id)
      // every call is a null request: anything but its answer is the floor broken
      if ((m.value as { ok?: boolean })?.ok === true) pending?.resolve(m.value)
      else pending?.reject(new Error(`the floor's callee answered ${JSON.stringify(m.value)}`))
    } else if (m.t === 'loop') {
      void timedLoop(m.count, m.inflight, () => call({ op: 'null' })).then(({ latencies, wallMs }) => {
        send({ t: 'looped', latencies, wallMs })
      })
    }
  })
  process.on('disconnect', () => process.exit(0))
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  if (process.argv[2] === 'app') runApp()
  else await runNode(process.argv[3] as string)
}
