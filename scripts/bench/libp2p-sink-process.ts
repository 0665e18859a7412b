/**
 * The other end of the bench's bare libp2p stream: a libp2p node made by `src/net` with
 * the daemons' stack (TCP, noise, yamux; none of upgossip's protocols), in a process of
 * its own like a daemon. Each stream on {@link SINK_PROTOCOL} is read to its end and
 * answered with the number of bytes as a line. Prints `{"addr":…}` once listening; exits
 * when its stdin closes.
 *
 * Usage: node libp2p-sink-process.ts KEYFILE
 */
import { createPeerNode, loadPeerKey } from '#src/net/index.js'

/** The protocol of the sink. */
export const SINK_PROTOCOL = '/upgossip-bench/sink/1.0.0'

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const node = await createPeerNode({ privateKey: await loadPeerKey(process.argv[2] as string), listen: ['/ip4/127.0.0.1/tcp/0'] })
  await node.handle(SINK_PROTOCOL, ({ stream }) => {
    void (async () => {
      let bytes = 0
      for await (const chunk of stream.source) bytes += chunk.byteLength
      await stream.sink([new TextEncoder().encode(`${bytes}\n`)])
    })().catch(err => { stream.abort(err as Error) })
  }, { maxInboundStreams: 4 })
  process.stdout.write(JSON.stringify({ addr: node.getMultiaddrs()[0]?.toString() }) + '\n')
  process.stdin.on('end', () => { void Promise.resolve(node.stop()).finally(() => process.exit(0)) })
  process.stdin.resume()
}
