/**
 * The timed loop of the shim section, run inside a calling app: `count` calls, `inflight`
 * at a time, each call's latency and the wall time of them all. One function serves the
 * three loops: the bench app's over `node.call` and over its plain-TCP baseline (bench-app.ts
 * puts its source, {@link TIMED_LOOP_SOURCE}, into the app's server.js: a package cannot
 * import scripts/) and the floor's app (shim-floor-process.ts imports it).
 *
 * @example
 * ```ts
 * const { latencies, wallMs } = await timedLoop(1000, 4, async () => await node.call(peer, { op: 'null' }))
 * ```
 */

/** What one loop measured: each call's latency in ms (in the order the calls ended) and the loop's wall time in ms. */
export interface TimedLoopResult { latencies: number[], wallMs: number }

/**
 * `count` calls of `call`, `inflight` at a time; a call that rejects rejects the loop.
 * Self-contained (no imports, no names from outside it) because its source runs in app
 * code, and `call` is awaited as it is, so the loop adds no promise of its own per call.
 */
export async function timedLoop (count: number, inflight: number, call: () => Promise<unknown>): Promise<TimedLoopResult> {
  const latencies: number[] = []
  let started = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (started < count) {
      started++
      const s = performance.now()
      await call()
      latencies.push(performance.now() - s)
    }
  }))
  return { latencies, wallMs: performance.now() - t0 }
}

/** {@link timedLoop} as JavaScript (type annotations stripped to blanks), declaring `timedLoop` in the code it is put in. */
export const TIMED_LOOP_SOURCE: string = timedLoop.toString()
