/**
 * `--mdns` finds peers on the local network with no bootstrap address. Multicast does
 * not cross loopback, so the test makes two network namespaces joined by a veth pair
 * (root only; skipped with a message otherwise) and removes them afterwards.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN, TestNet, waitFor } from './support/testnet.js'

function canMakeNamespaces (): boolean {
  if (process.getuid?.() !== 0) return false
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const allowed = canMakeNamespaces()
if (!allowed) console.warn('mdns test skipped: it needs root and iproute2 to make network namespaces')

const tag = randomBytes(3).toString('hex')
const ns = [`ug${tag}a`, `ug${tag}b`]
const procs: ChildProcess[] = []
let net: TestNet | undefined

function ip (...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' })
}

afterAll(async () => {
  for (const p of procs) p.kill('SIGTERM')
  await new Promise(resolve => setTimeout(resolve, 1500))
  for (const p of procs) p.kill('SIGKILL')
  for (const n of ns) { try { ip('netns', 'del', n) } catch {} }
  await net?.close()
})

async function inNs (n: string, args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', n, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { out += String(d) })
    child.on('error', reject)
    child.on('close', code => { code === 0 ? resolve(out) : reject(new Error(`exit ${String(code)}`)) })
  })
}

describe('mDNS discovery', () => {
  it.skipIf(!allowed)('two peers on one link find each other with no bootstrap address, and one installs from the other', async () => {
    ip('netns', 'add', ns[0] as string)
    ip('netns', 'add', ns[1] as string)
    ip('link', 'add', `v${tag}a`, 'type', 'veth', 'peer', 'name', `v${tag}b`)
    ns.forEach((n, i) => {
      const dev = `v${tag}${i === 0 ? 'a' : 'b'}`
      ip('link', 'set', dev, 'netns', n)
      ip('-n', n, 'addr', 'add', `10.211.${parseInt(tag.slice(0, 2), 16)}.${i + 1}/24`, 'dev', dev)
      ip('-n', n, 'link', 'set', dev, 'up')
      ip('-n', n, 'link', 'set', 'lo', 'up')
      ip('-n', n, 'route', 'add', '224.0.0.0/4', 'dev', dev)
    })
    net = await TestNet.create()
    const v1 = await net.release('1.0.0')
    const dirs = ns.map((_, i) => path.join(net?.root ?? '', `peer${i}`))
    const third = parseInt(tag.slice(0, 2), 16)
    const start = (i: number, extra: string[]): void => {
      procs.push(spawn('ip', ['netns', 'exec', ns[i] as string, process.execPath, BIN, 'daemon', '--data', dirs[i] as string, '--trust', net?.trustFile ?? '', '--mdns',
        '--listen', `/ip4/10.211.${third}.${i + 1}/tcp/0`, '--config', net?.configFile ?? '', ...extra], { stdio: 'ignore' }))
    }
    start(0, ['--install', v1.file])
    start(1, ['--app', 'kv'])
    for (const d of dirs) await waitFor(`${d} to start`, async () => await fs.stat(path.join(d, 'control.json')).then(() => true, () => false))
    await waitFor('the peers to find each other by mDNS and b to run 1.0.0', async () => {
      const s = JSON.parse(await inNs(ns[1] as string, ['status', '--data', dirs[1] as string, '--json'])) as { version: string | null, connections: number }
      return s.connections >= 1 && s.version === '1.0.0'
    }, 60_000, 500)
  })
})
