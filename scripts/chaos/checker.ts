/**
 * The checker, run once every fault has healed: waits (up to a deadline) for every peer to
 * run the version it should, then reads back every acknowledged write from the peer that
 * acknowledged it.
 */
import { pollUntil, sleep } from '#src/testnet/index.js'
import type { DaemonStatus } from '#src/daemon/index.js'
import { readBack } from './clients.ts'
import type { AckedWrite } from './clients.ts'
import type { Cluster, ChaosPeer } from './cluster.ts'

/** One peer at the end. */
export interface PeerVerdict {
  name: string
  peerId?: string
  version: string | null
  state: string
  /** Other peers it sees. */
  sees: number
  /** Why it is not where it should be (empty when it is). */
  problems: string[]
  /** Its releases that did not end well: `3.0.0 revoked`, `2.0.0 failed: …`. */
  releases: string[]
}

/** Whether the network converged, and each peer's state. */
export interface Convergence {
  converged: boolean
  expected: string
  /** Ms from the end of healing until every peer ran `expected` (when it converged). */
  tookMs?: number
  peers: PeerVerdict[]
  /** Peers that did not answer, or stayed in a switch. */
  wedged: string[]
  versions: Record<string, number>
}

function verdict (p: ChaosPeer, s: DaemonStatus | undefined, expected: string, peers: number, err?: string): PeerVerdict {
  if (s == null) return { name: p.slot.name, version: null, state: 'unreachable', sees: 0, problems: [`status did not answer: ${err ?? 'exited'}`], releases: [] }
  const problems: string[] = []
  if (s.version !== expected) problems.push(`runs ${s.version ?? 'nothing'}, not ${expected}`)
  if (s.state !== 'running') problems.push(`is ${s.state}`)
  const sees = s.network.filter(n => n.app === s.app).length
  if (sees < peers - 1) problems.push(`sees ${sees} of the ${peers - 1} other peers`)
  const releases = s.releases.filter(r => ['failed', 'rolled-back', 'revoked', 'upgrading', 'refused'].includes(r.state))
    .map(r => `${r.version} ${r.state}${r.waitingOn == null ? '' : ` (waiting on ${r.waitingOn})`}${r.reason == null ? '' : `: ${r.reason}`}`)
  return { name: p.slot.name, peerId: s.peerId, version: s.version ?? null, state: s.state, sees, problems, releases }
}

/** Every peer's verdict now. */
export async function verdicts (cluster: Cluster, expected: string): Promise<PeerVerdict[]> {
  return await Promise.all(cluster.peers.map(async p => {
    try {
      return verdict(p, await p.proc.status(), expected, cluster.peers.length)
    } catch (err) {
      return verdict(p, undefined, expected, cluster.peers.length, (err as Error).message)
    }
  }))
}

/** Wait up to `timeoutMs` for every peer to run `expected`, see the others and be idle. */
export async function awaitConvergence (cluster: Cluster, expected: string, timeoutMs: number): Promise<Convergence> {
  const began = Date.now()
  let last: PeerVerdict[] = []
  const failure = await pollUntil(`every peer to run ${expected}`, async () => {
    last = await verdicts(cluster, expected)
    return last.every(v => v.problems.length === 0)
  }, timeoutMs, 1000)
  const versions: Record<string, number> = {}
  for (const v of last) versions[v.version ?? 'none'] = (versions[v.version ?? 'none'] ?? 0) + 1
  // a peer that does not answer, stays in a switch, or holds a release marked upgrading while no switch runs
  const wedged = last.filter(v => ['unreachable', 'upgrading', 'rolling-back', 'failed'].includes(v.state) || (v.state === 'running' && v.releases.some(r => / upgrading/.test(r))))
    .map(v => `${v.name} ${v.state}${v.state === 'running' ? ` with ${v.releases.filter(r => / upgrading/.test(r)).join(', ')}` : ''}`)
  return { converged: failure == null, expected, ...(failure == null ? { tookMs: Date.now() - began } : {}), peers: last, wedged, versions }
}

/** The writes that were acknowledged and do not read back, with the reason. */
export interface LostWrite extends AckedWrite {
  got: unknown
}

/** Read every acknowledged write back from its peer (a read that errors is tried 3 times, then counts as lost). */
export async function readAll (cluster: Cluster, writes: AckedWrite[]): Promise<LostWrite[]> {
  const lost: LostWrite[] = []
  await Promise.all(cluster.peers.map(async peer => {
    for (const w of writes.filter(x => x.peer === peer.slot.name)) {
      let got: unknown
      for (let tries = 0; tries < 3; tries++) {
        try {
          got = await readBack(peer, w.key)
          break
        } catch (err) {
          got = `unreadable: ${(err as Error).message}`
          await sleep(1000)
        }
      }
      if (got !== w.value) lost.push({ ...w, got })
    }
  }))
  return lost.sort((a, b) => a.at - b.at)
}
