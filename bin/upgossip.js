#!/usr/bin/env node
// The upgossip command. This file runs on any Node.js: upgossip needs Node 22+, so on
// an older Node it re-executes itself with the Node 22 the project pins (the npm
// devDependency "node"), or says how to get one. The CLI itself is compiled to dist/.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const MIN_MAJOR = 22
/** glibc malloc settings of the daemon process (measured in docs/benchmarks-analysis.md). */
const DAEMON_MALLOC_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_TRIM_THRESHOLD_: '65536' }

/**
 * Whether the daemon should re-execute itself with DAEMON_MALLOC_ENV: on Linux, with a Node
 * that can (process.execve, Node 22.15+), when none of them is set yet (an operator's own
 * value wins) and no IPC channel was handed in (an exec would lose it).
 */
function wantsDaemonMallocEnv () {
  return process.platform === 'linux' && typeof process.execve === 'function' && existsSync(process.execPath) &&
    process.env.NODE_CHANNEL_FD == null && Object.keys(DAEMON_MALLOC_ENV).every(k => process.env[k] == null)
}
const self = fileURLToPath(import.meta.url)
const root = join(dirname(self), '..')
const major = Number(process.versions.node.split('.')[0])

if (major < MIN_MAJOR) {
  const pinned = [join(root, 'node_modules', 'node', 'bin', 'node'), join(root, '..', 'node', 'bin', 'node')].find(p => existsSync(p))
  if (pinned == null || process.env.UPGOSSIP_REEXEC === '1') {
    process.stderr.write(`upgossip needs Node.js ${MIN_MAJOR} or newer, and this is ${process.version}.\n` +
      `Get one of: "npm install" in the upgossip folder (it brings Node ${MIN_MAJOR} as the devDependency "node"), ` +
      `"npx -p node@${MIN_MAJOR} -p upgossip upgossip …", or a system Node ${MIN_MAJOR} (nvm install ${MIN_MAJOR}).\n`)
    process.exit(1)
  }
  const child = spawn(pinned, [self, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, UPGOSSIP_REEXEC: '1' } })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => {
    if (signal != null) process.kill(process.pid, signal)
    process.exit(code ?? 1)
  })
} else if (process.argv[2] === 'daemon' && wantsDaemonMallocEnv()) {
  // the daemon runs for long, and glibc's defaults (an allocator arena per thread, cut-off
  // points that rise with use) keep the peaks of its start and its transfers resident:
  // it re-executes itself once, in place (same process id, so whoever started it still
  // holds it), with allocator settings that give memory back. docs/operator.md, "Memory".
  process.execve(process.execPath, [process.execPath, ...process.execArgv, self, ...process.argv.slice(2)], { ...process.env, ...DAEMON_MALLOC_ENV })
} else {
  const main = join(root, 'dist', 'cli', 'main.js')
  if (!existsSync(main)) {
    process.stderr.write(`upgossip is not built: ${main} is missing. Run "npm run build" in ${root}.\n`)
    process.exit(1)
  }
  // cache compiled code between runs (Node 22.1+), so short commands start fast. Not for
  // the daemon: it starts once and then runs for long, and Node keeps the cache of every
  // module it loaded in memory until the process exits (~7-10 MB of the daemon's RSS)
  if (process.argv[2] !== 'daemon') {
    const { default: nodeModule } = await import('node:module')
    nodeModule.enableCompileCache?.()
  }
  const { run } = await import(main)
  process.exitCode = await run(process.argv.slice(2))
}
