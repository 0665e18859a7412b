/**
 * The byte-stream parts of `upgossip check` for TCP apps (cli/commands/check-streams.ts):
 * samples, the comparison of two streams, one connection's exchange (through the
 * daemon's own carrier, against in-memory programs that close, keep the connection open,
 * stay silent or fail), and the round trip of samples through tcpchat's stream SOs in a
 * daemon's worker.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { diffStreams, exchange, streamRoundTrip, toStreamSample } from '../../src/cli/commands/check-streams.js'
import { carry } from '../../src/host/index.js'
import type { Pipe } from '../../src/host/index.js'
import type { ByteStream } from '../../src/net/index.js'
import { tempDir, writeTree } from '../helpers.js'

const enc = new TextEncoder()
const dec = new TextDecoder()
const bytes = (text: string): Uint8Array => enc.encode(text)

describe('TCP samples', () => {
  it('are text, base64 or NDJSON lines, one connection each', () => {
    expect(dec.decode(toStreamSample({ send: 'hello\n' }))).toBe('hello\n')
    expect([...toStreamSample({ sendBase64: 'AAH/' })]).toEqual([0, 1, 255])
    expect(dec.decode(toStreamSample({ lines: [{ op: 'list' }, 'not json'] }))).toBe('{"op":"list"}\nnot json\n')
  })

  it('refuse anything else, saying what a sample is', () => {
    for (const bad of [null, [], 'text', {}, { send: 'a', lines: [] }, { send: 1 }, { lines: 'x' }, { sendBase64: 'not base64!' }, { send: 'a', extra: 1 }]) {
      expect(() => toStreamSample(bad)).toThrow(expect.objectContaining({ name: 'StreamSampleError' }))
    }
    expect(() => toStreamSample({ send: 'a', extra: 1 })).toThrow(/not "extra"/)
  })
})

describe('the comparison of two streams', () => {
  it('takes JSON lines as values: spacing and key order aside, each field that differs named', () => {
    expect(diffStreams(bytes('{"ok": true, "text": "hi"}\n'), bytes('{"text":"hi","ok":true}\n'))).toEqual([])
    expect(diffStreams(bytes('{"ok": true, "messages": [{"from": "ann"}]}\n'), bytes('{"ok":true,"messages":[{"author":"ann"}]}\n')))
      .toEqual(['line 1 .messages[0].from: "ann" → missing', 'line 1 .messages[0].author: missing → "ann"'])
  })

  it('names lines that differ as text, lines missing or extra, and a last newline', () => {
    expect(diffStreams(bytes('a\nb\n'), bytes('a\nc\nd\n'))).toEqual(['line 2: "b" → "c"', 'line 3: missing → "d"'])
    expect(diffStreams(bytes('a\n'), bytes('a'))).toEqual(['the last line ends with a newline → does not'])
    expect(diffStreams(bytes(''), bytes(''))).toEqual([])
  })

  it('compares bytes that are not UTF-8 byte by byte', () => {
    expect(diffStreams(new Uint8Array([0xff, 1, 2]), new Uint8Array([0xff, 1, 2]))).toEqual([])
    expect(diffStreams(new Uint8Array([0xff, 1, 2]), new Uint8Array([0xff, 9]))).toEqual(['3 bytes → 2 bytes, the first difference at byte 1'])
  })
})

/** A program in memory, as the other side of a connection: `answer` gets the client's bytes as they come, and what it yields goes back. */
function program (answer: (source: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>): Pipe {
  let toClient: AsyncIterable<Uint8Array> = (async function * () {})()
  const app: ByteStream = {
    // the carrier writes the client's bytes here and ends; the program's reply is what it reads back
    sink: async source => { toClient = answer(source) },
    source: (async function * () {
      await Promise.resolve()
      yield * toClient
    })(),
    abort: () => {}
  }
  return async client => { await carry(app, client) }
}

async function text (source: AsyncIterable<Uint8Array>): Promise<string> {
  let out = ''
  for await (const chunk of source) out += dec.decode(chunk)
  return out
}

describe('one connection of a check', () => {
  const limits = { quietMs: 200, limitMs: 1500 }

  it('takes what a program sends until it closes the connection', async () => {
    const upper = program(async function * (source) { yield bytes((await text(source)).toUpperCase()) })
    expect(await exchange(upper, bytes('hello\n'), limits)).toEqual({ received: bytes('HELLO\n'), end: 'closed' })
  })

  it('takes the answer of a program that keeps the connection open once it goes quiet, and a silent one\'s nothing only at the limit', async () => {
    const open = program(async function * (source) {
      yield bytes(`got ${(await text(source)).length}\n`)
      await new Promise(() => {})
    })
    const started = Date.now()
    expect(await exchange(open, bytes('abc'), limits)).toEqual({ received: bytes('got 3\n'), end: 'quiet' })
    expect(Date.now() - started).toBeLessThan(1000)
    const silent = program(async function * () { await new Promise(() => {}) })
    const before = Date.now()
    expect(await exchange(silent, bytes('abc'), limits)).toEqual({ received: new Uint8Array(), end: 'quiet' })
    expect(Date.now() - before).toBeGreaterThanOrEqual(1400)
  })

  it('throws when the connection fails, or is still sending at the limit', async () => {
    const failing = program(async function * () { yield bytes('half'); throw new Error('the program reset it') })
    await expect(exchange(failing, bytes('x'), limits)).rejects.toThrow('the program reset it')
    const chatty = program(async function * () {
      for (;;) {
        yield bytes('more\n')
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    })
    await expect(exchange(chatty, bytes('x'), limits)).rejects.toThrow(/still sending after 1500 ms/)
  })
})

const TCPCHAT = fileURLToPath(new URL('../../testnet/apps/tcpchat/v2/', import.meta.url))

describe('the round trip of TCP samples through stream SOs, in a daemon\'s worker', () => {
  const samples = [
    { request: bytes('{"op":"echo","text":"hi"}\n{"op":"list"}\n'), response: bytes('{"ok": true, "text": "hi"}\n{"ok": true, "messages": [{"id": "m1", "from": "ann", "text": "hello"}]}\n') },
    { request: bytes('not json\n'), response: bytes('{"ok": false, "error": "not JSON"}\n') }
  ]

  it('passes tcpchat 2.0.0\'s past and future SOs both ways', async () => {
    expect(await streamRoundTrip({ module: path.join(TCPCHAT, 'past.js'), version: 1 }, 2, 'past', samples, 5000)).toEqual([{ index: 0, problems: [] }, { index: 1, problems: [] }])
    expect(await streamRoundTrip({ module: path.join(TCPCHAT, 'future.js'), version: 2 }, 1, 'future', samples, 5000)).toEqual([{ index: 0, problems: [] }, { index: 1, problems: [] }])
  })

  it('names what an SO loses, on the way there and back, and an SO that fails', async () => {
    const dir = await tempDir('upgossip-check-streams-')
    await writeTree(dir, {
      'wire.js': await import('node:fs/promises').then(async fs => await fs.readFile(path.join(TCPCHAT, 'wire.js'), 'utf8')),
      // 1.0.0's `text` of a request is dropped on its way to 2.0.0; replies are passed on untranslated
      'lossy.js': `import { lines, requestToV1, requestToV2 } from './wire.js'
const drop = req => { const out = requestToV2(req); delete out.body; return out }
export default { version: 1, serve: () => ({ in: lines(drop), out: s => s }), call: () => ({ out: lines(requestToV1), in: s => s }) }
`,
      'broken.js': 'export default { version: 1, serve: () => ({ in: async function * (s) { for await (const c of s) throw new Error("cannot parse that") }, out: s => s }), call: () => ({ in: s => s, out: s => s }) }\n'
    })
    const [echo] = await streamRoundTrip({ module: path.join(dir, 'lossy.js'), version: 1 }, 2, 'past', samples, 5000)
    expect(echo?.problems).toEqual(['request line 1 .text: "hi" → missing'])
    const [broken] = await streamRoundTrip({ module: path.join(dir, 'broken.js'), version: 1 }, 2, 'past', samples, 5000)
    expect(broken?.problems).toEqual([expect.stringMatching(/^failed: .*cannot parse that/)])
    await expect(streamRoundTrip({ module: path.join(dir, 'missing.js'), version: 1 }, 2, 'past', samples, 5000)).rejects.toThrow(/did not load in a daemon's worker: .*missing\.js/)
  })
})
