/**
 * Fetching one package DAG from the swarm: learn which peers hold which of the
 * missing blocks, pull from several peers at once, rarest first, a bounded window per
 * peer, with timeouts and retry elsewhere. A peer that serves a wrong block or breaks
 * the protocol (an oversized frame, more blocks than asked, garbage) is dropped as a
 * source for this package; one that fails otherwise (a timeout, a reset) sits out a
 * while, longer each time. Blocks already held are never fetched again. A peer that does
 * not answer (cut off by a partition, its connection not yet known dead) holds up one
 * round at most: once another peer has offered blocks, the round goes on without it, and
 * it is not asked again until its answer (or its timeout) is in. A full disk here is not
 * the peers' fault: the fetch stops with {@link DiskFullError}, keeping the blocks it
 * holds, instead of asking peer after peer for blocks it cannot store.
 */
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { UpgossipError } from '../errors.js'
import { blockLinks } from '../package/index.js'
import { BlockHashMismatchError, DiskFullError } from '../store/index.js'
import type { BlockStore } from '../store/index.js'
import { BlockProtocolError, MAX_GET_CIDS, MAX_HAVE_CIDS } from './block-exchange.js'
import type { BlockExchange } from './block-exchange.js'
import { MessageTooLargeError } from './stream-codec.js'

/** How long a peer that failed without breaking the protocol sits out first (doubling, at most 8×). */
const BENCH_MS = 15_000

/** Errors that prove a peer is lying or broken, not just slow. */
function isMisbehaviour (err: unknown): boolean {
  return err instanceof BlockHashMismatchError || err instanceof BlockProtocolError || err instanceof MessageTooLargeError
}

/** The fetch was stopped before it completed. */
export class FetchAbortedError extends UpgossipError {
  static override name = 'FetchAbortedError'
}

/** What {@link fetchPackage} needs. */
export interface PackageFetchInit {
  root: CID
  store: BlockStore
  exchange: BlockExchange
  /** Peers that may hold blocks, asked afresh every round. */
  sources: () => PeerId[]
  /** Total bytes of this package's blocks held so far. */
  onProgress: (have: number) => void
  log: (message: string) => void
  signal: AbortSignal
  /** Pause between rounds that made no progress (grows up to 8×). */
  idleMs?: number
  /** The time, for benching peers (default `Date.now`). */
  now?: () => number
  /** How long a round waits for slower peers' `have` answers once a peer has offered blocks. */
  haveGraceMs?: number
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const onAbort = (): void => { clearTimeout(timer); resolve() }
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Fetch every block of the DAG under `root` into the store; resolves when all are held. */
export async function fetchPackage (init: PackageFetchInit): Promise<{ blocks: number, size: number, fetched: number }> {
  const { store, exchange, signal } = init
  const needed = new Map<string, CID>()
  const walked = new Set<string>()
  const banned = new Set<string>()
  const benched = new Map<string, { until: number, strikes: number }>()
  const now = init.now ?? Date.now
  const usable = (peer: PeerId): boolean => !banned.has(peer.toString()) && (benched.get(peer.toString())?.until ?? 0) <= now()
  const failed = (peer: PeerId, what: string, err: unknown): void => {
    const key = peer.toString()
    if (isMisbehaviour(err)) {
      banned.add(key)
      init.log(`peer ${key} ${what}: ${(err as Error).message}; it is no longer a source for this package`)
      return
    }
    const strikes = (benched.get(key)?.strikes ?? 0) + 1
    const ms = BENCH_MS * 2 ** Math.min(strikes - 1, 3)
    benched.set(key, { until: now() + ms, strikes })
    init.log(`peer ${key} ${what}: ${(err as Error).message}; asking others for ${ms / 1000} s`)
  }
  let have = 0
  let fetched = 0

  // walk what we hold; what we lack becomes the frontier
  const walk = async (cid: CID, bytes?: Uint8Array): Promise<void> => {
    const stack: Array<{ cid: CID, bytes?: Uint8Array }> = [{ cid, bytes }]
    while (stack.length > 0) {
      const next = stack.pop() as { cid: CID, bytes?: Uint8Array }
      const key = next.cid.toString()
      if (walked.has(key)) continue
      let data = next.bytes
      if (data == null) {
        if (!(await store.has(next.cid))) {
          needed.set(key, next.cid)
          continue
        }
        try {
          data = await store.get(next.cid)
        } catch {
          needed.set(key, next.cid)
          continue
        }
      }
      walked.add(key)
      needed.delete(key)
      have += data.byteLength
      for (const link of blockLinks(next.cid, data)) stack.push({ cid: link })
    }
  }
  await walk(init.root)
  init.onProgress(have)

  let idleRounds = 0
  let diskFull: DiskFullError | undefined
  /** Peers whose `have` answer is still out, from this round or an earlier one. */
  const asking = new Set<string>()
  while (needed.size > 0) {
    if (signal.aborted) throw new FetchAbortedError('fetch stopped')
    // blocks may have arrived another way (a publish, another release sharing them)
    const before = walked.size
    for (const cid of [...needed.values()]) {
      if (await store.has(cid)) {
        needed.delete(cid.toString())
        await walk(cid)
      }
    }
    if (walked.size > before) init.onProgress(have)
    if (needed.size === 0) break
    const sources = init.sources().filter(p => usable(p) && !asking.has(p.toString()))
    if (sources.length > 0) {
      const wanted = [...needed.values()].slice(0, MAX_HAVE_CIDS)
      // who has what
      const holders = new Map<string, PeerId[]>()
      let offer = (): void => {}
      const offered = new Promise<void>(resolve => { offer = resolve })
      const answers = Promise.all(sources.map(async peer => {
        asking.add(peer.toString())
        try {
          const answer = await exchange.have(peer, wanted)
          answer.forEach((held, i) => {
            if (!held) return
            const key = (wanted[i] as CID).toString()
            holders.set(key, [...(holders.get(key) ?? []), peer])
          })
          if (answer.includes(true)) offer()
        } catch (err) {
          failed(peer, 'did not say which blocks it holds', err)
        } finally {
          asking.delete(peer.toString())
        }
      }))
      await Promise.race([answers, offered.then(async () => { await sleep(init.haveGraceMs ?? 500, signal) })])
      // rarest first, each block to its least-loaded holder, at most one window per peer
      const rarest = wanted.filter(c => (holders.get(c.toString())?.length ?? 0) > 0)
        .sort((a, b) => (holders.get(a.toString())?.length ?? 0) - (holders.get(b.toString())?.length ?? 0))
      const batches = new Map<string, { peer: PeerId, cids: CID[] }>()
      for (const cid of rarest) {
        const candidates = (holders.get(cid.toString()) ?? []).filter(p => (batches.get(p.toString())?.cids.length ?? 0) < MAX_GET_CIDS)
        if (candidates.length === 0) continue
        const peer = candidates.reduce((best, p) => (batches.get(p.toString())?.cids.length ?? 0) < (batches.get(best.toString())?.cids.length ?? 0) ? p : best)
        const batch = batches.get(peer.toString()) ?? { peer, cids: [] }
        batch.cids.push(cid)
        batches.set(peer.toString(), batch)
      }
      await Promise.all([...batches.values()].map(async ({ peer, cids }) => {
        try {
          await exchange.get(peer, cids, async (cid, bytes) => {
            if (walked.has(cid.toString())) return
            await store.put(cid, bytes)
            fetched++
            await walk(cid, bytes)
            init.onProgress(have)
          })
        } catch (err) {
          if (err instanceof DiskFullError) {
            diskFull ??= err
          } else {
            failed(peer, err instanceof BlockHashMismatchError ? 'served a block that does not match its CID' : 'failed to serve blocks', err)
          }
        }
      }))
      if (diskFull != null) throw diskFull
    }
    if (walked.size === before) {
      idleRounds = Math.min(idleRounds + 1, 3)
      await sleep((init.idleMs ?? 500) * 2 ** idleRounds, signal)
    } else {
      idleRounds = 0
    }
  }
  return { blocks: walked.size, size: have, fetched }
}
