/**
 * The nemesis: strikes the plan's faults at their times and heals each after its hold,
 * recording every strike and heal as an event. `healAll()` ends every fault still holding
 * (the run's end, or Ctrl-C).
 */
import fs from 'node:fs'
import { sleep } from '#src/testnet/index.js'
import type { Cluster, ChaosPeer } from './cluster.ts'
import type { Hosts } from './hosts.ts'
import type { FaultKind, Strike } from './plan.ts'

/** One thing the run did to the network, or that happened to it. */
export interface ChaosEvent {
  /** Ms since the run began. */
  at: number
  /** A fault kind, or `publish` / `revoke` / `heal` / `crashed` / `restart`. */
  kind: string
  /** A peer's name, or a release (`kv@2.0.0`). */
  target: string
  /** Ms into the chaos window the plan put it at (strikes and milestones). */
  planned?: number
  detail?: string
}

/** Children of `pid` (from /proc): a daemon's app, and its transform while one runs. */
export function childProcesses (pid: number): Array<{ pid: number, command: string }> {
  const out: Array<{ pid: number, command: string }> = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      // the command name may hold spaces and parentheses: fields start after the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid !== pid) continue
      out.push({ pid: Number(entry), command: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1).join(' ') })
    } catch {}
  }
  return out
}

/** What the nemesis needs. */
export interface NemesisComponents {
  cluster: Cluster
  hosts: Hosts
  /** Ms since the run began. */
  elapsed: () => number
  /** Progress for people (stderr). */
  note: (line: string) => void
}

/** Strikes faults and heals them. */
export class Nemesis {
  readonly events: ChaosEvent[] = []
  readonly counts: Partial<Record<FaultKind, number>> = {}
  private readonly holding = new Map<Strike, () => Promise<void>>()
  private readonly running = new Set<Promise<void>>()
  private healing = false
  /** The strike under way on each peer, so that two never touch one daemon at once. */
  private readonly busy = new Map<string, Promise<void>>()

  private readonly c: NemesisComponents
  constructor (components: NemesisComponents) {
    this.c = components
  }

  record (event: Omit<ChaosEvent, 'at'>): void {
    const e = { at: this.c.elapsed(), ...event }
    this.events.push(e)
    this.c.note(`${(e.at / 1000).toFixed(1).padStart(6)} s  ${e.kind.padEnd(16)} ${e.target}${e.detail == null ? '' : `  ${e.detail}`}`)
  }

  /** Strike `s` now; its heal runs after its hold (or at `healAll`). */
  strike (s: Strike): void {
    const task = this.run(s).catch(err => { this.record({ kind: 'nemesis-error', target: s.target, detail: `${s.kind}: ${(err as Error).message}` }) })
    this.running.add(task)
    void task.finally(() => this.running.delete(task))
  }

  private async run (s: Strike): Promise<void> {
    // one fault at a time on a peer: a strike waits until the last one on it has healed (its restart done)
    const previous = this.busy.get(s.target)
    let release = (): void => {}
    this.busy.set(s.target, new Promise<void>(resolve => { release = resolve }))
    try {
      await previous
      await this.runAlone(s)
    } finally {
      release()
    }
  }

  private async runAlone (s: Strike): Promise<void> {
    if (this.healing) return
    const peer = this.c.cluster.peer(s.target)
    const heal = await this.apply(s, peer)
    this.counts[s.kind] = (this.counts[s.kind] ?? 0) + 1
    if (heal == null) return
    let healed = false
    const once = async (): Promise<void> => {
      if (healed) return
      healed = true
      this.holding.delete(s)
      await heal()
      this.record({ kind: 'heal', target: s.target, detail: s.kind })
    }
    this.holding.set(s, once)
    await this.wait(s.holdMs)
    await once()
  }

  private async wait (ms: number): Promise<void> {
    const end = Date.now() + ms
    while (!this.healing && Date.now() < end) await sleep(Math.min(250, end - Date.now()))
  }

  /** Strike; resolves with the heal, or undefined for a fault that heals itself (a killed app). */
  private async apply (s: Strike, peer: ChaosPeer): Promise<(() => Promise<void>) | undefined> {
    const { hosts } = this.c
    const event = { kind: s.kind, target: s.target, planned: s.at }
    switch (s.kind) {
      case 'kill-daemon': {
        peer.down = true
        this.record({ ...event, detail: `kill -9 ${String(peer.proc.pid)}` })
        await peer.proc.kill()
        return async () => { await this.restart(peer) }
      }
      case 'kill-app': {
        const children = childProcesses(peer.proc.pid ?? -1)
        for (const child of children) { try { process.kill(child.pid, 'SIGKILL') } catch {} }
        this.record({ ...event, detail: children.length === 0 ? 'no app process running' : `kill -9 ${children.map(c => `${c.pid} (${c.command.split('/').slice(-2).join('/')})`).join(', ')}` })
        return undefined
      }
      case 'crash-mid-switch': {
        peer.down = true
        await peer.proc.stop(5000)
        await this.restartWith(peer, { UPGOSSIP_FAULT: `crash-at:${s.detail ?? 'transform'}` })
        this.record({ ...event, detail: `armed: the daemon kills itself at step ${s.detail ?? 'transform'} of its next switch` })
        const armed = peer.proc
        // set when the hold ends first: the exit that follows is the heal's stop, not the crash
        let disarmed = false
        // the crash, whenever it comes: started again at once, without the fault
        const crashed = armed.exit().then(async () => {
          if (disarmed || peer.proc !== armed || this.healing) return
          this.record({ kind: 'crashed', target: s.target, detail: `at step ${s.detail ?? 'transform'}` })
          await this.restart(peer)
        }).catch((err: Error) => { this.record({ kind: 'nemesis-error', target: s.target, detail: `restart after the crash: ${err.message}` }) })
        return async () => {
          if (peer.proc === armed && !armed.exited) {
            disarmed = true
            peer.down = true
            await armed.stop(5000)
            await this.restart(peer)
          }
          await crashed
        }
      }
      case 'pause': {
        peer.proc.signal('SIGSTOP')
        this.record({ ...event, detail: `SIGSTOP ${String(peer.proc.pid)}` })
        return async () => { peer.proc.signal('SIGCONT') }
      }
      case 'clock-jump': {
        peer.down = true
        await peer.proc.stop(5000)
        await this.restartWith(peer, { UPGOSSIP_CLOCK_OFFSET: s.detail ?? '30m' })
        this.record({ ...event, detail: `restarted with its clock ${s.detail ?? '30m'} off` })
        return async () => {
          peer.down = true
          await peer.proc.stop(5000)
          await this.restart(peer)
        }
      }
      case 'partition': {
        hosts.cut(s.target)
        this.record({ ...event, detail: 'link down: cut off from every other peer' })
        return async () => { hosts.mend(s.target) }
      }
      case 'slow-link': case 'lossy-link': {
        hosts.shape(s.target, s.kind === 'slow-link' ? 'slow' : 'lossy')
        this.record({ ...event, detail: s.kind === 'slow-link' ? 'tbf 48 kbit/s both ways' : 'netem 80±40 ms, 8 % loss both ways' })
        return async () => { hosts.unshape(s.target) }
      }
      case 'disk-full': {
        await hosts.fillDisk(s.target)
        this.record({ ...event, detail: 'data directory\'s file system filled to the last block' })
        return async () => { await hosts.freeDisk(s.target) }
      }
    }
  }

  private async restart (peer: ChaosPeer): Promise<void> {
    await this.restartWith(peer, {})
  }

  private async restartWith (peer: ChaosPeer, env: Record<string, string>): Promise<void> {
    peer.down = true
    try {
      await this.c.cluster.restart(peer, env)
      this.record({ kind: 'restart', target: peer.slot.name, detail: Object.keys(env).length === 0 ? undefined : Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ') })
    } finally {
      peer.down = peer.proc.exited
    }
  }

  /** End every fault now, and wait for strikes still under way. */
  async healAll (): Promise<void> {
    this.healing = true
    for (const heal of [...this.holding.values()]) await heal()
    await Promise.allSettled([...this.running])
    // a peer still down (a strike cut short): start it again
    for (const p of this.c.cluster.peers) {
      p.proc.signal('SIGCONT')
      if (p.proc.exited) await this.restart(p)
    }
  }
}
