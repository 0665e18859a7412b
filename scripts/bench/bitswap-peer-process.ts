/**
 * One peer of the bench's @helia/bitswap comparison, as its own process like a daemon: a
 * libp2p node with the daemons' transports (TCP, noise, yamux, identify; the versions
 * upgossip pins) and @helia/bitswap over a blockstore-fs store on disk, sharded as the
 * daemons' store is. The publisher imports the package blocks of a release bundle first;
 * a fetcher, told the package root, walks the DAG from it, wanting every block of a
 * directory or file node as soon as that node arrived, checks each block against its
 * sha-256, writes it to disk and tells bitswap it has it (so peers that want it get it from
 * here, as Helia's blockstore does). Bytes are counted on the connections
 * (bitswap-byte-meter.ts).
 *
 * Commands on stdin, one JSON object a line; answers on stdout the same way:
 * - on start: `{"addr", "peerId"}` (the publisher adds `"root"` and `"blocks"` once imported)
 * - `{"dial": [ADDR…], "peers": K}` → dials each, then `{"ready": true}` once K connected peers speak bitswap
 * - `{"fetch": CID}` → `{"done": true, "blocks", "bytes", "stalls", "failedSends", "endAt"}`, the same with
 *   `"done": false, "stalled": true` when it gave up (no block for 70 s), or `{"done": false, "failed"}` when bitswap's fetch threw
 * - `{"counters": true}` → `{"counters": {"bytesIn", "bytesOut", "connections"}}`
 * Exits when stdin closes.
 *
 * Usage: node bitswap-peer-process.ts DIR [BUNDLE.car]
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { createBitswap } from '@helia/bitswap'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import * as dagPb from '@ipld/dag-pb'
import { multiaddr } from '@multiformats/multiaddr'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import { equals } from 'uint8arrays/equals'
import { readCar } from '#src/package/index.js'
import { decodeSignedRelease } from '#src/release/index.js'
import { ConnectionByteMeter } from './bitswap-byte-meter.ts'

/** The protocol bitswap 2.2.0 speaks. */
const BITSWAP_PROTOCOL = '/ipfs/bitswap/1.2.0'
const SHA2_256 = 0x12
/** A fetch that got no block for this long reconnects to its peers (see rescueStall). */
const STALL_MS = 10_000
/** Rescues in a row without a block after which a fetch gives up (it reports what it holds). */
const GIVE_UP_RESCUES = 6

/** Content routing as bitswap takes it. */
type Routing = Parameters<typeof createBitswap>[0]['routing']

/** No content routing: peers find blocks only among those they are connected to, as in the daemons' swarm. */
const noRouting: Routing = {
  async provide () {},
  async cancelReprovide () {},
  async put () {},
  async get () { throw new Error('no routing in the bench') },
  async * findProviders () {},
  async findPeer () { throw new Error('no routing in the bench') },
  async * getClosestPeers () {}
}

/** A block whose bytes do not hash to its CID (never expected from an honest peer). */
class BlockHashMismatchError extends Error {
  static override name = 'BlockHashMismatchError'
}

/**
 * Helia's defaults, or with `BENCH_BITSWAP_RECEIVE_TIMEOUT_MS` another time limit on an
 * incoming message: 2.2.0 reads it as `messageReceiveTimeout` (5 s), not as the
 * `incomingStreamTimeout` its documentation names (30 s).
 */
function bitswapSettings (receiveTimeoutMs: string | undefined): Parameters<typeof createBitswap>[1] {
  if (receiveTimeoutMs == null) return {}
  const settings = { messageReceiveTimeout: Number(receiveTimeoutMs), incomingStreamTimeout: Number(receiveTimeoutMs) }
  return settings
}

function say (message: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(message) + '\n')
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const [dir, bundle] = process.argv.slice(2) as [string, string | undefined]
  const blockstore = new FsBlockstore(path.join(dir, 'blocks'), { shardingStrategy: new NextToLast() })
  await blockstore.open()
  const meter = new ConnectionByteMeter()
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 64, dialTimeout: 10_000 },
    connectionMonitor: { abortConnectionOnPingFailure: false },
    metrics: () => meter,
    services: { identify: identify() }
  })
  const bitswap = createBitswap({ libp2p: node, blockstore, routing: noRouting, logger: node.logger, metrics: meter }, bitswapSettings(process.env.BENCH_BITSWAP_RECEIVE_TIMEOUT_MS))
  await bitswap.start()

  let root: CID | undefined
  let imported = 0
  if (bundle != null) {
    const { roots, blocks } = await readCar(await fs.readFile(bundle))
    const release = roots[0] as CID
    root = decodeSignedRelease((blocks.get(release.toString()) as { bytes: Uint8Array }).bytes).record.package
    for (const block of blocks.values()) {
      if (block.cid.equals(release)) continue
      await blockstore.put(block.cid, block.bytes)
      imported++
    }
  }
  say({ addr: node.getMultiaddrs()[0]?.toString(), peerId: node.peerId.toString(), ...(root == null ? {} : { root: root.toString(), blocks: imported }) })

  /** Connected peers that announced bitswap (identify has run on their connection). */
  const bitswapPeers = async (): Promise<number> => {
    // a peer just connected may not be in the peer store yet
    const speaks = await Promise.all(node.getPeers().map(async p => await node.peerStore.get(p).then(peer => peer.protocols.includes(BITSWAP_PROTOCOL), () => false)))
    return speaks.filter(Boolean).length
  }

  /** Fetch one block and, for a dag-pb node, every block under it, all at once. */
  let blocks = 0
  let bytes = 0
  let lastBlockAt = Date.now()
  let stalls = 0
  let failedSends = 0
  /** Rescues since the last block arrived: after GIVE_UP_RESCUES the fetch gives up. */
  let idleRescues = 0
  let giveUp: () => void = () => {}
  const wanted = new Set<string>()
  const fetchTree = async (cid: CID): Promise<void> => {
    // a block linked twice (two equal files, two equal chunks) is fetched once
    if (wanted.has(cid.toString())) return
    wanted.add(cid.toString())
    const block = await bitswap.want(cid)
    if (cid.multihash.code !== SHA2_256 || !equals(createHash('sha256').update(block).digest(), cid.multihash.digest)) throw new BlockHashMismatchError(`block ${cid.toString()} does not hash to its CID`)
    await blockstore.put(cid, block)
    // notify sends the block to the peers that want it. Not awaited: in 2.2.0 it can wait
    // forever on a send to one peer (a quick run had a peer stop at 5 of 21 blocks, its
    // want-list never sent) and a send that fails rejects it — both would hold up Helia's
    // blockstore.get that fetched the block; here the walk goes on and failures are counted
    void bitswap.notify(cid, block).catch(() => { failedSends++ })
    lastBlockAt = Date.now()
    idleRescues = 0
    blocks++
    bytes += block.byteLength
    if (cid.code === dagPb.code) await Promise.all(dagPb.decode(block).Links.map(async link => { await fetchTree(link.Hash) }))
  }

  /**
   * bitswap 2.2.0 treats a message it failed to write (a stream reset, the receiver's 5 s
   * timeout on a loaded machine) as sent, and sends its want-list again only to a peer that
   * connects anew, so a fetch can wait forever (a quick run did, one peer at 5 of 21
   * blocks). After STALL_MS without a block, send the whole want-list to every connected
   * peer again — what kubo's periodic rebroadcast does — through the want-list's own
   * handler of a new peer (internal to 2.2.0, looked up at run time). Counted in `stalls`.
   */
  const wantList: unknown = Reflect.get(bitswap, 'wantList')
  const peerConnected: unknown = typeof wantList === 'object' && wantList !== null ? Reflect.get(wantList, 'peerConnected') : undefined
  if (typeof peerConnected !== 'function') throw new Error('this @helia/bitswap has no wantList.peerConnected: the stall rescue needs another way to resend want-lists')
  let rescuing = false
  const rescueStall = (): void => {
    if (rescuing || Date.now() - lastBlockAt < STALL_MS) return
    rescuing = true
    stalls++
    if (++idleRescues > GIVE_UP_RESCUES) giveUp()
    // not awaited either: a send can wait forever
    for (const p of node.getPeers()) void Promise.resolve(Reflect.apply(peerConnected, wantList, [p])).catch(() => {})
    lastBlockAt = Date.now()
    rescuing = false
  }

  const commands = createInterface({ input: process.stdin })
  commands.on('line', line => {
    void (async () => {
      const command = JSON.parse(line) as { dial?: string[], peers?: number, fetch?: string, counters?: boolean }
      if (command.dial != null) {
        // a dial may meet a reset while nine others dial at once: tried again, six times at most
        for (const addr of command.dial) {
          for (let attempt = 1; ; attempt++) {
            try {
              await node.dial(multiaddr(addr))
              break
            } catch (err) {
              if (attempt >= 6) throw new Error(`dialing ${addr}: ${(err as Error).message} (${attempt} tries)`)
              await new Promise(resolve => setTimeout(resolve, 200 * attempt + Math.random() * 200))
            }
          }
        }
        while (await bitswapPeers() < (command.peers ?? 0)) await new Promise(resolve => setTimeout(resolve, 100))
        say({ ready: true })
      } else if (command.fetch != null) {
        lastBlockAt = Date.now()
        const rescue = setInterval(rescueStall, 1000)
        try {
          const gaveUp = new Promise<'gave up'>(resolve => { giveUp = () => { resolve('gave up') } })
          const outcome = await Promise.race([fetchTree(CID.parse(command.fetch)), gaveUp])
          say({ done: outcome !== 'gave up', stalled: outcome === 'gave up', blocks, bytes, stalls, failedSends, endAt: Date.now() })
        } catch (err) {
          // bitswap's own failure (a stream ended under a want): the finding, as a give-up is
          say({ done: false, failed: (err as Error).message, blocks, bytes, stalls, failedSends, endAt: Date.now() })
        } finally {
          clearInterval(rescue)
        }
      } else if (command.counters === true) {
        say({ counters: { bytesIn: meter.bytesIn, bytesOut: meter.bytesOut, connections: meter.connections } })
      }
    })().catch(err => { say({ error: (err as Error).message }) })
  })
  commands.on('close', () => {
    // a node that does not stop in time must not outlive the bench
    setTimeout(() => process.exit(0), 5000).unref()
    void (async () => {
      await bitswap.stop()
      await node.stop()
      await blockstore.close()
    })().finally(() => process.exit(0))
  })
}
