/**
 * The bounds docs/SECURITY.md lists, each checked at its edge: one over is refused by
 * name (or, for a cache, the oldest entry goes), the limit itself is still accepted.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { EventLog } from '../../src/daemon/index.js'
import { AppHost, RequestHoldOverflowError } from '../../src/host/index.js'
import { NetworkView } from '../../src/net/index.js'
import type { StatusBeat } from '../../src/net/index.js'
import { ManifestInvalidError, nameProblem, packDirectory, parseManifest, unpackPackage } from '../../src/package/index.js'
import { MAX_RELEASES_TOPIC_MESSAGE, decodeReleasesTopicMessage } from '../../src/release/index.js'
import { MemoryBlockStore } from '../../src/store/index.js'
import { tempDir, writeTree } from '../helpers.js'

const manifest = { app: 'kv', version: '1.0.0', main: 'server.js', protocol: 1 }

describe('limits at their edge', () => {
  it('schedule rules per manifest: 32', () => {
    const rules = (n: number): unknown[] => Array.from({ length: n }, () => ({ rule: 'immediate' }))
    expect(parseManifest({ ...manifest, schedule: rules(32) }).schedule).toHaveLength(32)
    expect(() => parseManifest({ ...manifest, schedule: rules(33) })).toThrow(ManifestInvalidError)
  })

  it('a file or directory name: 255 bytes', () => {
    expect(nameProblem('a'.repeat(255))).toBeUndefined()
    expect(nameProblem('a'.repeat(256))).toMatch(/255/)
    // bytes, not characters
    expect(nameProblem('é'.repeat(128))).toMatch(/255/)
  })

  it('directory depth in a package: 64', async () => {
    const root = await tempDir()
    const deep = (n: number): string => Array.from({ length: n }, (_, i) => `d${i}`).join('/')
    for (const [n, ok] of [[63, true], [65, false]] as const) {
      const dir = path.join(root, `pkg${n}`)
      await writeTree(dir, { 'upgossip.json': JSON.stringify(manifest), 'server.js': '', [`${deep(n)}/f.txt`]: 'x' })
      const store = new MemoryBlockStore()
      const unpack = async (): Promise<unknown> => await unpackPackage((await packDirectory(dir, store)).cid, store, path.join(root, `out${n}`))
      if (ok) await expect(unpack()).resolves.toBeDefined()
      else await expect(unpack()).rejects.toMatchObject({ name: 'UnsafePathError' })
    }
  })

  it('a releases-topic message: refused past its size before it is decoded', () => {
    expect(() => decodeReleasesTopicMessage(new Uint8Array(MAX_RELEASES_TOPIC_MESSAGE + 1))).toThrow(/bytes|limit|large/)
    try {
      decodeReleasesTopicMessage(new Uint8Array(MAX_RELEASES_TOPIC_MESSAGE + 1))
    } catch (err) {
      expect((err as Error).name).not.toBe('Error')
    }
  })

  it('peers in the network view: 4096, the stalest leaves first', () => {
    const view = new NetworkView()
    const beat = (seq: number): StatusBeat => ({ v: 1, seq, app: 'kv', version: '1.0.0', state: 'running', labels: {}, addrs: [], heads: {}, held: [] })
    for (let i = 0; i < 4097; i++) view.update(`peer-${i}`, beat(1), i)
    expect(view.size).toBe(4096)
    expect(view.get('peer-0')).toBeUndefined()
    expect(view.get('peer-4096')).toBeDefined()
  })

  it('the event log: 30 events of one type a minute, the rest counted and summarised', async () => {
    const file = path.join(await tempDir(), 'events.jsonl')
    let now = Date.parse('2026-11-27T12:00:00Z')
    const log = new EventLog(file, { clock: { now: () => now }, quiet: true })
    for (let i = 0; i < 40; i++) log.info('flood', `event ${i}`)
    log.info('other', 'another type is not held back')
    now += 61_000
    log.info('flood', 'a minute later')
    await log.close()
    const lines = (await fs.readFile(file, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { type: string, message: string })
    expect(lines.filter(l => l.type === 'flood')).toHaveLength(31)
    expect(lines.some(l => l.type === 'other')).toBe(true)
    expect(lines.at(-1)?.message).toMatch(/^a minute later \(10 similar "flood" events were suppressed/)
  })

  it('requests held during a switch: 1000, and 64 MiB in all', async () => {
    const host = new AppHost({ peerId: 'p', config: null, logFile: path.join(await tempDir(), 'app.log'), onRoute: async () => ({ self: true, version: 1 }), onSend: async () => null, onPeers: async () => [], log: () => {} } as unknown as ConstructorParameters<typeof AppHost>[0])
    host.hold()
    const held = Array.from({ length: 1000 }, async () => await host.request('x', {}, 1, 10).catch((err: Error) => err))
    await expect(host.request('x', {}, 1, 10)).rejects.toThrow(RequestHoldOverflowError)
    host.unhold()
    // nothing runs here: every held request ends with an error, none is lost
    expect((await Promise.all(held)).every(r => r instanceof Error)).toBe(true)
    host.hold()
    await expect(host.request('x', {}, 1, 64 * 1024 * 1024 + 1)).rejects.toThrow(RequestHoldOverflowError)
    host.unhold()
  })
})
