/**
 * The two gossip topics of a network, with validators that run *before* anything is
 * forwarded: `releases` (signed releases) and `status` (beats). Gossipsub runs with
 * strict signing, so `from` is authenticated; a REJECT scores the sender down.
 */
import { TopicValidatorResult } from '@libp2p/interface'
import type { Logger, Message } from '@libp2p/interface'
import type { NetMetrics } from './metrics.js'
import type { BasePeerNode } from './node.js'
import { releasesTopic, statusTopic } from './protocol-ids.js'

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
    pubsub.subscribe(this.releasesTopic)
    pubsub.subscribe(this.statusTopic)
  }

  /** Unsubscribe. */
  stop (): void {
    const pubsub = this.c.node.services.pubsub
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
