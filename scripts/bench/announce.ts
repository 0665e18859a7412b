/**
 * Announcement latency against a plain gossip message, in the same network.
 *
 * The daemons subscribe to two topics only, so a message on a topic of our own would
 * reach no daemon. Instead a probe node — a libp2p node built by `src/net` with the
 * daemons' own settings, joined to the network through the first daemon only — publishes
 * both kinds of message from the same place in the mesh:
 *
 * - plain: a status beat padded to 1 KiB. Daemons check a beat against its schema (no
 *   signature of ours, no disk) and forward it; each records when it took it in as the
 *   `seen` time of the probe node in `GET /status`.
 * - release: a signed release of a tiny package. Daemons check signatures, trust and
 *   limits, store it durably, then forward it; each logs `release-admitted` with the time.
 *
 * Latency = the last daemon's time − the probe's publish time (one clock: one machine).
 * Probes alternate, one at a time; the ratio is of medians. Each probe starts on a quiet
 * network: after a release probe every daemon fetches and stages its package and beats
 * its new state, so the next probe waits until every daemon holds the package, then 2 s
 * (two beat ticks of the bench's daemons) as after a plain one. Without that wait, a
 * 25-daemon network on 2 CPUs was still busy with the last releases' fetches and beats
 * when the next probe went out, and each release probe found it busier: the last daemon
 * admitted them after 0.2, 1.3, 2.7, 6.7 and 14.7 s, and the beats between them after
 * 1.5, 0.7, 1.1 and 2.0 s (`--quick --only announce --peers 25`). The probe node's beats
 * announce a 10-minute idle interval, so the daemons keep it in their views between probes:
 * otherwise a plain probe more than `peerTimeout` after the last was a newcomer's beat, on
 * which every daemon beats at once, and the probe measured that burst of 25 beats.
 */
import fs from 'node:fs/promises'
import { MAX_IDLE_BEAT_MS, createPeerNode, encodeBeat, loadPeerKey, noNetMetrics, releasesTopic, statusTopic } from '#src/net/index.js'
import type { BasePeerNode, StatusBeat } from '#src/net/index.js'
import { bundlePackageBlocks, encodeReleasesTopicMessage, readBundle } from '#src/release/index.js'
import { MemoryBlockStore } from '#src/store/index.js'
import type { DaemonProcess } from '#src/testnet/index.js'
import type { BenchNetwork, BenchRelease, Progress } from './network.ts'
import { sleep } from './network.ts'
import { median, ratio, round } from './stats.ts'
import { HELD } from './swarm.ts'

/** One probe: when each daemon had it. */
export interface AnnounceProbe {
  kind: 'release' | 'plain'
  bytes: number
  /** Publish until the last daemon had it. */
  lastMs: number
  /** Publish until the median daemon had it. */
  medianMs: number
}

/** The announcement figures. */
export interface AnnounceResult {
  peers: number
  ratio: number | null
  /** Median over probes of the last daemon's latency. */
  releaseMs: number
  plainMs: number
  /** Same, for the median daemon. */
  releaseMedianPeerMs: number
  plainMedianPeerMs: number
  releaseMessageBytes: number
  plainMessageBytes: number
  probes: AnnounceProbe[]
  method: string
  /** Every network size measured (full mode measures each swarm network). */
  byPeers?: Array<{ peers: number, ratio: number | null, releaseMs: number, plainMs: number }>
}

const METHOD = 'probe node joined through one daemon publishes, alternately, a signed release of a tiny package and a 1 KiB status beat, each on a quiet network (after a release, every daemon has staged its package; then 2 s); latency to the last daemon (event log time / status "seen" time minus publish time); ratio of medians'

async function waitForSubscribers (node: BasePeerNode, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (topics.every(t => node.services.pubsub.getSubscribers(t).length > 0)) return
    await sleep(100)
  }
  throw new Error('the probe node saw no daemon subscribe to the network\'s topics')
}

/** A beat from the probe node, padded so its encoding is `size` bytes (± a few). */
function plainBeat (probe: string, size: number): Uint8Array {
  // it announces the longest idle interval, so it stays in every view between probes: a beat
  // from a peer a daemon has forgotten is a newcomer's, and a newcomer makes every daemon beat
  const beat: StatusBeat = { v: 1, seq: Date.now(), app: null, version: null, state: 'installing', labels: { probe, pad: '' }, addrs: [], heads: {}, held: [], idle: MAX_IDLE_BEAT_MS }
  const bare = encodeBeat(beat).byteLength
  beat.labels.pad = 'x'.repeat(Math.max(0, Math.min(256, size - bare)))
  // a label holds at most 256 characters: more padding goes into more labels
  for (let i = 0, left = size - encodeBeat(beat).byteLength; left > 8 && i < 8; i++, left = size - encodeBeat(beat).byteLength) {
    beat.labels[`pad${i}`] = 'x'.repeat(Math.min(256, left - 8))
  }
  return encodeBeat(beat)
}

/** Run the probes on a network whose daemons run `kv`. */
export async function announce (net: BenchNetwork, probes: number, progress: Progress, minorBase = 90): Promise<AnnounceResult> {
  const publisher = net.peers[0] as DaemonProcess
  const keyFile = net.ws.file('probe-node.key')
  const store = new MemoryBlockStore()
  // the probe node serves blocks (block exchange only: no sync, no app streams)
  const node = await createPeerNode({
    privateKey: await loadPeerKey(keyFile),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [publisher.addr],
    scoredTopics: [releasesTopic('default'), statusTopic('default')],
    services: { blocks: { store, metrics: noNetMetrics, log: () => {} } }
  })
  const pubsub = node.services.pubsub
  pubsub.subscribe(releasesTopic('default'))
  pubsub.subscribe(statusTopic('default'))
  const self = node.peerId.toString()
  const results: AnnounceProbe[] = []
  try {
    await waitForSubscribers(node, [releasesTopic('default'), statusTopic('default')])
    // introduce the probe node (every daemon beats once for a newcomer), and let the meshes
    // form (heartbeats) before the first probe
    await pubsub.publish(statusTopic('default'), plainBeat('hello', 0))
    await sleep(3000)
    for (let k = 0; k < probes * 2; k++) {
      const kind = k % 2 === 0 ? 'release' : 'plain'
      let bytes: number
      let at: number
      let times: number[]
      let release: BenchRelease | undefined
      if (kind === 'release') {
        const probeRelease = await net.release({ manifest: { version: `1.${minorBase}.${k}`, schedule: [{ rule: 'approve' }] } })
        release = probeRelease
        // the probe node serves the tiny package, so the daemons' fetches after admission find it
        const bundle = await readBundle(release.bytes)
        for (const cid of (await bundlePackageBlocks(bundle)).cids) await store.put(cid, await bundle.blocks.get(cid))
        const message = encodeReleasesTopicMessage({ type: 'release', signed: bundle.signed })
        bytes = message.byteLength
        at = Date.now()
        await pubsub.publish(releasesTopic('default'), message)
        times = await Promise.all(net.peers.map(async p => await net.eventTime(p, 'release-admitted', probeRelease.id, 30_000) ?? NaN))
      } else {
        const probe = `p${k}`
        const message = plainBeat(probe, 1024)
        bytes = message.byteLength
        at = Date.now()
        await pubsub.publish(statusTopic('default'), message)
        times = await Promise.all(net.peers.map(async p => await seenAt(p, self, probe)))
      }
      if (times.some(t => Number.isNaN(t))) throw new Error(`a daemon never had the ${kind} probe ${k}`)
      const latencies = times.map(t => t - at)
      results.push({ kind, bytes, lastMs: Math.max(...latencies), medianMs: median(latencies) })
      progress(`  announce probe ${k + 1}/${probes * 2} (${kind}, ${bytes} B): last daemon after ${Math.max(...latencies)} ms`)
      // the next probe goes out on a quiet network (see the top of this file)
      if (release != null) await net.waitRelease(release, HELD, net.peers, 120_000)
      await sleep(2000)
    }
  } finally {
    // stops the block exchange with the node
    await node.stop()
    await fs.rm(keyFile, { force: true })
  }
  const of = (kind: string, f: (p: AnnounceProbe) => number): number => median(results.filter(p => p.kind === kind).map(f))
  return {
    peers: net.peers.length,
    ratio: ratio(of('release', p => p.lastMs), of('plain', p => p.lastMs), 2),
    releaseMs: of('release', p => p.lastMs),
    plainMs: of('plain', p => p.lastMs),
    releaseMedianPeerMs: round(of('release', p => p.medianMs), 1),
    plainMedianPeerMs: round(of('plain', p => p.medianMs), 1),
    releaseMessageBytes: of('release', p => p.bytes),
    plainMessageBytes: of('plain', p => p.bytes),
    probes: results,
    method: METHOD
  }
}

/**
 * When `peer` took in the probe beat `probe` of the probe node (its view's `seen`), waiting up to 30 s.
 * The time is the daemon's own, so asking every 500 ms loses nothing; asking fifty daemons
 * every 100 ms was work enough to keep a 50-daemon network's status calls from answering
 * within 5 s. A status call that times out is asked again until the deadline.
 */
async function seenAt (peer: DaemonProcess, probeNode: string, probe: string): Promise<number> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const status = await peer.status().catch(() => undefined)
    const entry = status?.network.find(e => e.peerId === probeNode)
    if (entry?.labels.probe === probe) return Date.parse(entry.seen)
    await sleep(500)
  }
  return NaN
}
