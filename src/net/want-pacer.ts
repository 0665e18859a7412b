/**
 * The asking side of the want rate: a peer cuts off a session that names more than
 * {@link MAX_WANTS_PER_SECOND} CIDs a second in `wantHave` and `wantBlock` (over a burst of
 * as many), so an honest asker paces itself at half that, with half the burst — room for
 * frames the network delays and then delivers together. Without it, a package of many small
 * blocks fetched over a fast link could get an honest peer's session refused.
 *
 * @example
 * ```ts
 * const pacer = new WantPacer()
 * await pacer.take(frame.wantHave.length) // resolves at once within the rate, else when tokens are back
 * ```
 */
import { MAX_WANTS_PER_SECOND } from './block-messages.js'

/** Wants per second (and the burst) an asker allows itself: half what a peer takes. */
export const ASK_RATE = MAX_WANTS_PER_SECOND / 2

/** A token bucket for the wants one session sends. */
export class WantPacer {
  private tokens = ASK_RATE
  private at: number

  constructor (private readonly now: () => number = Date.now, private readonly sleep: (ms: number) => Promise<void> = async ms => { await new Promise(resolve => setTimeout(resolve, ms)) }) {
    this.at = now()
  }

  /** Resolve once `n` wants may go out (`n` ≤ the burst; more waits for a full bucket). */
  async take (n: number): Promise<void> {
    if (n <= 0) return
    this.refill()
    if (this.tokens < Math.min(n, ASK_RATE)) {
      await this.sleep(Math.ceil((Math.min(n, ASK_RATE) - this.tokens) * 1000 / ASK_RATE))
      this.refill()
    }
    // taken whether or not the clock moved as far as we slept: a debt is paid by later waits
    this.tokens -= n
  }

  private refill (): void {
    const now = this.now()
    this.tokens = Math.min(ASK_RATE, this.tokens + Math.max(0, now - this.at) * ASK_RATE / 1000)
    this.at = now
  }
}
