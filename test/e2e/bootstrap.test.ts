/**
 * `--bootstrap` without `/p2p/PEERID`, on real daemons: a peer given only another's TCP
 * address (on the command line, or in a config file) connects, learns the peer id from the
 * secured connection, says so, and installs the app from the network.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { TestNet } from './support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

describe('--bootstrap without /p2p/', () => {
  it('a peer given only the TCP address of another joins through it and installs the app (command line and config file)', async () => {
    net = await TestNet.create()
    const v1 = await net.release('1.0.0')
    const a = await net.start('a', ['--install', v1.file])
    await a.waitVersion('1.0.0')
    const bare = a.addr.replace(/\/p2p\/[^/]+$/, '')
    expect(bare).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/)

    const b = await net.start('b', ['--app', 'kv', '--bootstrap', bare])
    // a config file's bootstrap key takes the same (the net's tunings, plus the address)
    const config = path.join(net.root, 'c.json')
    await fs.writeFile(config, JSON.stringify({ ...JSON.parse(await fs.readFile(net.configFile, 'utf8')), bootstrap: [bare] }))
    const c = await net.start('c', ['--app', 'kv', '--config', config])
    for (const peer of [b, c]) {
      await peer.waitVersion('1.0.0')
      expect(peer.log).toContain(`bootstrap peer ${bare} is ${a.peerId}`)
      const status = await peer.status()
      expect(status.network.find(p => p.peerId === a.peerId)).toMatchObject({ app: 'kv', version: '1.0.0', connected: true })
    }
    // and A sees them both
    const seen = (await a.status()).network.map(p => p.peerId).sort()
    expect(seen).toEqual([b.peerId, c.peerId].sort())
  })
})
