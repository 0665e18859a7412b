/**
 * The chaos run's clients: one per peer, each writing unique keys to its peer's app
 * (`POST /call` in protocol 1, the version the network started on: the shim translates for
 * whatever version runs) and recording every write the app acknowledged, that is answered
 * with the value written. A write that got an error or no answer is not acknowledged and
 * is never checked.
 */
import { kvCodec, sleep } from '#src/testnet/index.js'
import type { Cluster, ChaosPeer } from './cluster.ts'

/** A write the app acknowledged to a client. */
export interface AckedWrite {
  peer: string
  key: string
  value: string
  /** Ms since the run began, when it was acknowledged. */
  at: number
}

/** What the clients need. */
export interface ClientsInit {
  cluster: Cluster
  elapsed: () => number
  /** Pause between two writes of one client. */
  intervalMs?: number
  /** Every loop is bounded: no more writes than this in all. */
  maxWrites?: number
  /** Also written into every value, so that values of two runs never match. */
  tag: string
}

const CODEC = kvCodec(1)

/** Clients writing to every peer until stopped. */
export class Clients {
  readonly acked: AckedWrite[] = []
  attempted = 0
  failed = 0
  private stopped = false
  private loops: Array<Promise<void>> = []

  private readonly init: ClientsInit
  constructor (init: ClientsInit) {
    this.init = init
  }

  start (): void {
    this.loops = this.init.cluster.peers.map(async p => { await this.loop(p) })
  }

  async stop (): Promise<void> {
    this.stopped = true
    await Promise.all(this.loops)
  }

  private async loop (peer: ChaosPeer): Promise<void> {
    let n = 0
    while (!this.stopped && this.attempted < (this.init.maxWrites ?? 100_000)) {
      if (peer.down || peer.proc.exited) {
        await sleep(250)
        continue
      }
      n++
      this.attempted++
      const key = `chaos/${peer.slot.name}/${n}`
      const value = `${this.init.tag}:${peer.slot.name}:${n}`
      try {
        const got = CODEC.value(await peer.proc.call(CODEC.put(key, value), { protocol: CODEC.protocol, timeoutMs: 10_000 }))
        if (got !== value) throw new Error(`answered ${JSON.stringify(got)}`)
        this.acked.push({ peer: peer.slot.name, key, value, at: this.init.elapsed() })
      } catch {
        this.failed++
        await sleep(500)
      }
      await sleep(this.init.intervalMs ?? 150)
    }
  }
}

/** Read `write` back from the peer that acknowledged it: the value it holds there now (null when absent). */
export async function readBack (peer: ChaosPeer, key: string): Promise<unknown> {
  return CODEC.value(await peer.proc.call(CODEC.get(key), { protocol: CODEC.protocol, timeoutMs: 15_000 }))
}
