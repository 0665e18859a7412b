/**
 * The bytes a libp2p node sent and received on its connections, counted where libp2p's own
 * metrics count them: on each connection before noise and yamux (so their framing and
 * every protocol — identify, bitswap's want-lists, blocks — is in the count). Given to
 * libp2p as its `metrics` component and to @helia/bitswap as its `metrics`; every other
 * metric is a no-op (bitswap 2.2.0 registers counters it never updates for received data).
 *
 * @example
 * ```ts
 * const meter = new ConnectionByteMeter()
 * const node = await createLibp2p({ …, metrics: () => meter })
 * meter.bytesOut // bytes written to every connection so far
 * ```
 */
import type { Connection, Counter, CounterGroup, Histogram, HistogramGroup, Metric, MetricGroup, Metrics, MultiaddrConnection, StopTimer, Stream, Summary, SummaryGroup } from '@libp2p/interface'

const stopTimer: StopTimer = () => {}
const metric: Metric = { update () {}, increment () {}, decrement () {}, reset () {}, timer: () => stopTimer }
const metricGroup: MetricGroup = { update () {}, increment () {}, decrement () {}, reset () {}, timer: () => stopTimer }
const counter: Counter = { increment () {}, reset () {} }
const counterGroup: CounterGroup = { increment () {}, reset () {} }
const histogram: Histogram = { observe () {}, reset () {}, timer: () => stopTimer }
const histogramGroup: HistogramGroup = { observe () {}, reset () {}, timer: () => stopTimer }
const summary: Summary = { observe () {}, reset () {}, timer: () => stopTimer }
const summaryGroup: SummaryGroup = { observe () {}, reset () {}, timer: () => stopTimer }

/** Counts the bytes of every connection of one node; nothing else. */
export class ConnectionByteMeter implements Metrics {
  /** Bytes written to, and read from, every connection so far (before encryption is undone: what crossed TCP). */
  bytesOut = 0
  bytesIn = 0
  /** Connections opened so far. */
  connections = 0

  trackMultiaddrConnection (maConn: MultiaddrConnection): void {
    this.connections++
    const source = maConn.source
    const sink = maConn.sink
    maConn.source = (async function * (meter: ConnectionByteMeter) {
      for await (const chunk of source) {
        meter.bytesIn += chunk.byteLength
        yield chunk
      }
    })(this)
    maConn.sink = async (from) => {
      const meter = this
      await sink((async function * () {
        for await (const chunk of from) {
          meter.bytesOut += chunk.byteLength
          yield chunk
        }
      })())
    }
  }

  trackProtocolStream (_stream: Stream, _connection: Connection): void {}
  registerMetric (): Metric { return metric }
  registerMetricGroup (): MetricGroup { return metricGroup }
  registerCounter (): Counter { return counter }
  registerCounterGroup (): CounterGroup { return counterGroup }
  registerHistogram (): Histogram { return histogram }
  registerHistogramGroup (): HistogramGroup { return histogramGroup }
  registerSummary (): Summary { return summary }
  registerSummaryGroup (): SummaryGroup { return summaryGroup }
  traceFunction<F> (_name: string, fn: F): F { return fn }
  createTrace (): undefined { return undefined }
}
