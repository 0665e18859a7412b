/**
 * Status changes, coalesced: parts call {@link StatusChanges.changed} as often as they
 * like (block progress calls it per block); listeners hear `status` at most once per
 * 200 ms. The daemon's facade forwards these events to the control API.
 */
import { EventEmitter } from 'node:events'
import type { DaemonEvents } from './api.js'

/** How long changes are gathered into one `status` event. */
const COALESCE_MS = 200

/** Coalesced status events, and the timeline samples the status projection adds. */
export class StatusChanges extends EventEmitter<DaemonEvents> {
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  /** Something a status shows changed. */
  changed (): void {
    if (this.timer != null || this.stopped) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.emit('status')
    }, COALESCE_MS)
    this.timer.unref()
  }

  /** No more events. */
  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }
}
