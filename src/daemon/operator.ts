/**
 * The local operator's commands on this peer: approve, hold and resume a release
 * (durable), roll back, read the history, and make one call through the app as
 * `node.call` would.
 */
import fs from 'node:fs/promises'
import type { Clock } from '../clock.js'
import { ProcessApp, printableResponse, toHttpResponse } from '../host/index.js'
import type { AppHost } from '../host/index.js'
import type { ReleaseBook, ReleaseEntry } from '../release/index.js'
import { NoAppRunningError } from '../shim/index.js'
import type { RollbackResult } from './api.js'
import type { OperatorControls } from './controls.js'
import { ProtocolCallError, UnknownReleaseError } from './errors.js'
import { RolloutRefusedError } from './rollout.js'
import type { EventLog } from './event-log.js'
import { DEFAULT_LOG_LIMIT, rotatedFiles } from '../store/index.js'

/** Event types that make up `upgossip history`. */
const HISTORY_TYPES = new Set(['installed', 'upgrade-started', 'upgrade-committed', 'upgrade-failed', 'upgrade-rolled-back', 'upgrade-interrupted', 'upgrade-recovered', 'writes-lost', 'install-failed', 'app-failed', 'release-refused', 'approved', 'held', 'resumed'])

/** How often a call made during a switch looks again whether the next version runs. */
const HOLD_POLL_MS = 100

/** What the operator's commands need. */
export interface OperatorComponents {
  book: Pick<ReleaseBook, 'summaries' | 'read'>
  controls: Pick<OperatorControls, 'approve' | 'hold' | 'resume'>
  rollout: { tick: () => Promise<void>, rollback: () => Promise<RollbackResult> }
  host: Pick<AppHost, 'current' | 'isHolding' | 'spoken' | 'request'>
  events: Pick<EventLog, 'info'>
  changes: { changed: () => void }
  clock: Clock
  /** This peer's id. */
  self: () => string
  /** The event log's file. */
  eventsFile: string
  /** A backup in progress holds switching. */
  backup: { holding: boolean }
}

/** Options of the operator's commands. */
export interface OperatorInit {
  callTimeoutMs: number
  /** Old files of the event log kept (`history` reads them too). */
  logFiles?: number
}

/** Find a release by id or `APP@VERSION` in `book`; throws {@link UnknownReleaseError}. */
export async function findRelease (book: Pick<ReleaseBook, 'summaries' | 'read'>, ref: string): Promise<ReleaseEntry> {
  const at = ref.lastIndexOf('@')
  const id = at > 0 ? book.summaries().find(e => e.app === ref.slice(0, at) && e.version === ref.slice(at + 1))?.id : ref
  const entry = id == null ? undefined : await book.read(id)
  if (entry == null) throw new UnknownReleaseError(`no release ${ref} is known on this peer; "upgossip status" lists them`)
  return entry
}

/** Read `upgossip history` from an event log and the files it was rotated into: this peer's upgrades, rollbacks and failures, oldest first. */
export async function readHistory (eventsFile: string, keep = DEFAULT_LOG_LIMIT.keep): Promise<Array<Record<string, unknown>>> {
  let text = ''
  for (const file of await rotatedFiles(eventsFile, keep)) text += await fs.readFile(file, 'utf8').catch(() => '') + '\n'
  const out: Array<Record<string, unknown>> = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    try {
      const event = JSON.parse(line) as Record<string, unknown>
      if (HISTORY_TYPES.has(String(event.type))) out.push(event)
    } catch {}
  }
  return out
}

/** The local operator's commands. */
export class Operator {
  private readonly c: OperatorComponents
  private readonly init: OperatorInit

  constructor (components: OperatorComponents, init: OperatorInit) {
    this.c = components
    this.init = init
  }

  /** `upgossip approve`: let a release that waits for approval go (durable). */
  async approve (ref: string): Promise<ReleaseEntry> {
    return await this.control('approve', ref)
  }

  /** `upgossip hold`: keep a release from starting here until resumed (durable). */
  async hold (ref: string): Promise<ReleaseEntry> {
    return await this.control('hold', ref)
  }

  /** `upgossip resume`: undo a hold. */
  async resume (ref: string): Promise<ReleaseEntry> {
    return await this.control('resume', ref)
  }

  private async control (verb: 'approve' | 'hold' | 'resume', ref: string): Promise<ReleaseEntry> {
    const entry = await findRelease(this.c.book, ref)
    await this.c.controls[verb](entry.id)
    const done = { approve: 'approved', hold: 'held', resume: 'resumed' }[verb]
    this.c.events.info(done, `operator ${done} ${entry.signed.record.app}@${entry.signed.record.version}`, { id: entry.id })
    this.c.changes.changed()
    // approving or resuming may let the release start now
    if (verb !== 'hold') void this.c.rollout.tick()
    return entry
  }

  /** `upgossip rollback`: back to the previous version on this peer. */
  async rollback (): Promise<RollbackResult> {
    // it would wait for the backup to end: say so at once instead
    if (this.c.backup.holding) throw new RolloutRefusedError('a backup of this peer is being taken and switching is paused for it; try again when it is done')
    return await this.c.rollout.rollback()
  }

  /** `upgossip history`. */
  async history (): Promise<Array<Record<string, unknown>>> {
    return await readHistory(this.c.eventsFile, this.init.logFiles)
  }

  /**
   * `upgossip call` / `POST /call`: one request from this peer, in its current protocol
   * version, to the app on `peer` (default: itself) — made by the app's own SDK exactly
   * as `node.call`, through the shim.
   */
  async call (peer: string | null, request: unknown, protocol?: number): Promise<unknown> {
    const { host } = this.c
    const self = this.c.self()
    if (protocol != null) {
      // a client that speaks a fixed protocol version: delivered like a request from a peer
      // of that version (held during a switch, translated by the running version's SOs)
      if (peer != null && peer !== self) throw new ProtocolCallError('"protocol" applies to calls to this peer\'s own app only; leave "peer" out')
      if (host.current?.running === true && !host.isHolding && !host.spoken.includes(protocol)) {
        throw new ProtocolCallError(`this peer's app does not speak protocol ${protocol} (it speaks ${host.spoken.join(', ')})`)
      }
      const answer = await host.request(self, request, protocol)
      // a process app answers an HTTP response message, whose bytes JSON cannot carry: printed
      // as `upgossip call` prints one made without `protocol` (the body as text, or base64)
      return host.current instanceof ProcessApp && (answer as { body?: unknown } | null)?.body instanceof Uint8Array ? printableResponse(toHttpResponse(answer)) : answer
    }
    // during a switch the call waits for the next version, like requests from other peers
    const deadline = this.c.clock.now() + this.init.callTimeoutMs
    while (host.isHolding && this.c.clock.now() < deadline) await new Promise(resolve => setTimeout(resolve, HOLD_POLL_MS))
    const proc = host.current
    if (proc?.running !== true) throw new NoAppRunningError('no app runs on this peer now')
    return await proc.callOut(peer, request, this.init.callTimeoutMs + 5000)
  }
}
