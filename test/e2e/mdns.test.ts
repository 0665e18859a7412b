/**
 * `--mdns` finds peers on the local network with no bootstrap address. Multicast does
 * not cross loopback, so the test makes two network namespaces joined by a veth pair
 * (root only; skipped with a message otherwise, a failure in CI) and removes them afterwards.
 */
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { capable } from './support/capabilities.js'
import { NetnsPair, netnsUnavailable, runIn, spawnIn, stopProcesses } from './support/netns.js'
import { TestNet, waitFor } from './support/testnet.js'

const capableHere = capable('mdns.test.ts', netnsUnavailable())

const procs: ChildProcess[] = []
let pair: NetnsPair | undefined
let net: TestNet | undefined

afterAll(async () => {
  await stopProcesses(procs)
  pair?.remove()
  await net?.close()
})

describe('mDNS discovery', () => {
  it.skipIf(!capableHere)('two peers on one link find each other with no bootstrap address, and one installs from the other', async () => {
    const p = pair = NetnsPair.create({ multicast: true })
    net = await TestNet.create()
    const v1 = await net.release('1.0.0')
    const dirs = p.ns.map((_, i) => path.join(net?.root ?? '', `peer${i}`))
    const start = (i: 0 | 1, extra: string[]): void => {
      procs.push(spawnIn(p.ns[i], ['daemon', '--data', dirs[i] as string, '--trust', net?.trustFile ?? '', '--mdns',
        '--listen', `/ip4/${p.addr[i]}/tcp/0`, '--config', net?.configFile ?? '', ...extra], { stdio: 'ignore' }))
    }
    start(0, ['--install', v1.file])
    start(1, ['--app', 'kv'])
    for (const d of dirs) await waitFor(`${d} to start`, async () => await fs.stat(path.join(d, 'control.json')).then(() => true, () => false))
    await waitFor('the peers to find each other by mDNS and b to run 1.0.0', async () => {
      const r = await runIn(p.ns[1], ['status', '--data', dirs[1] as string, '--json'])
      if (r.code !== 0) throw new Error(r.stderr)
      const s = JSON.parse(r.stdout) as { version: string | null, connections: number }
      return s.connections >= 1 && s.version === '1.0.0'
    }, 60_000, 500)
    await stopProcesses(procs)
    p.remove()
    expect(p.leftovers()).toEqual([])
  })
})
