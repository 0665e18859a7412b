/**
 * A peer that serves corrupted blocks (a real daemon with the test fault
 * UPGOSSIP_FAULT=serve-corrupt-blocks) does not stop the others from completing:
 * every block is checked against its CID, and the liar is dropped as a source.
 */
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { TestNet, runCli } from '../support/testnet.js'

let net: TestNet | undefined

afterEach(async () => {
  await net?.close()
  net = undefined
})

describe('corrupted blocks', () => {
  it('peers fetching from a liar still complete, from honest peers', async () => {
    net = await TestNet.create({ minConnections: 3 })
    const v1 = await net.release('1.0.0')
    const v2 = await net.release('2.0.0', { 'data.bin': randomBytes(1_200_000) })
    const honest = await net.start('honest', ['--install', v1.file])
    const liar = await net.start('liar', ['--app', 'kv', '--bootstrap', honest.addr], { UPGOSSIP_FAULT: 'serve-corrupt-blocks' })
    expect((await runCli(['publish', v2.file, '--data', honest.dataDir])).code).toBe(0)
    await liar.waitStaged(v2.id)
    // the newcomers know only the liar at first
    const newcomers = [await net.start('n1', ['--app', 'kv', '--bootstrap', liar.addr]), await net.start('n2', ['--app', 'kv', '--bootstrap', liar.addr])]
    await Promise.all(newcomers.map(async p => { await p.waitStaged(v2.id) }))
    let refused = 0
    for (const p of newcomers) refused += await p.metric('upgossip_blocks_total', { result: 'refused' })
    expect(refused).toBeGreaterThan(0)
    expect(await liar.metric('upgossip_blocks_total', { result: 'served' })).toBeGreaterThan(0)
    for (const p of [honest, liar, ...newcomers]) expect(p.exited).toBeUndefined()
  })
})
