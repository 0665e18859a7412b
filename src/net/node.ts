/**
 * The libp2p node of a peer: TCP + noise + yamux + identify + gossipsub (strict
 * signing, topic scoring), optional bootstrap list, mDNS and private-network key; and
 * upgossip's own protocols (block exchange, sync, app streams) as libp2p services,
 * started and stopped with the node. Every other module of `src/` reaches libp2p only
 * through `src/net/`.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import type { TcpNetConnectOpts } from 'node:net'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import type { GossipSub } from '@chainsafe/libp2p-gossipsub'
import { createPeerScoreParams, createPeerScoreThresholds, createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import type { Identify, IdentifyPush } from '@libp2p/identify'
import type { Libp2p, PeerDiscovery, PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import type { TCPOptions } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import type { ServiceFactoryMap } from 'libp2p'
import { UpgossipError } from '../errors.js'
import { writeFileAtomic } from '../store/index.js'
import { appStreams } from './app-streams.js'
// window updates at half the window, as Go's yamux sends them (one frame per app message fewer)
import './yamux-window.js'
import { NOISE_PLAINTEXT_MAX } from './byte-stream.js'
import type { AppStreams, AppStreamsInit } from './app-streams.js'
import { blockExchange } from './block-exchange.js'
import { hasPeerId } from './bootstrap-address.js'
import type { BlockExchange, BlockExchangeInit } from './block-exchange.js'
import { syncProtocol } from './sync.js'
import type { SyncInit, SyncProtocol } from './sync.js'

/** The libp2p services every node runs. */
export type BaseServices = {
  identify: Identify
  /** Tells connected peers when our protocol list changes (a version became spoken). */
  identifyPush: IdentifyPush
  pubsub: GossipSub
}

/** upgossip's own protocols, each a libp2p service. */
export type UpgossipServices = {
  blocks: BlockExchange
  sync: SyncProtocol
  appStreams: AppStreams
}

/** The services of a daemon's node: all of them. */
export type PeerServices = BaseServices & UpgossipServices

/** A started libp2p node with every service a daemon uses. */
export type PeerNode = Libp2p<PeerServices>

/** A started libp2p node with only the base services (a node that is no daemon: a test's, a probe's). */
export type BasePeerNode = Libp2p<BaseServices>

/** What each of upgossip's own services takes; a node runs those given. */
export interface PeerServicesInit {
  blocks?: BlockExchangeInit
  sync?: SyncInit
  appStreams?: AppStreamsInit
}

/** The services of a node created with `services` of type `S`: the base ones and those `S` surely names. */
export type PeerServicesOf<S extends PeerServicesInit> = BaseServices & {
  [K in keyof S & keyof UpgossipServices as undefined extends S[K] ? never : K]: UpgossipServices[K]
}

/** A private-network key file is unreadable. */
export class PskInvalidError extends UpgossipError {
  static override name = 'PskInvalidError'
}

/** A private-network key file that other users may read or change (as ssh refuses a private key that is too open). */
export class PskPermissionsError extends UpgossipError {
  static override name = 'PskPermissionsError'
}

/** A `--listen` address could not be listened on (in use, not an address of this host). */
export class ListenFailedError extends UpgossipError {
  static override name = 'ListenFailedError'
}

/** A peer key file is unreadable. */
export class PeerKeyInvalidError extends UpgossipError {
  static override name = 'PeerKeyInvalidError'
}

/** What {@link createPeerNode} needs. */
export interface PeerNodeInit {
  privateKey: PrivateKey
  listen: string[]
  /** The source address of outgoing TCP connections (`--dial-from`); the system's choice when absent. */
  dialFrom?: string
  /** Bootstrap addresses; those without `/p2p/PEERID` are left to the peer keeper. */
  bootstrap?: string[]
  mdns?: boolean
  /** Contents of a libp2p pnet key file (`/key/swarm/psk/1.0.0/` …). */
  psk?: Uint8Array
  /** Topics scored strictly: invalid messages cost the sender dearly. */
  scoredTopics?: string[]
  maxConnections?: number
  /** upgossip's protocols to run, each with what it takes (a daemon gives all three). */
  services?: PeerServicesInit
}

/** The peer id of a `peer.key` file, without creating one: null when there is none, or it holds no key. */
export async function readPeerId (file: string): Promise<string | null> {
  try {
    return peerIdFromPrivateKey(privateKeyFromProtobuf(await fs.readFile(file))).toString()
  } catch {
    return null
  }
}

/** Read the peer's persistent identity from `file`, creating it (mode 0600) on first start. */
export async function loadPeerKey (file: string): Promise<PrivateKey> {
  let bytes: Uint8Array | undefined
  try {
    bytes = await fs.readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PeerKeyInvalidError(`cannot read ${file}: ${(err as Error).message}`)
  }
  if (bytes == null) {
    const key = await generateKeyPair('Ed25519')
    await writeFileAtomic(file, privateKeyToProtobuf(key), { mode: 0o600 })
    return key
  }
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new PeerKeyInvalidError(`${file} is not a libp2p private key: ${(err as Error).message}`)
  }
}

/**
 * Read a pnet key file (the format of `@libp2p/pnet` generateKey). A file that its group or
 * other users may read or change is refused with {@link PskPermissionsError}, as ssh refuses
 * a private key that is too open: whoever reads it may join the private network.
 */
export async function readPsk (file: string): Promise<Uint8Array> {
  let bytes: Buffer
  let mode: number
  try {
    const handle = await fs.open(file, 'r')
    try {
      // the mode of the file read, not of whatever the name points to by the time it is read
      mode = (await handle.stat()).mode & 0o777
      bytes = await handle.readFile()
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw new PskInvalidError(`cannot read private-network key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new PskPermissionsError(`private-network key ${file} is open to other users (mode ${mode.toString(8).padStart(4, '0')}); it must be readable by its owner only: chmod 600 ${file}`)
  }
  const lines = bytes.toString('utf8').trim().split(/\r?\n/)
  if (lines[0] !== '/key/swarm/psk/1.0.0/' || lines[1] !== '/base16/' || !/^[0-9a-fA-F]{64}$/.test(lines[2] ?? '')) {
    throw new PskInvalidError(`${file} is not a private-network key (expected /key/swarm/psk/1.0.0/, /base16/, 64 hex digits)`)
  }
  return bytes
}

/**
 * A cheap id of one received gossip message, as it came off the wire (topic, sender,
 * sequence number, data, signature). Gossipsub checks the signature of every copy it
 * receives before it can tell a copy from a new message; with this id it drops copies of
 * a message it already accepted first. With beats every second and each message arriving
 * from several mesh peers, the signature checks of copies were the largest share of an
 * idle daemon's CPU (docs/benchmarks-analysis.md). An invalid message is never remembered under
 * its id, so a forgery sent first cannot shadow the real one.
 */
export function fastGossipMessageId (message: { topic: string, from?: Uint8Array, seqno?: Uint8Array, data?: Uint8Array, signature?: Uint8Array }): string {
  const hash = createHash('sha256').update(message.topic).update('\n')
  for (const part of [message.from, message.seqno, message.data, message.signature]) {
    const length = Buffer.alloc(4)
    length.writeUInt32BE(part?.byteLength ?? 0)
    hash.update(length)
    if (part != null) hash.update(part)
  }
  return hash.digest('base64')
}

/**
 * The TCP transport's options: with `dialFrom`, outgoing connections leave from that
 * address. @libp2p/tcp 10 spreads `dialOpts` into `net.connect`'s options, but types them
 * as a subset without `localAddress`; the field is passed through as it is.
 */
function tcpOptions (dialFrom: string | undefined): TCPOptions {
  if (dialFrom == null) return {}
  const dialOpts: NonNullable<TCPOptions['dialOpts']> & Pick<TcpNetConnectOpts, 'localAddress'> = { localAddress: dialFrom }
  return { dialOpts }
}

/**
 * Create and start a libp2p node, with those of upgossip's services `init.services` names
 * (libp2p starts them with the node and stops them with it).
 *
 * @example
 * ```ts
 * const node = await createPeerNode({ privateKey, listen, services: { blocks: { store, metrics, log }, sync: { network, metrics, log, releasesFor }, appStreams: { metrics, log } } })
 * await node.services.sync.sync(peer, { kv: '1.0.0' })
 * ```
 */
export async function createPeerNode<S extends PeerServicesInit = Record<never, never>> (init: PeerNodeInit & { services?: S }): Promise<Libp2p<PeerServicesOf<S>>> {
  // libp2p types the components it hands a service factory as its own internal bag
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  // libp2p's bootstrap discovery takes only complete addresses; the peer keeper dials the others
  const complete = (init.bootstrap ?? []).filter(hasPeerId)
  if (complete.length > 0) peerDiscovery.push(bootstrap({ list: complete, timeout: 100 }))
  // mDNS and pnet are loaded only when asked for: most daemons use neither, and every
  // module loaded stays in the daemon's memory for as long as it runs
  if (init.mdns === true) {
    const { mdns } = await import('@libp2p/mdns')
    peerDiscovery.push(mdns({ interval: 5000 }))
  }
  const preSharedKey = init.psk == null ? undefined : (await import('@libp2p/pnet')).preSharedKey
  const topics = Object.fromEntries((init.scoredTopics ?? []).map(topic => [topic, createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 100,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 50,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    // a single invalid message costs far more than honest traffic earns
    invalidMessageDeliveriesWeight: -1000,
    invalidMessageDeliveriesDecay: 0.99
  })]))
  let node
  try {
    node = await createLibp2p<NodeServices>({
      privateKey: init.privateKey,
      addresses: { listen: init.listen },
      transports: [tcp(tcpOptions(init.dialFrom))],
      connectionEncrypters: [noise()],
      // one full yamux frame fills one noise message, not one and 17 bytes of a second
      streamMuxers: [yamux({ maxMessageSize: NOISE_PLAINTEXT_MAX })],
      connectionProtector: init.psk == null || preSharedKey == null ? undefined : preSharedKey({ psk: init.psk }),
      peerDiscovery,
      connectionManager: { maxConnections: init.maxConnections ?? 64, dialTimeout: 10_000 },
      // No ping stream per connection every 10 s: it only measured round trips (a ping that
      // failed would not close a connection — a stalled 2-core machine must not make us drop
      // healthy ones), yet it was the largest single item of an idle daemon's CPU, a stream
      // opened, negotiated and closed per connection per ping on both sides. Dead connections
      // are still found by TCP and yamux keep-alives (docs/benchmarks-analysis.md).
      connectionMonitor: { enabled: false },
      services: {
        identify: identify(),
        identifyPush: identifyPush(),
        pubsub: gossipsub({
          globalSignaturePolicy: 'StrictSign',
          allowPublishToZeroTopicPeers: true,
          ignoreDuplicatePublishError: true,
          emitSelf: false,
          floodPublish: true,
          fastMsgIdFn: fastGossipMessageId,
          doPX: false,
          scoreParams: createPeerScoreParams({
            topics,
            // every peer of a local testnet shares 127.0.0.1
            IPColocationFactorWeight: 0,
            behaviourPenaltyWeight: -1,
            behaviourPenaltyDecay: 0.9
          }),
          scoreThresholds: createPeerScoreThresholds({
            gossipThreshold: -100,
            publishThreshold: -200,
            graylistThreshold: -300,
            acceptPXThreshold: 0,
            opportunisticGraftThreshold: 1
          })
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
        }) as (components: any) => GossipSub,
        ...upgossipServices(init.services ?? {})
      }
    })
  } catch (err) {
    const message = (err as Error).message ?? ''
    if (/listen|EADDRINUSE|EADDRNOTAVAIL/i.test(message)) {
      throw new ListenFailedError(`cannot listen on ${init.listen.join(' ')}: ${/EADDRINUSE/.test(message) ? 'the address is in use' : /EADDRNOTAVAIL/.test(message) ? 'not an address of this host' : message.split('\n')[0] ?? ''}`)
    }
    throw err
  }
  const connected = node
  // libp2p 2's getPeers() writes each peer id as text and parses it back (a base58 decode
  // and a key parse per peer, per call); the fetch loop, beats and status ask many times a
  // second, and during a swarm this was 6 % of a daemon's CPU. The same peers, each once:
  connected.getPeers = () => connectedPeers(connected.getConnections())
  return node as unknown as Libp2p<PeerServicesOf<S>>
}

/** The distinct remote peers of `connections`, as their connections hold them (no text round trip). */
export function connectedPeers (connections: ReadonlyArray<{ remotePeer: PeerId }>): PeerId[] {
  const peers = new Map<string, PeerId>()
  for (const { remotePeer } of connections) {
    const key = remotePeer.toString()
    if (!peers.has(key)) peers.set(key, remotePeer)
  }
  return [...peers.values()]
}

/** The services a node may run: the base ones, and upgossip's as given. */
type NodeServices = BaseServices & Partial<UpgossipServices>

/** The factories of the upgossip services `init` names, keyed as {@link UpgossipServices}. */
function upgossipServices (init: PeerServicesInit): Omit<ServiceFactoryMap<NodeServices>, keyof BaseServices> {
  const services: Omit<ServiceFactoryMap<NodeServices>, keyof BaseServices> = {}
  if (init.blocks != null) services.blocks = blockExchange(init.blocks)
  if (init.sync != null) services.sync = syncProtocol(init.sync)
  if (init.appStreams != null) services.appStreams = appStreams(init.appStreams)
  return services
}
