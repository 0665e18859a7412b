/**
 * How many requests the app had in flight, sampled at each start and end of a request:
 * the last {@link BUSY_SAMPLES} samples in a ring, so a request costs two stores and no
 * allocation (the array this replaces dropped its oldest sample with a `splice` on every
 * request: a copy of 1,000 entries per call).
 *
 * @example
 * ```ts
 * const busy = new BusySamples()
 * busy.push(now(), inFlight)
 * const since = busy.quietSince(0) // when the last stretch above 0 ended, or undefined
 * ```
 */

/** Samples kept: enough to see the last stretch of a busy app. */
export const BUSY_SAMPLES = 1000

/** The last {@link BUSY_SAMPLES} samples of (time, requests in flight). */
export class BusySamples {
  private readonly at = new Float64Array(BUSY_SAMPLES)
  private readonly inFlight = new Float64Array(BUSY_SAMPLES)
  /** Samples taken, ever (the next one goes at `taken % BUSY_SAMPLES`). */
  private taken = 0

  /** Record that `inFlight` requests were in flight at `at`. */
  push (at: number, inFlight: number): void {
    const i = this.taken % BUSY_SAMPLES
    this.at[i] = at
    this.inFlight[i] = inFlight
    this.taken++
  }

  /**
   * When the last stretch with more than `maxInFlight` requests in flight ended (the time
   * of the sample after its last one); undefined when no kept sample had more.
   */
  quietSince (maxInFlight: number): number | undefined {
    const oldest = Math.max(0, this.taken - BUSY_SAMPLES)
    for (let n = this.taken - 1; n >= oldest; n--) {
      const i = n % BUSY_SAMPLES
      if ((this.inFlight[i] as number) > maxInFlight) return n + 1 < this.taken ? this.at[(n + 1) % BUSY_SAMPLES] : this.at[i]
    }
    return undefined
  }
}
