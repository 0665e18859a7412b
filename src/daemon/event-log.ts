/**
 * The structured event log: one JSON object per line in `events.jsonl`, and a readable
 * line on stderr. User-facing events go here, never to `console.log`.
 */
import fs from 'node:fs'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'

/** Severity of an event. */
export type EventLevel = 'info' | 'warn' | 'error'

/** Writes events. */
export class EventLog {
  private readonly stream: fs.WriteStream
  private readonly clock: Clock
  private readonly quiet: boolean

  constructor (file: string, options: { clock?: Clock, quiet?: boolean } = {}) {
    this.stream = fs.createWriteStream(file, { flags: 'a', mode: 0o600 })
    this.stream.on('error', () => {})
    this.clock = options.clock ?? systemClock
    this.quiet = options.quiet ?? false
    // whoever reads our stderr may go away; the daemon must not die of EPIPE
    process.stderr.on('error', () => {})
  }

  private readonly budget = new Map<string, { windowStart: number, count: number, suppressed: number }>()

  /** At most 30 events of one type a minute; the rest are counted and summarised, so a hostile peer cannot flood the log. */
  private allowed (type: string, now: number): { ok: boolean, suppressed: number } {
    const b = this.budget.get(type) ?? { windowStart: now, count: 0, suppressed: 0 }
    if (now - b.windowStart >= 60_000) {
      const suppressed = b.suppressed
      this.budget.set(type, { windowStart: now, count: 1, suppressed: 0 })
      return { ok: true, suppressed }
    }
    b.count++
    this.budget.set(type, b)
    if (b.count > 30) {
      b.suppressed++
      return { ok: false, suppressed: 0 }
    }
    return { ok: true, suppressed: 0 }
  }

  /** Record an event: `type` is a stable machine name, `message` the readable line. */
  event (level: EventLevel, type: string, message: string, fields: Record<string, unknown> = {}): void {
    const now = this.clock.now()
    const { ok, suppressed } = this.allowed(type, now)
    if (!ok) return
    if (suppressed > 0) message = `${message} (${suppressed} similar "${type}" events were suppressed in the last minute)`
    const time = new Date(now).toISOString()
    this.stream.write(JSON.stringify({ time, level, type, message, ...fields }) + '\n')
    if (!this.quiet) process.stderr.write(`${time.slice(11, 19)} ${level === 'info' ? '' : level.toUpperCase() + ' '}${message}\n`)
  }

  info (type: string, message: string, fields?: Record<string, unknown>): void { this.event('info', type, message, fields) }
  warn (type: string, message: string, fields?: Record<string, unknown>): void { this.event('warn', type, message, fields) }
  error (type: string, message: string, fields?: Record<string, unknown>): void { this.event('error', type, message, fields) }

  /** Flush and close the file. */
  async close (): Promise<void> {
    await new Promise<void>(resolve => this.stream.end(resolve))
  }
}
