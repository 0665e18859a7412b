/**
 * The versions of the network over time, as this peer saw them: a bounded ring of
 * samples (how many peers ran each version), one each time the counts change. The
 * dashboard loads it once from `GET /timeline`, so its chart survives a reload, and
 * appends what `GET /events` sends after.
 *
 * @example
 * ```ts
 * const timeline = new VersionTimeline({ capacity: 2000 })
 * timeline.record(Date.now(), { '1.0.0': 2, '2.0.0': 1 }) // a sample, or undefined when nothing changed
 * timeline.toJSON().samples
 * ```
 */

/** How many samples a daemon keeps. */
export const TIMELINE_CAPACITY = 2000

/** The key that counts peers running no version yet (installing, or joined with `--app`). */
export const NO_VERSION = 'none'

/** One sample: how many peers (this one included) ran each version from `time` on. */
export interface TimelineSample {
  /** Grows by one per sample, so a client can join `GET /timeline` and `/events` without gaps or repeats. */
  seq: number
  /** ISO 8601. */
  time: string
  /** Version → number of peers; {@link NO_VERSION} for peers that run none. */
  versions: Record<string, number>
}

/** `GET /timeline`. */
export interface TimelineJson {
  capacity: number
  samples: TimelineSample[]
}

/** Options of a {@link VersionTimeline}. */
export interface VersionTimelineInit {
  /** Samples kept; the oldest go first. */
  capacity?: number
}

function sameCounts (a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every(k => a[k] === b[k])
}

/** A bounded ring of version-count samples. */
export class VersionTimeline {
  private readonly capacity: number
  private readonly ring: TimelineSample[] = []
  private start = 0
  private seq = 0

  constructor (init: VersionTimelineInit = {}) {
    this.capacity = Math.max(1, init.capacity ?? TIMELINE_CAPACITY)
  }

  /** Add a sample unless the counts equal the last one's; returns the sample added. */
  record (now: number, versions: Record<string, number>): TimelineSample | undefined {
    const last = this.last()
    if (last != null && sameCounts(last.versions, versions)) return undefined
    const sample: TimelineSample = { seq: ++this.seq, time: new Date(now).toISOString(), versions: { ...versions } }
    if (this.ring.length < this.capacity) {
      this.ring.push(sample)
    } else {
      // full: overwrite the oldest in place rather than shifting 2000 entries each time
      this.ring[this.start] = sample
      this.start = (this.start + 1) % this.capacity
    }
    return sample
  }

  /** The newest sample. */
  last (): TimelineSample | undefined {
    if (this.ring.length === 0) return undefined
    return this.ring[(this.start + this.ring.length - 1) % this.ring.length]
  }

  /** Every sample kept, oldest first. */
  samples (): TimelineSample[] {
    return [...this.ring.slice(this.start), ...this.ring.slice(0, this.start)]
  }

  /** The body of `GET /timeline`. */
  toJSON (): TimelineJson {
    return { capacity: this.capacity, samples: this.samples() }
  }
}

/** Count peers per version; `version` null counts as {@link NO_VERSION}. */
export function countVersions (peers: Iterable<{ version: string | null }>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of peers) {
    const key = p.version ?? NO_VERSION
    out[key] = (out[key] ?? 0) + 1
  }
  return out
}
