/**
 * The chaos run's daemons: started on their hosts (namespaces or loopback), restarted on
 * their data directories after a kill, each with the environment a fault wants
 * (`UPGOSSIP_FAULT`, `UPGOSSIP_CLOCK_OFFSET`).
 */
import path from 'node:path'
import { DaemonProcess } from '#src/testnet/index.js'
import type { Workspace } from '#src/testnet/index.js'
import type { HostSlot, Hosts } from './hosts.ts'

/** One peer of the run; `proc` is replaced on every restart. */
export interface ChaosPeer {
  slot: HostSlot
  proc: DaemonProcess
  /** Starts so far (1 after the first). */
  starts: number
  /** Set while a fault has the peer down or restarting: the nemesis and the clients leave it alone. */
  down: boolean
}

/** The daemons of one run. */
export class Cluster {
  readonly peers: ChaosPeer[] = []
  private readonly ws: Workspace
  private readonly hosts: Hosts
  private readonly files: { trust: string, config: string }
  constructor (ws: Workspace, hosts: Hosts, files: { trust: string, config: string }) {
    this.ws = ws
    this.hosts = hosts
    this.files = files
  }

  peer (name: string): ChaosPeer {
    const p = this.peers.find(x => x.slot.name === name)
    if (p == null) throw new Error(`no peer ${name}`)
    return p
  }

  /** Peers that are up. */
  live (): ChaosPeer[] {
    return this.peers.filter(p => !p.down && !p.proc.exited)
  }

  /** The address other daemons dial `peer` on. */
  addressOf (peer: ChaosPeer): string | undefined {
    return peer.proc.control.multiaddrs.find(m => m.startsWith(`/ip4/${peer.slot.address}/`))
  }

  /** Start peer `i` for the first time, installing `bundle`. */
  async add (i: number, bundle: string): Promise<ChaosPeer> {
    const slot = this.hosts.slot(i)
    const proc = await this.spawn(slot, ['--install', bundle], {})
    const peer = { slot, proc, starts: 1, down: false }
    this.peers[i] = peer
    return peer
  }

  /** Start `peer` again on its data directory, with `env` (a fault's), bootstrapping from a live peer. */
  async restart (peer: ChaosPeer, env: Record<string, string> = {}): Promise<void> {
    peer.proc = await this.spawn(peer.slot, [], env)
    peer.starts++
  }

  private async spawn (slot: HostSlot, args: string[], env: Record<string, string>): Promise<DaemonProcess> {
    const others = this.peers.filter(p => p != null && p.slot.name !== slot.name && !p.proc.exited).map(p => this.addressOf(p)).filter(a => a != null)
    return await DaemonProcess.start({
      name: slot.name,
      dataDir: slot.dataDir,
      logFile: this.ws.file('logs', `${slot.name}.log`),
      startTimeoutMs: 60_000,
      wrapper: slot.wrapper,
      fetch: slot.fetch,
      env: { UPGOSSIP_FAULT: '', UPGOSSIP_CLOCK_OFFSET: '', ...env },
      args: ['--trust', this.files.trust, '--config', this.files.config, '--listen', slot.listen,
        ...others.slice(0, 3).flatMap(a => ['--bootstrap', a]), ...args]
    })
  }

  /** Where the daemons' logs are. */
  get logDir (): string {
    return path.join(this.ws.root, 'logs')
  }

  /** Stop every daemon (SIGCONT first: a paused one cannot stop). */
  async stop (): Promise<void> {
    await Promise.all(this.peers.filter(p => p != null).map(async p => {
      p.proc.signal('SIGCONT')
      await p.proc.stop(5000)
    }))
  }
}
