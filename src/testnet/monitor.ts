/**
 * Watches every daemon of the testnet: polls `GET /status`, records what changed in a
 * timeline, and draws the live view on stderr — a line per peer redrawn in place on a
 * terminal, plain lines (one per change) otherwise.
 */
import type { DaemonStatus, ReleaseStatus } from '../daemon/index.js'
import type { DaemonProcess } from './daemon-process.js'

/** One moment of the run. */
export interface TimelineEntry {
  atMs: number
  /** The peer it happened on; absent for the runner's own steps. */
  peer?: string
  event: string
  detail: string
}

/** Where the view is drawn. */
export interface ViewSink {
  write: (text: string) => void
  isTTY: boolean
  columns?: number
}

/** What the view's footer says about the load. */
export type LoadLine = () => string

const ACTIVE = new Set(['active', 'superseded', 'rolled-back', 'revoked', 'refused', 'failed'])

/** The release a peer is busy with: the newest one of its own app above its version that is not over. */
function pending (s: DaemonStatus): ReleaseStatus | undefined {
  const newer = (v: string): boolean => s.version == null || v.localeCompare(s.version, undefined, { numeric: true }) > 0
  // a peer lists the releases of every app it trusts; another class's are not its business
  return s.releases.filter(r => (s.app == null || r.app === s.app) && !ACTIVE.has(r.state) && newer(r.version)).at(-1)
}

function bar (have: number, size: number, width = 10): string {
  const f = size === 0 ? 1 : Math.min(1, have / size)
  const full = Math.round(f * width)
  return '█'.repeat(full) + '░'.repeat(width - full) + ` ${String(Math.floor(f * 100)).padStart(3)}%`
}

/** Polls the daemons, keeps the timeline, draws the view. */
export class Monitor {
  readonly timeline: TimelineEntry[] = []
  readonly latest = new Map<DaemonProcess, DaemonStatus>()
  /** Name each peer's app before its version (a network of several classes). */
  showApps = false
  private readonly shown = new Map<DaemonProcess, string>()
  private readonly shownVersion = new Map<DaemonProcess, string | null>()
  private peers: DaemonProcess[] = []
  private timer?: NodeJS.Timeout
  private drawnLines = 0
  private step = ''
  private polling?: Promise<void>

  constructor (private readonly sink: ViewSink, private readonly elapsed: () => number, private readonly load: LoadLine = () => '') {}

  /** Watch these daemons (the list may grow: late joiners). */
  watch (peers: DaemonProcess[]): void {
    this.peers = peers
  }

  /** Start polling every `intervalMs`. */
  start (intervalMs = 500): void {
    const tick = (): void => {
      this.polling = this.poll().finally(() => { if (this.timer != null) this.timer = setTimeout(tick, intervalMs) })
    }
    this.timer = setTimeout(tick, 0)
  }

  /** Stop polling, draw once more, and leave the view on screen. */
  async stop (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    await this.polling
    if (this.sink.isTTY) this.draw()
  }

  /** A step of the runner, for the timeline and the view. */
  note (event: string, detail: string): void {
    this.step = detail
    this.record({ atMs: this.elapsed(), event, detail })
  }

  private record (entry: TimelineEntry): void {
    this.timeline.push(entry)
    if (!this.sink.isTTY) this.sink.write(`${(entry.atMs / 1000).toFixed(1).padStart(7)}s  ${entry.peer == null ? '==' : entry.peer.padEnd(8)}  ${entry.detail}\n`)
  }

  /**
   * From the first publish to the last change seen on a peer after it (its version, its
   * state, what it waits on: a switch, a failed one and its rollback), in ms since the run
   * began; undefined without both.
   */
  rolloutWindow (): { fromMs: number, toMs: number } | undefined {
    const fromMs = this.timeline.find(e => e.event === 'publish')?.atMs
    const toMs = fromMs == null ? undefined : this.timeline.filter(e => (e.event === 'version' || e.event === 'state') && e.atMs >= fromMs).at(-1)?.atMs
    return fromMs == null || toMs == null ? undefined : { fromMs, toMs }
  }

  /** One round of `GET /status` on every running daemon. */
  async poll (): Promise<void> {
    await Promise.all(this.peers.filter(p => !p.exited).map(async peer => {
      try {
        const s = await peer.status()
        this.latest.set(peer, s)
        this.observe(peer, s)
      } catch {}
    }))
    if (this.sink.isTTY) this.draw()
  }

  private observe (peer: DaemonProcess, s: DaemonStatus): void {
    const p = pending(s)
    const what = `${this.appOf(s)}${s.version ?? 'no version'} ${s.state}${p == null ? '' : ` · ${p.version} ${p.state}${p.waitingOn != null ? ` on ${p.waitingOn}` : ''}`}`
    if (this.shown.get(peer) === what) return
    this.shown.set(peer, what)
    const versionChanged = !this.shownVersion.has(peer) || this.shownVersion.get(peer) !== s.version
    this.shownVersion.set(peer, s.version)
    this.record({ atMs: this.elapsed(), peer: peer.name, event: versionChanged ? 'version' : 'state', detail: what })
  }

  /** The view's lines for the latest statuses. */
  lines (): string[] {
    const out: string[] = []
    for (const peer of this.peers) {
      const s = this.latest.get(peer)
      const name = peer.name.padEnd(8)
      if (peer.exited) { out.push(`${name}  stopped`); continue }
      if (s == null) { out.push(`${name}  starting…`); continue }
      const p = pending(s)
      const rel = p == null ? '' : `  → ${p.version} ${p.state}${p.waitingOn != null ? ` on ${p.waitingOn}` : ''}  ${bar(p.have, p.size)}`
      out.push(`${name}  ${s.peerId.slice(-6)}  ${this.appOf(s)}${(s.version ?? '-').padEnd(6)} ${s.state.padEnd(12)}${rel}`)
    }
    const counts = new Map<string, number>()
    for (const peer of this.peers) {
      const s = this.latest.get(peer)
      const v = s?.version == null ? undefined : `${this.appOf(s)}${s.version}`
      if (v != null && !peer.exited) counts.set(v, (counts.get(v) ?? 0) + 1)
    }
    const versions = [...counts].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true })).map(([v, n]) => `${v}: ${n}`).join('  ')
    out.push(`versions  ${versions}  ·  ${this.load()}  ·  ${(this.elapsed() / 1000).toFixed(0)} s`)
    if (this.step !== '') out.push(`now       ${this.step}`)
    return out
  }

  /** `store ` before a version when the network has several classes, else nothing. */
  private appOf (s: DaemonStatus): string {
    return this.showApps ? `${s.app ?? '-'} ` : ''
  }

  private draw (): void {
    const width = Math.max(40, this.sink.columns ?? 120)
    const lines = this.lines().map(l => l.length > width - 1 ? l.slice(0, width - 2) + '…' : l)
    // move up over the last drawing and clear it, then draw again
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F\x1b[J` : ''
    this.sink.write(up + lines.join('\n') + '\n')
    this.drawnLines = lines.length
  }
}
