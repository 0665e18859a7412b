/**
 * Swarm against an HTTPS origin: a release of a package with one large random file is
 * published through one daemon (the publisher) of N; the time until every other daemon
 * holds the verified, staged package, the bytes the publisher sent and the block bytes
 * every other daemon received come from the daemons' own event logs and metrics. The
 * same bundle then goes from an HTTPS origin to N−1 client processes. Last, a release
 * that changes one small file of the package shows what an update moves.
 */
import { randomBytes } from 'node:crypto'
import type { DaemonProcess } from '#src/testnet/index.js'
import type { Certificate } from './certificate.ts'
import { httpsBaseline } from './https-origin.ts'
import { cpuSeconds } from './footprint.ts'
import type { BenchNetwork, BenchRelease, Progress } from './network.ts'
import { metricSum, releaseBytesOut } from './prometheus.ts'
import type { MetricSample } from './prometheus.ts'
import { cpuRatio, swarmCounters } from './swarm-counters.ts'
import type { SwarmCounters } from './swarm-counters.ts'
import { mib, quantile, round, sortedCopy, swarmRatios } from './stats.ts'

/** States in which a daemon holds a verified package (it is staged, or past it). */
export const HELD = ['staged', 'waiting', 'upgrading', 'active', 'superseded']

/** One swarm run and its HTTPS baseline. */
export interface SwarmRun {
  peers: number
  packageBytes: number
  bundleBytes: number
  /** The publisher's admission (blocks imported, gossip starts) until the last peer staged the package. */
  swarmMs: number
  /** The `POST /publish` call itself (read, verify and import the bundle on the publisher). */
  publishMs: number
  /** The publisher's admission until half of the other peers, and until 90 % of them, staged the package (absent in runs before they were measured). */
  swarmMedianMs?: number
  swarmP90Ms?: number
  /** The publisher's admission until the last peer admitted the release (the announcement). */
  announceMs: number
  /** Bytes the publisher's daemon sent for the release (blocks, releases topic, sync; not beats). */
  publisherSentBytes: number
  /** Of which block payload. */
  publisherBlockBytes: number
  /** Block payload bytes received by all peers but the publisher. */
  blockBytesReceived: number
  /** Block payload bytes served by peers other than the publisher. */
  peerServedBytes: number
  httpsMs: number
  httpsOriginSentBytes: number
  /** CPU time of every daemon (publish to the last staged), and of the HTTPS origin and clients. */
  swarmCpuMs: number
  httpsCpuMs: number
  /** Block-exchange requests all daemons answered during the swarm (absent in runs before they were counted). */
  haveRequests?: number
  /** Of which asked to wait for a block (blocks 1.1.0). */
  waitRequests?: number
  getRequests?: number
  /** Status beats all daemons took in from gossip during the swarm (each daemon counts a beat once). */
  beatsHeard?: number
  publisherEgressRatio: number | null
  duplicateRatio: number | null
  timeVsHttps: number | null
  /** Swarm CPU-s per MiB delivered ÷ the HTTPS origin's and clients' (absent in runs before it; {@link cpuRatio} computes it from the CPU times). */
  cpuRatio?: number | null
  /** The daemons' counters during the swarm, summed over every daemon: where its CPU goes (absent in runs before they were kept). */
  counters?: SwarmCounters
}

/** A release changing one small file of a large package. */
export interface DeltaRun {
  peers: number
  packageBytes: number
  changedFileBytes: number
  /** Block payload bytes received per peer (mean over all but the publisher). */
  bytesPerPeer: number
  /** bytesPerPeer ÷ packageBytes. */
  fractionOfPackage: number | null
  publisherSentBytes: number
  ms: number
}

interface Snapshot { publisherOut: number, publisherBlockOut: number, received: number, served: number, have: number, wait: number, get: number, beats: number, metrics: MetricSample[][] }

async function snapshot (net: BenchNetwork): Promise<Snapshot> {
  const [publisher, ...others] = net.peers as [DaemonProcess, ...DaemonProcess[]]
  const pm = await net.metrics(publisher)
  const om = await Promise.all(others.map(async p => await net.metrics(p)))
  const total = (name: string, where: Parameters<typeof metricSum>[2]): number => [pm, ...om].reduce((sum, m) => sum + metricSum(m, name, where), 0)
  return {
    publisherOut: releaseBytesOut(pm),
    publisherBlockOut: metricSum(pm, 'upgossip_block_bytes_total', { direction: 'out' }),
    received: om.reduce((sum, m) => sum + metricSum(m, 'upgossip_block_bytes_total', { direction: 'in' }), 0),
    served: om.reduce((sum, m) => sum + metricSum(m, 'upgossip_block_bytes_total', { direction: 'out' }), 0),
    have: total('upgossip_block_requests_total', l => l.kind === 'have' || l.kind === 'wait'),
    wait: total('upgossip_block_requests_total', { kind: 'wait' }),
    get: total('upgossip_block_requests_total', { kind: 'get' }),
    beats: total('upgossip_gossip_messages_total', { topic: 'status' }),
    metrics: [pm, ...om]
  }
}

/** Publish `release` through the first daemon and wait until every daemon holds it; what it cost. */
async function spread (net: BenchNetwork, release: BenchRelease): Promise<{ swarmMs: number, medianMs: number, p90Ms: number, publishMs: number, announceMs: number, cpuMs: number, before: Snapshot, after: Snapshot }> {
  const [publisher, ...others] = net.peers as [DaemonProcess, ...DaemonProcess[]]
  const before = await snapshot(net)
  const cpu = (): number => net.peers.reduce((sum, p) => sum + (cpuSeconds(p.pid as number) ?? 0), 0)
  const cpuBefore = cpu()
  const t0 = Date.now()
  await publisher.api('POST', '/publish', release.bytes, 300_000)
  const publishMs = Date.now() - t0
  await net.waitRelease(release, HELD, net.peers, 600_000)
  const cpuMs = Math.round((cpu() - cpuBefore) * 1000)
  const admittedAt = await net.eventTime(publisher, 'release-admitted', release.id) ?? t0
  const staged = await Promise.all(others.map(async p => await net.eventTime(p, 'release-staged', release.id)))
  const admitted = await Promise.all(others.map(async p => await net.eventTime(p, 'release-admitted', release.id)))
  if (staged.some(t => t == null)) throw new Error(`a daemon holds ${release.version} but logged no release-staged event`)
  // the last "fetched" counts may trail the staged state by a moment
  await new Promise(resolve => setTimeout(resolve, 300))
  const after = await snapshot(net)
  const times = sortedCopy((staged as number[]).map(t => t - admittedAt))
  return {
    swarmMs: Math.max(...times),
    medianMs: Math.round(quantile(times, 0.5)),
    p90Ms: Math.round(quantile(times, 0.9)),
    publishMs,
    announceMs: Math.max(...admitted.map(t => t ?? admittedAt)) - admittedAt,
    cpuMs,
    before,
    after
  }
}

/** Measure every package size on a network of N daemons that already runs `kv`; the HTTPS origin listens on `originHost` (its own, when uplinks are shaped); `alternative` runs after each. */
export async function swarmRuns (net: BenchNetwork, sizes: number[], cert: Certificate, progress: Progress, firstMinor = 1, opts: { originHost?: string, alternative?: (run: SwarmRun, release: BenchRelease, dir: string) => Promise<void> } = {}): Promise<SwarmRun[]> {
  const runs: SwarmRun[] = []
  let minor = firstMinor
  for (const size of sizes) {
    const release = await net.release({ files: { 'blob.bin': randomBytes(size), 'notes.txt': 'first notes\n' }, manifest: { version: `1.${minor++}.0`, schedule: [{ rule: 'approve' }] } })
    progress(`  swarm: ${net.peers.length} peers, ${mib(release.size)} package (kv ${release.version})…`)
    const s = await spread(net, release)
    const https = await httpsBaseline({ file: release.file, clients: net.peers.length - 1, dir: net.ws.file('https'), cert, host: opts.originHost })
    const measure = {
      peers: net.peers.length,
      packageBytes: release.size,
      publisherSentBytes: s.after.publisherOut - s.before.publisherOut,
      blockBytesReceived: s.after.received - s.before.received,
      swarmMs: s.swarmMs,
      httpsMs: https.ms
    }
    const run: SwarmRun = {
      ...measure,
      bundleBytes: release.bytes.length,
      swarmMedianMs: s.medianMs,
      swarmP90Ms: s.p90Ms,
      publishMs: s.publishMs,
      announceMs: s.announceMs,
      publisherBlockBytes: s.after.publisherBlockOut - s.before.publisherBlockOut,
      peerServedBytes: s.after.served - s.before.served,
      httpsOriginSentBytes: https.originSentBytes,
      swarmCpuMs: s.cpuMs,
      httpsCpuMs: https.cpuMs,
      haveRequests: s.after.have - s.before.have,
      waitRequests: s.after.wait - s.before.wait,
      getRequests: s.after.get - s.before.get,
      beatsHeard: s.after.beats - s.before.beats,
      counters: swarmCounters(s.before.metrics, s.after.metrics),
      ...swarmRatios(measure),
      cpuRatio: cpuRatio({ swarmCpuMs: s.cpuMs, httpsCpuMs: https.cpuMs })
    }
    progress(`    swarm ${run.swarmMs} ms (half the peers ${run.swarmMedianMs} ms, 90 % ${run.swarmP90Ms} ms; publish call ${run.publishMs} ms, ${(run.swarmCpuMs / 1000).toFixed(1)} CPU-s), HTTPS ${run.httpsMs} ms (${(run.httpsCpuMs / 1000).toFixed(1)} CPU-s); CPU × ${run.cpuRatio ?? '–'} the origin's; publisher sent ${round(run.publisherEgressRatio ?? 0, 2)}× the package, duplicates ${round(run.duplicateRatio ?? 0, 2)}×; ${run.haveRequests ?? 0} have (${run.waitRequests ?? 0} waiting) and ${run.getRequests ?? 0} get requests, ${run.beatsHeard ?? 0} beats heard`)
    runs.push(run)
    // another block protocol on the same package and as many processes (scripts/bench/bitswap.ts)
    await opts.alternative?.(run, release, net.ws.file('alternative'))
  }
  return runs
}

/** A release of the same package with one small file changed: what moves. */
export async function deltaRun (net: BenchNetwork, size: number, progress: Progress, minor: number): Promise<DeltaRun> {
  const blob = randomBytes(size)
  const first = await net.release({ files: { 'blob.bin': blob, 'notes.txt': 'first notes\n' }, manifest: { version: `1.${minor}.0`, schedule: [{ rule: 'approve' }] } })
  progress(`  delta: ${net.peers.length} peers hold a ${mib(first.size)} package (kv ${first.version})…`)
  await spread(net, first)
  const changed = 'second notes, one line longer\nthan the first\n'
  const next = await net.release({ files: { 'blob.bin': blob, 'notes.txt': changed }, manifest: { version: `1.${minor}.1`, schedule: [{ rule: 'approve' }] } })
  const s = await spread(net, next)
  const received = s.after.received - s.before.received
  const bytesPerPeer = Math.round(received / (net.peers.length - 1))
  const run: DeltaRun = {
    peers: net.peers.length,
    packageBytes: next.size,
    changedFileBytes: Buffer.byteLength(changed),
    bytesPerPeer,
    fractionOfPackage: round(bytesPerPeer / next.size, 6),
    publisherSentBytes: s.after.publisherOut - s.before.publisherOut,
    ms: s.swarmMs
  }
  progress(`    kv ${next.version} changes notes.txt: ${bytesPerPeer} block bytes per peer (${(100 * bytesPerPeer / next.size).toFixed(4)} % of the package), ${run.ms} ms`)
  return run
}
