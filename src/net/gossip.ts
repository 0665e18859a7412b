/**
 * The two gossip topics of a network, with validators that run *before* anything is
 * forwarded: `releases` (signed releases) and `status` (beats). Gossipsub runs with
 * strict signing, so `from` is authenticated; a REJECT scores the sender down.
 */
import { TopicValidatorResult } from '@libp2p/interface'
import type { Logger, Message, SubscriptionChangeData } from '@libp2p/interface'
import type { NetMetrics } from './metrics.js'
import type { BasePeerNode } from './node.js'
import { releasesTopic, statusTopic } from './protocol-ids.js'

/** How long a neighbour subscribed to beats may take to open the stream a beat goes out on. */
const SUBSCRIBER_WAIT_MS = 10_000

/** A validator's answer. */
export type GossipVerdict = 'accept' | 'ignore' | 'reject'

/** What the gossip needs. */
export interface GossipComponents {
  node: BasePeerNode
  network: string
  metrics: NetMetrics
  log: (message: string) => void
  /** Judge a releases-topic message. */
  onRelease: (data: Uint8Array, from: string) => Promise<GossipVerdict>
  /** Judge a status beat. */
  onBeat: (data: Uint8Array, from: string) => GossipVerdict
  /** A connected peer subscribed to the status topic: a beat published from now on reaches it. */
  onStatusSubscriber?: (peer: string) => void
}

const RESULT: Record<GossipVerdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject
}

/** Subscribes to both topics and publishes on them. */
export class Gossip {
  private readonly c: GossipComponents
  private readonly log: Logger
  readonly releasesTopic: string
  readonly statusTopic: string
  /** Neighbours subscribed to beats whose stream from this peer is not open yet, and until when to wait for it. */
  private readonly subscribing = new Map<string, number>()
  private subscribingTimer: NodeJS.Timeout | undefined
  private stopped = false

  constructor (components: GossipComponents) {
    this.c = components
    this.log = components.node.logger.forComponent('upgossip:gossip')
    this.releasesTopic = releasesTopic(components.network)
    this.statusTopic = statusTopic(components.network)
  }

  /** Install validators and subscribe. */
  start (): void {
    const pubsub = this.c.node.services.pubsub
    pubsub.topicValidators.set(this.releasesTopic, async (_peer, message: Message) => {
      const verdict = message.type === 'signed'
        ? await this.c.onRelease(message.data, message.from.toString()).catch(() => 'reject' as const)
        : 'reject'
      this.log('releases-topic message from %p: %s', message.type === 'signed' ? message.from : undefined, verdict)
      this.c.metrics.gossip('releases', verdict)
      this.c.metrics.bytes(this.releasesTopic, 'in', message.data.byteLength)
      return RESULT[verdict]
    })
    pubsub.topicValidators.set(this.statusTopic, (_peer, message: Message) => {
      let verdict: GossipVerdict = 'reject'
      if (message.type === 'signed') {
        try {
          verdict = this.c.onBeat(message.data, message.from.toString())
        } catch {
          verdict = 'reject'
        }
      }
      this.log.trace('beat from %p: %s', message.type === 'signed' ? message.from : undefined, verdict)
      this.c.metrics.gossip('status', verdict)
      this.c.metrics.bytes(this.statusTopic, 'in', message.data.byteLength)
      return RESULT[verdict]
    })
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.subscribe(this.releasesTopic)
    pubsub.subscribe(this.statusTopic)
  }

  /**
   * A beat published before a new neighbour's subscription arrived never reached it:
   * gossipsub sends only to peers it knows subscribed, and only once its own stream to
   * that peer is open (until then a publish skips the peer without a word). A neighbour is
   * reported when both hold; one whose stream has not opened within 10 s is dropped.
   */
  private readonly onSubscriptionChange = (event: CustomEvent<SubscriptionChangeData>): void => {
    if (!event.detail.subscriptions.some(s => s.subscribe && s.topic === this.statusTopic)) return
    this.subscribing.set(event.detail.peerId.toString(), Date.now() + SUBSCRIBER_WAIT_MS)
    this.reportSubscribers()
  }

  private reportSubscribers (): void {
    const { pubsub } = this.c.node.services
    for (const [peer, until] of this.subscribing) {
      if (pubsub.streamsOutbound.has(peer)) this.c.onStatusSubscriber?.(peer)
      else if (Date.now() < until) continue
      this.subscribing.delete(peer)
    }
    if (this.subscribing.size === 0 || this.subscribingTimer != null || this.stopped) return
    this.subscribingTimer = setTimeout(() => { this.subscribingTimer = undefined; this.reportSubscribers() }, 50)
    this.subscribingTimer.unref()
  }

  /** Unsubscribe. */
  stop (): void {
    const pubsub = this.c.node.services.pubsub
    this.stopped = true
    clearTimeout(this.subscribingTimer)
    this.subscribing.clear()
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.unsubscribe(this.releasesTopic)
    pubsub.unsubscribe(this.statusTopic)
    pubsub.topicValidators.delete(this.releasesTopic)
    pubsub.topicValidators.delete(this.statusTopic)
  }

  /** Gossip a releases-topic message. */
  async publishRelease (data: Uint8Array): Promise<void> {
    this.c.metrics.bytes(this.releasesTopic, 'out', data.byteLength)
    this.log('publishing a releases-topic message of %d bytes', data.byteLength)
    await this.c.node.services.pubsub.publish(this.releasesTopic, data)
  }

  /** Gossip a status beat. */
  async publishBeat (data: Uint8Array): Promise<void> {
    this.c.metrics.bytes(this.statusTopic, 'out', data.byteLength)
    await this.c.node.services.pubsub.publish(this.statusTopic, data)
  }
}
