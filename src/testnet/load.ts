/**
 * The load generator: steady client requests to every peer through `POST /call`, each
 * answer checked. Clients speak one fixed protocol version of the demo app (the version
 * the network started on), so a client written for v1 keeps working while the peers
 * move on: the shim translates its requests for whatever version runs.
 */
import type { DaemonProcess } from './daemon-process.js'
import { sleep } from './daemon-process.js'

/** Requests and answers of one protocol version of the demo app. */
export interface KvClientCodec {
  protocol: number
  put: (key: string, value: unknown) => unknown
  get: (key: string) => unknown
  incr?: (key: string, by: number) => unknown
  /** The value in an answer (throws on an answer of the wrong shape). */
  value: (response: unknown) => unknown
}

function field (name: string): (response: unknown) => unknown {
  return response => {
    if (response == null || typeof response !== 'object' || !(name in response)) throw new Error(`answer ${JSON.stringify(response)?.slice(0, 120)} has no "${name}"`)
    return (response as Record<string, unknown>)[name]
  }
}

/** The demo app's wire formats (testnet/apps/kv/README.md). */
export const KV_CODECS: Record<number, KvClientCodec> = {
  1: { protocol: 1, put: (key, value) => ({ op: 'put', key, value }), get: key => ({ op: 'get', key }), value: field('value') },
  2: { protocol: 2, put: (k, v) => ({ action: 'set', k, v }), get: k => ({ action: 'fetch', k }), value: field('result') },
  3: { protocol: 3, put: (k, v) => ({ cmd: ['set', k, v] }), get: k => ({ cmd: ['get', k] }), incr: (k, by) => ({ cmd: ['incr', k, by] }), value: field('ok') }
}

/** The codec for `protocol`. */
export function kvCodec (protocol: number): KvClientCodec {
  const codec = KV_CODECS[protocol]
  if (codec == null) throw new Error(`the demo app has no protocol ${protocol}`)
  return codec
}

/** One request that did not get the right answer. */
export interface LoadFailure {
  atMs: number
  peer: string
  op: string
  error: string
}

/** Totals of a load run. */
export interface LoadSummary {
  sent: number
  failed: number
  p50Ms: number
  p99Ms: number
  failures: LoadFailure[]
}

/** What a load generator needs. */
export interface LoadGeneratorInit {
  codec: KvClientCodec
  /** Pause between two requests of one peer's client. */
  intervalMs?: number
  /** Milliseconds since the run began (for failure times). */
  elapsed: () => number
  /** Stop after this many requests in all, whatever happens (every loop that sends traffic is bounded). */
  maxRequests?: number
}

interface Client {
  peer: DaemonProcess
  paused: boolean
  running?: Promise<void>
  idle?: () => void
}

/** Clients writing and reading back keys on every peer, one request in flight per peer. */
export class LoadGenerator {
  private readonly clients = new Map<DaemonProcess, Client>()
  /** Answered requests: when each was sent (ms since the run began) and how long it took. */
  private readonly latencies: Array<{ atMs: number, ms: number }> = []
  private readonly failures: LoadFailure[] = []
  private sent = 0
  private stopped = false

  constructor (private readonly init: LoadGeneratorInit) {}

  /** Start (or resume) a client for `peer`. */
  add (peer: DaemonProcess): void {
    const existing = this.clients.get(peer)
    if (existing != null) {
      existing.paused = false
      existing.running ??= this.loop(existing)
      return
    }
    const client: Client = { peer, paused: false }
    this.clients.set(peer, client)
    client.running = this.loop(client)
  }

  /** Stop sending to `peer` (before stopping it on purpose); resolves when its last request is answered. */
  async pause (peer: DaemonProcess): Promise<void> {
    const client = this.clients.get(peer)
    if (client == null) return
    client.paused = true
    await client.running
    client.running = undefined
  }

  /** Stop every client and wait for their last answers. */
  async stop (): Promise<LoadSummary> {
    this.stopped = true
    await Promise.all([...this.clients.values()].map(async c => { await c.running }))
    return this.summary()
  }

  /**
   * The totals so far, or of the requests within `window` (ms since the run began, `from`
   * inclusive, `to` exclusive; an answer counts when it was sent, a failure when it
   * failed), e.g. before and during a rollout.
   */
  summary (window: { fromMs?: number, toMs?: number } = {}): LoadSummary {
    const from = window.fromMs ?? -Infinity
    const to = window.toMs ?? Infinity
    const inside = (at: number): boolean => at >= from && at < to
    const sorted = this.latencies.filter(l => inside(l.atMs)).map(l => l.ms).sort((a, b) => a - b)
    const failures = this.failures.filter(f => inside(f.atMs))
    const sent = window.fromMs == null && window.toMs == null ? this.sent : sorted.length + failures.length
    return { sent, failed: failures.length, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), failures: failures.slice(0, 20) }
  }

  private async loop (client: Client): Promise<void> {
    const { codec } = this.init
    let n = 0
    while (!this.stopped && !client.paused && this.sent < (this.init.maxRequests ?? 1_000_000)) {
      n++
      // keys hold a slash on purpose: demo v4's transform cannot take them
      const key = `load/${client.peer.name}/${n % 50}`
      const value = `${client.peer.name}:${n}`
      await this.request(client.peer, 'put', codec.put(key, value), value)
      await this.request(client.peer, 'get', codec.get(key), value)
      await sleep(this.init.intervalMs ?? 100)
    }
  }

  private async request (peer: DaemonProcess, op: string, request: unknown, expected: unknown): Promise<void> {
    this.sent++
    const atMs = this.init.elapsed()
    const started = performance.now()
    try {
      const got = this.init.codec.value(await peer.call(request, { protocol: this.init.codec.protocol }))
      if (got !== expected) throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`)
      this.latencies.push({ atMs, ms: performance.now() - started })
    } catch (err) {
      this.failures.push({ atMs: this.init.elapsed(), peer: peer.name, op, error: (err as Error).message })
    }
  }
}

/** The `q` quantile of sorted numbers (0 when empty), rounded to 0.1 ms. */
export function percentile (sorted: number[], q: number): number {
  if (sorted.length === 0) return 0
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return Math.round((sorted[i] as number) * 10) / 10
}
