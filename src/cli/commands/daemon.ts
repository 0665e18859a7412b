/** `upgossip daemon`: run a peer. */
import path from 'node:path'
import type { Command } from 'commander'
import { note } from '../output.js'
import { collect } from '../program-options.js'

interface DaemonCliOptions {
  data?: string
  trust?: string
  replaceTrust?: boolean
  listen?: string[]
  dialFrom?: string
  bootstrap?: string[]
  install?: string
  app?: string
  control?: string
  policy?: string
  label?: string[]
  appConfig?: string
  network?: string
  mdns?: boolean
  psk?: string
  metrics?: string
  config?: string
  printUnit?: boolean
  user?: string
  takeOver?: boolean
}

/** Register `daemon` on the program. */
export function daemonCommand (program: Command): void {
  program.command('daemon')
    .description('run a peer: gossip releases, swarm their packages, keep a view of the network')
    .option('--data <dir>', 'data directory (default $UPGOSSIP_DATA or ~/.upgossip); kept private: 0700, and umask 077 for the daemon and its app')
    .option('--trust <file>', 'seed the trust store on first start: {"apps": {"kv": {"publishers": ["z6Mk…"], "threshold": 1}}}')
    .option('--replace-trust', 'replace the trust store with --trust even though it differs from the one seeded before')
    .option('--listen <multiaddr>', 'listen address, repeatable (default /ip4/0.0.0.0/tcp/0)', collect)
    .option('--dial-from <address>', 'source address of outgoing connections (a host with several addresses)')
    .option('--bootstrap <multiaddr>', 'peer to join through, repeatable: /ip4/HOST/tcp/PORT, with /p2p/PEERID or without (the id is learned on connecting)', collect)
    .option('--install <bundle>', 'install a first version from a release bundle')
    .option('--app <name>', 'join with no code, and take the newest trusted release of NAME from the network')
    .option('--control <port>', 'control API port on 127.0.0.1 (default: a free port)')
    .option('--policy <file>', 'local schedule policy (used by the upgrade engine)')
    .option('--label <k=v>', 'a label of this peer, repeatable (e.g. zone=a)', collect)
    .option('--app-config <file>', 'per-peer settings handed to the app')
    .option('--network <name>', 'network name; topics are upgossip/<name>/… (default "default")')
    .option('--mdns', 'discover peers on the local network by mDNS')
    .option('--psk <file>', 'private network key (libp2p pnet): peers without it cannot connect; readable by its owner only (chmod 600), or refused')
    .option('--metrics <host:port>', 'also serve GET /metrics and GET /healthz without the token on HOST:PORT (e.g. 0.0.0.0:9464; off by default)')
    .option('--config <file>', 'the same options as JSON; command-line values win')
    .option('--print-unit', 'print a systemd service unit that runs this daemon with these options, and exit')
    .option('--user <name>', 'with --print-unit: the user the service runs as')
    .option('--take-over', 'take over a lock of the data directory written on another host that no longer runs a daemon on it (a copied, moved or restored directory)')
    .addHelpText('after', `
The daemon writes DATA/control.json (url, token, peerId, pid, multiaddrs) once it is ready;
"publish" and "status" find it there. Stop it with Ctrl-C or SIGTERM: a switch in
progress finishes first (up to stopTimeout, 60s). A lock left by a daemon that no longer
runs on this host is cleared (one log line); one written on another host is refused
unless --take-over. To run it as a systemd service:
  $ upgossip daemon --data /var/lib/upgossip --trust trust.json --print-unit --user upgossip > /etc/systemd/system/upgossip.service

Example, two peers on one machine:
  $ upgossip daemon --data ./a --trust trust.json --install kv-1.0.0.car --listen /ip4/127.0.0.1/tcp/4001
  $ upgossip daemon --data ./b --trust trust.json --app kv --bootstrap "$(jq -r '.multiaddrs[0]' a/control.json)"
  $ upgossip publish kv-2.0.0.car --data ./a`)
    .action(async (opts: DaemonCliOptions) => {
      // everything the daemon and its app (which inherits it) create is for this user alone:
      // the data directory holds the peer's key, the control token and the app's state
      process.umask(0o077)
      const { startDaemon, readDaemonConfig, resolveDaemonOptions } = await import('../../daemon/index.js')
      const { UsageError } = await import('../output.js')
      const control = opts.control == null ? undefined : Number(opts.control)
      if (control != null && (!Number.isInteger(control) || control < 0 || control > 65535)) throw new UsageError(`--control ${opts.control} is not a port number`)
      const file = opts.config == null ? {} : await readDaemonConfig(opts.config)
      const options = resolveDaemonOptions({
        data: opts.data,
        trust: opts.trust,
        replaceTrust: opts.replaceTrust,
        listen: opts.listen,
        dialFrom: opts.dialFrom,
        bootstrap: opts.bootstrap,
        install: opts.install,
        app: opts.app,
        control,
        policy: opts.policy,
        label: opts.label,
        appConfig: opts.appConfig,
        network: opts.network,
        mdns: opts.mdns,
        psk: opts.psk,
        metrics: opts.metrics
      }, file)
      if (opts.printUnit === true) {
        const { serviceUnit, daemonArgs } = await import('./daemon-unit.js')
        const bin = path.resolve(process.argv[1] ?? 'upgossip')
        process.stdout.write(serviceUnit({ node: process.execPath, bin, args: daemonArgs({ ...opts }, options.data), data: options.data, stopTimeoutMs: options.stopTimeoutMs, user: opts.user }))
        return
      }
      if (opts.user != null) throw new UsageError('--user only goes with --print-unit (the daemon runs as whoever starts it)')
      const { clockOffsetFromEnv } = await import('./daemon-clock.js')
      const daemon = await startDaemon({ ...options, takeOver: opts.takeOver === true }, clockOffsetFromEnv(process.env.UPGOSSIP_CLOCK_OFFSET))
      await new Promise<void>(resolve => {
        let stopping = false
        const stop = (signal: string): void => {
          if (stopping) return
          stopping = true
          note(`${signal}: stopping`)
          daemon.stop().then(resolve, err => {
            note(`error while stopping: ${(err as Error).message}`)
            resolve()
          })
        }
        // a second signal while stopping (Ctrl-C twice, a process group) changes nothing
        process.on('SIGINT', () => { stop('SIGINT') })
        process.on('SIGTERM', () => { stop('SIGTERM') })
      })
      // everything is stopped and flushed; libp2p may keep idle timers for seconds
      process.exit(0)
    })
}
