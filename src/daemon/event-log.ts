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
  }

  /** Record an event: `type` is a stable machine name, `message` the readable line. */
  event (level: EventLevel, type: string, message: string, fields: Record<string, unknown> = {}): void {
    const time = new Date(this.clock.now()).toISOString()
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
