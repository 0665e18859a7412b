/**
 * The daemon's side of an SDK app (`AppProcess`) for tests of what crosses IPC: one init
 * with the app's usual values, and a stand-in child so that messages can be handed to
 * the daemon's side, and what it sends the app read, without a process.
 */
import os from 'node:os'
import path from 'node:path'
import { AppProcess } from '../../src/host/index.js'
import type { AppProcessInit } from '../../src/host/index.js'
import type { HostMessage } from '../../src/ipc/index.js'

/** An init of app kv 1.0.0 on peer `self`, in the temp dir; `parts` says how its calls go, and what else differs. */
export function appProcessInit (parts: Pick<AppProcessInit, 'protocol' | 'onRoute' | 'onSend'> & Partial<AppProcessInit>): AppProcessInit {
  return {
    app: 'kv',
    version: '1.0.0',
    packageDir: os.tmpdir(),
    main: 'server.js',
    stateDir: path.join(os.tmpdir(), 'state'),
    config: null,
    peerId: 'self',
    logFile: path.join(os.tmpdir(), 'app.log'),
    simulations: [],
    onPeers: () => [],
    ...parts
  }
}

/** An app process whose child is a stand-in: what the daemon sends the app goes to `child.send`. */
export function stubbedAppProcess (init: AppProcessInit, child: { connected: boolean, send: (message: HostMessage) => unknown }): AppProcess {
  const proc = new AppProcess(init)
  Object.assign(proc, { child: { pid: 1, ...child } })
  return proc
}

/** Hand `message` to the daemon's side as if the app had sent it (it throws what the daemon's listener catches). */
export function fromApp (proc: AppProcess, message: unknown): void {
  (proc as unknown as { onMessage: (m: unknown) => void }).onMessage(message)
}
