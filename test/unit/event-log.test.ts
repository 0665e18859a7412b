import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { EventLog } from '../../src/daemon/event-log.js'
import { tempDir } from '../helpers.js'

async function settle (): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 50))
}

describe('the event log', () => {
  it('keeps writing after a write failed (a full disk): the next event opens the file again, after a line counting what was lost', async () => {
    const root = await tempDir()
    // the file cannot be opened at first (as when the disk is full), then can
    const dir = path.join(root, 'not-yet')
    const log = new EventLog(path.join(dir, 'events.jsonl'), { quiet: true })
    log.info('one', 'lost')
    log.info('two', 'lost too')
    await settle()
    await fs.mkdir(dir)
    log.warn('three', 'kept')
    await settle()
    await log.close()
    const lines = (await fs.readFile(path.join(dir, 'events.jsonl'), 'utf8')).split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { type: string, count?: number, message: string })
    expect(lines.map(l => l.type)).toEqual(['events-lost', 'three'])
    expect(lines[0]).toMatchObject({ count: 2 })
    expect(lines[0]?.message).toMatch(/ENOENT/)
  })
})
