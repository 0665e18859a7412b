/** Logs that never grow without end: files moved aside by size, a bounded number kept, read back oldest first. */
import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { EventLog } from '../../src/daemon/event-log.js'
import { readHistory } from '../../src/daemon/operator.js'
import { RotatingWriter, rotatedFiles, rotatedName } from '../../src/store/index.js'
import { tempDir } from '../helpers.js'

describe('rotating logs', () => {
  it('names the old files before the extension', () => {
    expect(rotatedName('/d/events.jsonl', 0)).toBe('/d/events.jsonl')
    expect(rotatedName('/d/events.jsonl', 2)).toBe('/d/events.2.jsonl')
    expect(rotatedName('/d/app.log', 1)).toBe('/d/app.1.log')
  })

  it('a writer moves its file aside past its size and keeps `keep` old ones: nothing is lost but the oldest', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'app.log')
    const w = new RotatingWriter(file, { maxBytes: 100, keep: 2 })
    for (let i = 0; i < 10; i++) w.write(`line ${i} ${'x'.repeat(40)}\n`)
    await new Promise<void>(resolve => w.end(resolve))
    const files = await rotatedFiles(file, 2)
    expect(files).toEqual([path.join(dir, 'app.2.log'), path.join(dir, 'app.1.log'), file])
    await expect(fs.stat(path.join(dir, 'app.3.log'))).rejects.toThrow(/ENOENT/)
    const text = (await Promise.all(files.map(async f => await fs.readFile(f, 'utf8')))).join('')
    // two lines a file, the last six lines in order
    expect(text.split('\n').filter(l => l !== '').map(l => l.split(' ')[1])).toEqual(['4', '5', '6', '7', '8', '9'])
    for (const f of files) expect((await fs.stat(f)).size).toBeLessThanOrEqual(100)
  })

  it('the event log rotates too, and history reads across its files, oldest first', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'events.jsonl')
    const log = new EventLog(file, { quiet: true, limit: { maxBytes: 300, keep: 3 } })
    for (let i = 0; i < 8; i++) log.info('approved', `operator approved kv@${i}.0.0`, { id: `r${i}` })
    await log.close()
    expect((await rotatedFiles(file, 3)).length).toBeGreaterThan(2)
    const history = await readHistory(file, 3)
    const ids = history.map(e => e.id)
    // the newest are all there, in order; only the oldest may have gone
    expect(ids.at(-1)).toBe('r7')
    expect(ids).toEqual([...ids].sort())
    expect(ids.length).toBeGreaterThanOrEqual(6)
  })
})
