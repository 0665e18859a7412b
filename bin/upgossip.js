#!/usr/bin/env node
// The upgossip command. This file runs on any Node.js: upgossip needs Node 22+, so on
// an older Node it re-executes itself with the Node 22 the project pins (the npm
// devDependency "node"), or says how to get one. The CLI itself is compiled to dist/.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const MIN_MAJOR = 22
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
