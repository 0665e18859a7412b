/**
 * The structured event log: one JSON object per line in `events.jsonl`, and a readable
 * line on stderr (with the full UTC time, or, when stderr is the systemd journal, with
 * the line's syslog priority and no time: the journal stamps it). User-facing events go here, never to `console.log`. A write that fails
 * (a full disk) loses that line only: the file is opened again for the next event, which
 * is preceded by an `events-lost` line saying how many were lost.
 */
import fs from 'node:fs'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import { DEFAULT_LOG_LIMIT, openAppend, rotateIfOver } from '../store/index.js'
import type { LogLimit } from '../store/index.js'

/** Event types the rate limit leaves alone: a switch's outcome and an operator's action, one per switch or command. */
const UNLIMITED_TYPES = new Set(['installed', 'upgrade-started', 'upgrade-committed', 'upgrade-failed', 'upgrade-rolled-back', 'upgrade-interrupted', 'upgrade-recovered', 'approved', 'held', 'resumed'])
/** Severity of an event. */
export type EventLevel = 'info' | 'warn' | 'error'

/** syslog priorities of the levels, for journald's `<N>` line prefix. */
const PRIORITY: Record<EventLevel, number> = { info: 6, warn: 4, error: 3 }

/**
 * True when stderr is connected to the systemd journal (`$JOURNAL_STREAM` names its device
 * and inode): the journal stamps each line itself and reads its priority from a `<N>` prefix.
 */
export function stderrIsJournal (env: NodeJS.ProcessEnv = process.env): boolean {
  const stream = env.JOURNAL_STREAM
  if (stream == null) return false
  try {
    const st = fs.fstatSync(2)
    return stream === `${st.dev}:${st.ino}`
  } catch {
    return false
  }
}

/** One event as a stderr line: under journald its priority and the message; elsewhere the full UTC time, the level and the message. */
export function stderrLine (time: string, level: EventLevel, message: string, journal: boolean): string {
  if (journal) return `<${PRIORITY[level]}>${message.replaceAll('\n', ' ')}\n`
  return `${time.slice(0, 19)}Z ${level === 'info' ? '' : level.toUpperCase() + ' '}${message}\n`
}

/** Writes events. */
export class EventLog {
  private readonly file: string
  private stream: fs.WriteStream
  private readonly clock: Clock
  private readonly quiet: boolean
  private readonly journal: boolean
  private readonly limit: LogLimit
  /** Bytes in the current file. */
  private size = 0
  /** Lines that could not be written since the last one that was, and the last error. */
  private lost = 0
  private lostWhy = ''

  constructor (file: string, options: { clock?: Clock, quiet?: boolean, journal?: boolean, limit?: LogLimit } = {}) {
    this.file = file
    this.stream = this.open()
    this.clock = options.clock ?? systemClock
    this.quiet = options.quiet ?? false
    this.journal = options.journal ?? stderrIsJournal()
    this.limit = options.limit ?? DEFAULT_LOG_LIMIT
    // whoever reads our stderr may go away; the daemon must not die of EPIPE
    process.stderr.on('error', () => {})
  }

  private open (): fs.WriteStream {
    const { stream, size } = openAppend(this.file)
    this.size = size
    // a failed write destroys the stream; the next event opens the file again
    return stream
  }

  private write (line: string): void {
    // past its size, the file is moved aside (events.1.jsonl, …): `history` reads them all
    const bytes = Buffer.byteLength(line);
    ({ stream: this.stream, size: this.size } = rotateIfOver(this.file, this.stream, this.size, bytes, this.limit))
    this.size += bytes
    if (this.stream.destroyed) {
      this.stream = this.open()
      if (this.lost > 0) {
        const note = { time: new Date(this.clock.now()).toISOString(), level: 'warn', type: 'events-lost', message: `${this.lost} event(s) were not written to this file, or only in part (${this.lostWhy}); stderr had them all`, count: this.lost }
        this.lost = 0
        // a line cut short by the failure gets its own line; readers skip what does not parse
        this.stream.write('\n' + JSON.stringify(note) + '\n', err => { this.failed(err) })
      }
    }
    this.stream.write(line, err => { this.failed(err) })
  }

  private failed (err: Error | null | undefined): void {
    if (err == null) return
    this.lost++
    this.lostWhy = (err as NodeJS.ErrnoException).code ?? err.message
  }

  private readonly budget = new Map<string, { windowStart: number, count: number, suppressed: number }>()

  /**
   * At most 30 events of one type a minute; the rest are counted and summarised, so a hostile peer cannot flood the log.
   * The steps of this peer's own switches and its operator's actions are never folded: `history` reads them, and
   * they come no faster than switches do.
   */
  private allowed (type: string, now: number): { ok: boolean, suppressed: number } {
    if (UNLIMITED_TYPES.has(type)) return { ok: true, suppressed: 0 }
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
    this.write(JSON.stringify({ time, level, type, message, ...fields }) + '\n')
    if (!this.quiet) process.stderr.write(stderrLine(time, level, message, this.journal))
  }

  info (type: string, message: string, fields?: Record<string, unknown>): void { this.event('info', type, message, fields) }
  warn (type: string, message: string, fields?: Record<string, unknown>): void { this.event('warn', type, message, fields) }
  error (type: string, message: string, fields?: Record<string, unknown>): void { this.event('error', type, message, fields) }

  /** Flush and close the file. */
  async close (): Promise<void> {
    if (this.stream.destroyed) return
    await new Promise<void>(resolve => this.stream.end(resolve))
  }
}
