import fs from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { diffFile, diffTrees } from '../../src/upgrade/index.js'
import { tempDir } from '../helpers.js'

const b = (text: string | number[]): Buffer => typeof text === 'string' ? Buffer.from(text) : Buffer.from(text)

describe('check compares state files: JSON by value, other files by byte', () => {
  it('JSON files are equal whatever their whitespace, key order and final newline', () => {
    expect(diffFile(b('{"a":1,"b":[1,2]}'), b('{\n  "b": [1, 2],\n  "a": 1\n}\n'))).toBeUndefined()
    expect(diffFile(b('{"a":1}\n'), b('{"a":1}'))).toBeUndefined()
  })

  it('the first JSON path that differs, with both values, and how many more', () => {
    expect(diffFile(b('{"a":1,"items":[{"ts":17}]}'), b('{"a":1,"items":[{}]}'))).toBe('.items[0].ts: 17 → missing')
    expect(diffFile(b('{"a":1,"b":"two","c":3}'), b('{"a":2,"b":"two"}'))).toBe('.a: 1 → 2 (and 1 more difference)')
    expect(diffFile(b('[1]'), b('{}'))).toBe('the whole value: [1] → {}')
    // a number is not its string
    expect(diffFile(b('{"n":1}'), b('{"n":"1"}'))).toBe('.n: 1 → "1"')
  })

  it('other files: the first differing offset, both bytes, and the sizes when they differ', () => {
    expect(diffFile(b([1, 2, 3]), b([1, 2, 3]))).toBeUndefined()
    expect(diffFile(b([1, 2, 3]), b([1, 9, 3]))).toBe('byte 1: 0x02 → 0x09')
    expect(diffFile(b('hello\n'), b('hello'))).toBe('byte 5: 0x0a → end of file; 6 bytes → 5')
    // JSON on one side only is compared as bytes
    expect(diffFile(b('{"a":1}'), b('{"a":1'))).toBe('byte 6: 0x7d → end of file; 7 bytes → 6')
  })

  it('diffTrees names each file: missing, appeared, or where it first differs', async () => {
    const root = await tempDir()
    const before = path.join(root, 'before')
    const after = path.join(root, 'after')
    await fs.mkdir(path.join(before, 'sub'), { recursive: true })
    await fs.mkdir(path.join(after, 'sub'), { recursive: true })
    await fs.writeFile(path.join(before, 'data.json'), JSON.stringify({ a: 1, b: 'two' }, null, 2) + '\n')
    await fs.writeFile(path.join(after, 'data.json'), JSON.stringify({ b: 'two', a: 1 }))
    await fs.writeFile(path.join(before, 'sub', 'log.json'), '{"n":1}')
    await fs.writeFile(path.join(after, 'sub', 'log.json'), '{"n":2}')
    await fs.writeFile(path.join(before, 'gone.bin'), 'x')
    await fs.writeFile(path.join(after, 'new.bin'), 'y')
    expect(await diffTrees(before, after)).toEqual([
      'gone.bin: missing after the round trip',
      'new.bin: appeared in the round trip',
      `${path.join('sub', 'log.json')}: differs after the round trip, first at .n: 1 → 2`
    ])
  })
})
